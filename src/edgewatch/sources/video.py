"""Video files, decoded by OpenCV's FFmpeg backend."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import cv2

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo

log = logging.getLogger(__name__)

# A file whose last frame ends this much before the stated duration has lost its end. The slack
# covers containers that round their duration, or count a little audio past the last picture.
ENDED_EARLY_SLACK_S = 0.5


class VideoFileSource(Source):
    """Every frame of a video file, in order.

    A file that ends before the duration its header states (a download or copy cut short, a camera
    that lost power) yields the frames it has, with one warning saying how far it got.

    Raises:
        EdgewatchError: when the file is missing or FFmpeg cannot decode a first frame from it.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        if not self._path.is_file():
            raise EdgewatchError(f"no such file: {self._path}", "check the path, or name a folder, URL or webcam index")
        self._capture = self._open()
        ok, first = self._capture.read()
        if not ok:
            self._capture.release()
            raise EdgewatchError(
                f"cannot decode video {self._path}: the file is damaged or not a video",
                "check it plays (ffprobe FILE) or re-encode it",
            )
        self._pending: Picture | None = Picture(first)
        self._frames = 1
        self._last_ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        self._warned = False
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = SourceInfo(
            uri=str(self._path),
            fps=fps if fps > 0 else None,
            width=first.shape[1],
            height=first.shape[0],
            frame_count=count if count > 0 else None,
            live=False,
        )
        self._duration = _stated_duration(self._path)

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise EdgewatchError(
                f"cannot open video {self._path}: the file is damaged or not a video",
                "check it plays (ffprobe FILE) or re-encode it",
            )
        return capture

    def read(self) -> Picture | None:
        if self._pending is not None:
            picture, self._pending = self._pending, None
            return picture
        ok, image = self._capture.read()
        return Picture(image) if self._advanced(ok) else None

    def skip(self) -> bool:
        if self._pending is not None:
            self._pending = None
            return True
        # grab() decodes but skips the conversion to BGR, the costly half of read() for skipped frames.
        return self._advanced(self._capture.grab())

    def _advanced(self, ok: bool) -> bool:
        if ok:
            self._frames += 1
            self._last_ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        elif not self._warned:
            self._warned = True
            self._warn_if_ended_early()
        return ok

    def _warn_if_ended_early(self) -> None:
        fps = self.info.fps
        if self._duration is None or fps is None:
            return
        # OpenCV's frame count comes from the header and counts frames an edit list hides; the
        # timestamps do not, so the time the last frame reached is compared with the stated duration.
        reached = self._last_ms / 1000 + 1 / fps
        if reached < self._duration - ENDED_EARLY_SLACK_S:
            log.warning(
                "%s ended at frame %d of %d (the file is cut short or damaged)",
                self._path,
                self._frames,
                round(self._duration * fps),
            )

    def rewind(self) -> bool:
        self._capture.release()
        self._capture = self._open()
        self._frames = 0
        return True

    def close(self) -> None:
        self._capture.release()


def _stated_duration(path: Path) -> float | None:
    """Seconds of video the file's header promises; None when it does not say.

    The video stream's own duration where the container gives one (MP4's allows for its edit list);
    else Matroska's DURATION tag; else the file's duration when no other stream can lengthen it. AVI
    states a frame count that is exact (it has no edit lists), which outlasts a duration FFmpeg
    re-estimates from what is left of a cut file.
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            seconds = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif (tag := _tag_seconds(stream.metadata.get("DURATION", ""))) is not None:
                seconds = tag
            elif len(container.streams) == 1 and container.duration is not None:
                seconds = container.duration / av.time_base
            rate = stream.average_rate
            if container.format.name == "avi" and stream.frames > 0 and rate:
                seconds = max(seconds or 0.0, stream.frames / float(rate))
            return seconds
    except (av.error.FFmpegError, OSError, ValueError, IndexError):  # the check is advice; never fail a run on it
        return None


def _tag_seconds(text: str) -> float | None:
    """Seconds from a Matroska duration tag such as '00:01:06.040000000'."""
    hours, _, rest = text.partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
