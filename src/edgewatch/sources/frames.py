"""Turning a source into the stream of frames the pipeline processes: which frames, and when."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from edgewatch.errors import EdgewatchError
from edgewatch.frame import Frame
from edgewatch.sources.base import Source


@dataclass(frozen=True, slots=True)
class FrameSelection:
    """Which frames of a source get processed.

    Attributes:
        stride: process every Nth frame.
        fps: process at most this many frames per second of video (files) or of clock (live).
        realtime: deliver a file's frames at its own frame rate, as a camera would.
        loop: start a file again when it ends.
        max_frames: stop after this many processed frames.
    """

    stride: int = 1
    fps: float | None = None
    realtime: bool = False
    loop: bool = False
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise EdgewatchError(f"stride must be 1 or more, got {self.stride}", "use --stride 1 for every frame")
        if self.fps is not None and self.fps <= 0:
            raise EdgewatchError(f"fps must be above 0, got {self.fps}", "omit --fps to process every frame")
        if self.stride > 1 and self.fps is not None:
            raise EdgewatchError("both a stride and a target fps were given", "use one of --stride or --fps")
        if self.max_frames is not None and self.max_frames < 1:
            raise EdgewatchError(f"max frames must be 1 or more, got {self.max_frames}", "omit it to read to the end")

    def expected_count(self, frame_count: int | None, source_fps: float | None) -> int | None:
        """How many frames a file run will process, for the progress bar; None when unknown."""
        if frame_count is None or self.loop:
            return self.max_frames
        if self.fps is not None and source_fps and self.fps < source_fps:
            count = _file_slot(frame_count - 1, self.fps, source_fps) + 1
        else:
            count = math.ceil(frame_count / self.stride)
        return min(count, self.max_frames) if self.max_frames else count

    def output_fps(self, source_fps: float | None) -> float | None:
        """The frame rate of what comes out: the source's, divided by the stride or capped by fps."""
        if source_fps is None:
            return self.fps
        if self.fps is not None:
            return min(self.fps, source_fps)
        return source_fps / self.stride


def _file_slot(index: int, rate: float, source_fps: float) -> int:
    return math.floor(index * rate / source_fps + 1e-9)


def read_frames(
    source: Source, camera: str, selection: FrameSelection, stop: threading.Event | None = None
) -> Iterator[Frame]:
    """Yield the selected frames of `source`, stamped with camera, index and video time.

    For files, video time is index / fps, and a target fps keeps the first frame of each 1/fps slot.
    For live sources, video time is seconds since the first frame, and a target fps keeps a frame once
    1/fps has passed on the clock.
    """
    stop = stop or threading.Event()
    info = source.info
    file_fps = None if info.live else info.fps
    started = time.monotonic()
    index = -1
    emitted = 0
    next_live_slot = 0.0
    while not stop.is_set():
        index += 1
        if not info.live and not _wanted_file_frame(index, selection, file_fps):
            if source.skip():
                continue
            if _rewound(source, selection):
                index -= 1
                continue
            return
        picture = source.read()
        if picture is None:
            if _rewound(source, selection):
                index -= 1
                continue
            return
        now = time.monotonic()
        if info.live:
            video_time = now - started
            if index % selection.stride:
                continue
            if selection.fps is not None:
                if video_time < next_live_slot:
                    continue
                next_live_slot = max(next_live_slot + 1 / selection.fps, video_time)
        else:
            video_time = index / file_fps if file_fps else float(index)
            if selection.realtime and file_fps and stop.wait(max(0.0, started + video_time - now)):
                return
        yield Frame(image=picture.image, camera=camera, index=index, time=video_time, name=picture.name)
        emitted += 1
        # A live source's frames may still be dropped downstream, so there the pipeline counts instead.
        if not info.live and selection.max_frames is not None and emitted >= selection.max_frames:
            return


def _wanted_file_frame(index: int, selection: FrameSelection, source_fps: float | None) -> bool:
    if selection.fps is not None and source_fps and selection.fps < source_fps:
        return index == 0 or _file_slot(index, selection.fps, source_fps) != _file_slot(
            index - 1, selection.fps, source_fps
        )
    return index % selection.stride == 0


def _rewound(source: Source, selection: FrameSelection) -> bool:
    return selection.loop and source.rewind()
