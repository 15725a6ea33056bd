"""What every source offers: its properties and a way to read pictures one by one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What is known about a source once it is open.

    Attributes:
        uri: what the user named (path, URL or webcam index).
        fps: frames per second, when the source states it.
        width, height: size of the first frame in pixels.
        frame_count: number of frames, when known (files and image folders).
        live: True for cameras and streams: frames come at the sender's pace and old ones are worthless.
        stills: True for image files: separate pictures, with no motion to track between them.
    """

    uri: str
    fps: float | None
    width: int
    height: int
    frame_count: int | None
    live: bool
    stills: bool = False


@dataclass(slots=True)
class Picture:
    """One image read from a source, with the file it came from when there is one."""

    image: np.ndarray
    name: str | None = None


class Source(ABC):
    """An open input. Use it as a context manager, or call `close()`.

    Example:
        >>> from edgewatch import open_source
        >>> with open_source("street.mp4") as source:  # doctest: +SKIP
        ...     print(source.info.fps, source.info.frame_count)
    """

    info: SourceInfo
    #: how many times a live source has had to reconnect since it opened
    reconnects: int = 0

    @abstractmethod
    def read(self) -> Picture | None:
        """The next picture, or None at the end of the input."""

    def skip(self) -> bool:
        """Move past one picture without converting it; False at the end. Sources override it where
        skipping is cheaper than reading."""
        return self.read() is not None

    def rewind(self) -> bool:
        """Start again from the first picture (for `--loop`); False where the source cannot."""
        return False

    def stop(self) -> None:
        """Ask a blocked `read()` (a reconnect wait) to give up soon; called from another thread."""

    def close(self) -> None:
        """Release the file or device."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
