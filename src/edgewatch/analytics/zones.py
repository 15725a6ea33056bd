"""Zones: which objects are inside a polygon now, their visits (enter, exit, dwell), the peak."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from edgewatch.analytics.geometry import anchor_points, to_pixels
from edgewatch.analytics.tracking import TrackedObject
from edgewatch.config import ZoneConfig
from edgewatch.frame import Frame


@dataclass(frozen=True, slots=True)
class ZoneChange:
    zone: str
    phase: str  # "enter" or "exit"
    item: TrackedObject
    time: float  # when the object really entered or left (the first frame on the new side)
    wall_time: datetime
    dwell: float | None = None  # exits: seconds of the visit


class ZoneMonitor:
    """One zone. An object is inside when its anchor point is in the polygon (edges included); it
    enters or leaves only after `inertia` frames in a row on the new side, so a box on the edge does
    not flicker in and out. An object that ends while inside leaves then."""

    def __init__(self, name: str, config: ZoneConfig, width: int, height: int) -> None:
        self.name = name
        self.config = config
        self.polygon = to_pixels(config.polygon, width, height).astype(np.float32)
        self.members: dict[int, tuple[TrackedObject, float]] = {}  # object id → (object, video time it entered)
        self.max_occupancy = 0
        self.visits = 0
        self._streaks: dict[int, tuple[int, Frame]] = {}  # object id → (frames on the new side, the first)
        self._labels = None if config.labels is None else set(config.labels)

    def contains(self, point: np.ndarray) -> bool:
        return cv2.pointPolygonTest(self.polygon, (float(point[0]), float(point[1])), False) >= 0

    def update(self, objects: Iterable[TrackedObject], frame: Frame) -> list[ZoneChange]:
        changes = []
        for item in objects:
            if not item.seen or (self._labels is not None and item.label not in self._labels):
                continue
            inside = self.contains(anchor_points(item.box, self.config.anchor)[0])
            if inside == (item.id in self.members):
                self._streaks.pop(item.id, None)
                continue
            frames, first = self._streaks.get(item.id, (0, frame))
            frames += 1
            if frames < self.config.inertia:
                self._streaks[item.id] = (frames, first)
                continue
            self._streaks.pop(item.id, None)
            if inside:
                self.members[item.id] = (item, first.time)
                self.visits += 1
                changes.append(ZoneChange(self.name, "enter", item, first.time, first.wall_time))
            else:
                changes.append(self._leave(item, first.time, first.wall_time))
        self.max_occupancy = max(self.max_occupancy, len(self.members))
        return changes

    def forget(self, objects: Iterable[TrackedObject]) -> list[ZoneChange]:
        """Objects that ended: those inside leave at their last sighting."""
        changes = []
        for item in objects:
            self._streaks.pop(item.id, None)
            if item.id in self.members:
                changes.append(self._leave(item, item.last_time, item.last_wall))
        return changes

    def _leave(self, item: TrackedObject, time: float, wall_time: datetime) -> ZoneChange:
        _, entered = self.members.pop(item.id)
        return ZoneChange(self.name, "exit", item, time, wall_time, dwell=time - entered)

    def occupancy(self) -> dict[str, int]:
        """Objects inside now, per label."""
        counts: dict[str, int] = {}
        for item, _ in self.members.values():
            counts[item.label] = counts.get(item.label, 0) + 1
        return counts
