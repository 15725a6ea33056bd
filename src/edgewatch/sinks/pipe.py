"""Raw annotated frames on standard output, for `edgewatch run --pipe | ffmpeg -f rawvideo ...`."""

from __future__ import annotations

import contextlib
import sys
from typing import BinaryIO

import cv2

from edgewatch.pipeline.result import FrameResult
from edgewatch.pipeline.stage import StopPipeline


class RawVideoPipe:
    """Writes each annotated frame as bgr24 bytes. Every frame has the first frame's size, as
    rawvideo readers need a fixed size. When the reader goes away, the run ends normally."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream or sys.stdout.buffer
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def write(self, result: FrameResult) -> None:
        image = result.annotated
        size = (image.shape[1], image.shape[0])
        if self._size is None:
            self._size = size
        elif size != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        try:
            self._stream.write(image.tobytes())
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            raise StopPipeline("the program reading --pipe output closed it") from None
        self.frames_written += 1

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._stream.flush()
