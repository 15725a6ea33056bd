"""The unit that flows from a source through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as every JSON line and event carries it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class Frame:
    """One decoded picture.

    Attributes:
        image: BGR pixels, shape (height, width, 3), uint8.
        camera: name of the camera it came from.
        index: position in the source (0-based; frames skipped by a stride still count).
        time: video time in seconds (index / fps for files; seconds since start for live sources).
        wall_time: when it was read, UTC.
        name: the file name, for sources made of image files (matches predictions to labels).
    """

    image: np.ndarray
    camera: str
    index: int
    time: float
    wall_time: datetime = field(default_factory=utc_now)
    name: str | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
