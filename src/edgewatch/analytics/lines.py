"""Counting lines: in / out per label when an object's anchor point really changes side.

Direction, once for every line: walk the line from its first point to its second; 'in' is crossing
to the left-hand side, 'out' to the right-hand side (as seen on the screen, y pointing down). For a
line drawn top to bottom, moving left to right is 'in'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edgewatch.analytics.geometry import anchor_points, to_pixels
from edgewatch.analytics.tracking import TrackedObject
from edgewatch.config import LineConfig
from edgewatch.frame import Frame


@dataclass(frozen=True, slots=True)
class Crossing:
    line: str
    direction: str  # "in" or "out"
    item: TrackedObject
    time: float
    wall_time: datetime


class LineCounter:
    """Counts crossings of one line segment.

    An object's side changes only when its anchor gets more than `margin` pixels past the line, so a
    box jittering on the line counts once; the crossing counts when the path between the two sides
    passes through the segment (not the line's extension). Crossing back counts the other way.
    """

    def __init__(self, name: str, config: LineConfig, width: int, height: int) -> None:
        self.name = name
        self.config = config
        self.start, self.end = to_pixels(config.points, width, height)
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: {"in": 0, "out": 0})
        self._sides: dict[int, tuple[int, np.ndarray]] = {}  # object key → (side, anchor where it was last sure)
        self._labels = None if config.labels is None else set(config.labels)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Pixels from the line, positive on the 'in' (left-hand) side."""
        along = self.end - self.start
        offset = np.asarray(points, np.float64).reshape(-1, 2) - self.start
        cross = along[0] * offset[:, 1] - along[1] * offset[:, 0]
        return -cross / max(float(np.hypot(*along)), 1e-9)  # y points down: left of the walk is cross < 0

    def update(self, objects: Iterable[TrackedObject], frame: Frame) -> list[Crossing]:
        """The crossings made in `frame`; `record` counts them."""
        crossings = []
        for item in objects:
            if not item.seen or (self._labels is not None and item.label not in self._labels):
                continue
            point = anchor_points(item.box, self.config.anchor)[0]
            distance = float(self.signed_distance(point)[0])
            if abs(distance) <= self.config.margin:
                continue  # on the line: not sure of the side yet
            side = 1 if distance > 0 else -1
            previous = self._sides.get(item.key)
            self._sides[item.key] = (side, point)
            if previous is None or previous[0] == side or not self._passes_segment(previous[1], point):
                continue
            crossings.append(Crossing(self.name, "in" if side > 0 else "out", item, frame.time, frame.wall_time))
        return crossings

    def record(self, crossing: Crossing) -> None:
        """Count a crossing (the caller decides which objects are believed enough to count)."""
        self.counts[crossing.item.label][crossing.direction] += 1

    def forget(self, objects: Iterable[TrackedObject]) -> None:
        for item in objects:
            self._sides.pop(item.key, None)

    def _passes_segment(self, before: np.ndarray, after: np.ndarray) -> bool:
        """Whether the path before → after meets the segment (it does meet the line: sides differ)."""
        d_before, d_after = self.signed_distance(np.stack([before, after]))
        meeting = before + (after - before) * (d_before / (d_before - d_after))
        along = self.end - self.start
        t = float((meeting - self.start) @ along / max(float(along @ along), 1e-9))
        return -1e-6 <= t <= 1 + 1e-6

    def totals(self) -> dict[str, int]:
        return {
            "in": sum(count["in"] for count in self.counts.values()),
            "out": sum(count["out"] for count in self.counts.values()),
        }
