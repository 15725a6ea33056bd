"""One camera's analytics: detections in, objects with ids, events and periodic stats out."""

from __future__ import annotations

import time as clock
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import supervision as sv

from edgewatch.analytics.events import event_id, make_event
from edgewatch.analytics.filters import DetectionFilter
from edgewatch.analytics.lines import Crossing, LineCounter
from edgewatch.analytics.rules import IncidentRule, RuleChange, StateTracker
from edgewatch.analytics.tracking import ObjectTracker, TrackedObject
from edgewatch.analytics.zones import ZoneMonitor
from edgewatch.annotate import Overlay
from edgewatch.config import CameraConfig
from edgewatch.frame import Frame, iso_time


@dataclass
class Analysis:
    """One frame's analytics: its detections with object ids, the events it raised, and stats when
    they were due."""

    detections: sv.Detections
    events: list[dict[str, Any]]
    stats: dict[str, Any] | None = None
    overlay: Overlay | None = None


class CameraAnalytics:
    """Tracks, counts, lines, zones, rules and state for one camera, in frame order.

    Args:
        camera: the camera's name, stamped on every event.
        config: its config (filters, tracking, lines, zones, rules, state, stats interval).
        min_score: the score below which boxes were already dropped.
        fps: the source's frame rate, if known.
        threshold: the track threshold where the config sets none (the detector's default).

    Example:
        >>> from edgewatch.config import CameraConfig
        >>> analytics = CameraAnalytics("street", CameraConfig(source="street.mp4"))
    """

    def __init__(
        self,
        camera: str,
        config: CameraConfig,
        min_score: float = 0.0,
        fps: float | None = None,
        threshold: float = 0.0,
    ) -> None:
        self.camera = camera
        self.config = config
        threshold = config.threshold if config.threshold is not None else threshold
        self.tracker = ObjectTracker(config.tracking, DetectionFilter(config.filters, min_score, threshold), fps)
        self.rules = [IncidentRule(rule) for rule in config.rules]
        self.state = StateTracker(config.state) if config.state is not None else None
        self.lines: list[LineCounter] = []
        self.zones: dict[str, ZoneMonitor] = {}
        self.unique: Counter[str] = Counter()
        self.routes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._object_events: dict[int, str] = {}  # object id → its event id
        self._pending: dict[int, list[Crossing]] = {}  # object key → crossings made before it was counted
        self._incident_events: dict[str, str] = {}  # rule name → the running incident's event id
        self._visit_events: dict[tuple[str, int], str] = {}  # (zone, object key) → the visit's event id
        self._sized = False
        self._last_frame: Frame | None = None
        self._next_stats = config.stats_interval
        self._window = _RateWindow()
        self._answered: dict[str, Any] | None = None  # which model answered the last frame, for a remote one

    def update(self, frame: Frame, detections: sv.Detections, inference_ms: float = 0.0) -> Analysis:
        if not self._sized:  # lines and zones may be given as fractions of a size known only now
            self._size(frame.width, frame.height)
        self._last_frame = frame
        self._window.add(inference_ms)
        tracking = self.tracker.update(frame, detections)
        events = self._detector_event(detections, frame)
        for item in tracking.started:
            events.append(self._object_started(item))
            events += [self._count_crossing(crossing) for crossing in self._pending.pop(item.key, [])]
        for line in self.lines:
            for crossing in line.update(self.tracker.objects.values(), frame):
                if crossing.item.counted:
                    events.append(self._count_crossing(crossing))
                else:  # counted if its object ever is: a late confirmation loses no crossing
                    self._pending.setdefault(crossing.item.key, []).append(crossing)
        counted = [item for item in self.tracker.objects.values() if item.counted]
        for zone in self.zones.values():
            events += [self._zone_event(change, frame) for change in zone.update(counted, frame)]
        events += self._rule_events(counted, frame)
        events += self._state_event(detections, frame)
        events += self._ended(tracking.ended, frame)
        stats = None
        if frame.time >= self._next_stats:
            stats = self.stats()
            while self._next_stats <= frame.time:
                self._next_stats += self.config.stats_interval
        return Analysis(tracking.detections, events, stats, self.overlay())

    def finish(self) -> Analysis:
        """The input ended: every object and incident still open ends; the last stats."""
        frame = self._last_frame
        if frame is None:
            return Analysis(sv.Detections.empty(), [], None)
        events = self._ended(self.tracker.finish(frame), frame)
        for rule in self.rules:
            events += [self._incident(rule, change, frame) for change in rule.finish()]
        return Analysis(sv.Detections.empty(), events, self.stats())

    def _size(self, width: int, height: int) -> None:
        self.lines = [LineCounter(name, line, width, height) for name, line in self.config.lines.items()]
        self._line_by_name = {line.name: line for line in self.lines}
        self.zones = {name: ZoneMonitor(name, zone, width, height) for name, zone in self.config.zones.items()}
        self._sized = True

    # --- events -------------------------------------------------------------------------------

    def _object_started(self, item: TrackedObject) -> dict[str, Any]:
        self.unique[item.label] += 1
        self._object_events[item.id] = event_id()
        return self._object_event(item, "start", item.first_time, item.first_wall)

    def _ended(self, ended: list[TrackedObject], frame: Frame) -> list[dict[str, Any]]:
        events = []
        for line in self.lines:
            line.forget(ended)
        for item in ended:
            self._pending.pop(item.key, None)
        ended = [item for item in ended if item.counted]  # the others were never reported
        for zone in self.zones.values():
            events += [self._zone_event(change, frame) for change in zone.forget(ended)]
        for item in ended:
            if item.exited is not None:
                self.routes[item.label][f"{item.entered}>{item.exited}"] += 1
            events.append(
                self._object_event(
                    item,
                    "end",
                    item.last_time,
                    item.last_wall,
                    exited=item.exited,
                    dwell=round(item.dwell, 3),
                    best_frame=item.best_frame,
                    best_box=[round(float(v), 2) for v in item.best_box],
                )
            )
            self._object_events.pop(item.id, None)
        return events

    def _object_event(
        self, item: TrackedObject, phase: str, time: float, wall_time: datetime, **extra: Any
    ) -> dict[str, Any]:
        return make_event(
            "object", self.camera, time, wall_time, phase=phase, label=item.label, track_id=item.id,
            entered=item.entered, **extra, score=round(item.best_score, 4),
            id=self._object_events.get(item.id) or event_id(),
        )  # fmt: skip

    def _count_crossing(self, crossing: Crossing) -> dict[str, Any]:
        self._line_by_name[crossing.line].record(crossing)
        item = crossing.item
        return make_event(
            "line_crossing",
            self.camera,
            crossing.time,
            crossing.wall_time,
            line=crossing.line,
            direction=crossing.direction,
            label=item.label,
            track_id=item.id,
        )

    def _zone_event(self, change, frame: Frame) -> dict[str, Any]:
        item = change.item
        fields: dict[str, Any] = {"zone": change.zone, "label": item.label, "track_id": item.id}
        if change.dwell is not None:
            fields["dwell"] = round(change.dwell, 3)
        visit = (change.zone, item.key)
        if change.phase == "enter":
            self._visit_events[visit] = event_id()
        identifier = self._visit_events.pop(visit, None) if change.phase == "exit" else self._visit_events[visit]
        return make_event(
            "zone", self.camera, change.time, change.wall_time, phase=change.phase, **fields, id=identifier
        )

    def _rule_events(self, counted: list[TrackedObject], frame: Frame) -> list[dict[str, Any]]:
        events = []
        seen = [item for item in counted if item.seen]
        for rule in self.rules:
            present = seen
            if rule.config.zone is not None:
                members = self.zones[rule.config.zone].members
                present = [item for item in seen if item.id in members]
            events += [self._incident(rule, change, frame) for change in rule.update(present, frame.time)]
        return events

    def _incident(self, rule: IncidentRule, change: RuleChange, frame: Frame) -> dict[str, Any]:
        name = rule.config.name
        if change.phase == "start":
            self._incident_events[name] = event_id()
        identifier = self._incident_events.get(name) or event_id()
        fields: dict[str, Any] = {
            "rule": name,
            "labels": sorted({item.label for item in change.objects}),
            "track_ids": sorted(item.id for item in change.objects),
            "since": round(change.since, 3),
        }
        if change.phase == "end":
            self._incident_events.pop(name, None)
            fields["until"] = round(change.until if change.until is not None else frame.time, 3)
            fields["duration"] = round(fields["until"] - change.since, 3)
        return make_event(
            "incident", self.camera, frame.time, frame.wall_time, phase=change.phase, **fields, id=identifier
        )

    def _state_event(self, detections: sv.Detections, frame: Frame) -> list[dict[str, Any]]:
        classification = detections.metadata.get("classification")
        if self.state is None or classification is None:
            return []
        change = self.state.update(classification["label"], float(classification["score"]), frame.time)
        if change is None:
            return []
        before, after, since = change
        return [
            make_event(
                "state",
                self.camera,
                frame.time,
                frame.wall_time,
                **{"from": before, "to": after},
                since=round(since, 3),
            )
        ]

    def _detector_event(self, detections: sv.Detections, frame: Frame) -> list[dict[str, Any]]:
        """A `detector` event when another model starts answering (a remote detector's server, its
        fallback, or none); also at the first frame when that is not the server's."""
        answered = detections.metadata.get("detector")
        if answered is None:
            return []
        before = self._answered["in_use"] if self._answered is not None else None
        self._answered = answered
        after = answered["in_use"]
        if after == before or (before is None and after == "remote"):
            return []
        event = make_event(
            "detector", self.camera, frame.time, frame.wall_time, **{"from": before, "to": after},
            server=answered["server"], fallback=answered["fallback"], reason=answered["reason"],
        )  # fmt: skip
        return [event]

    def overlay(self) -> Overlay:
        """Lines, zones and counts as they stand, for the annotated picture."""
        return Overlay(
            lines=[(line.name, line.start, line.end, *line.totals().values()) for line in self.lines],
            zones=[(name, zone.polygon, len(zone.members)) for name, zone in self.zones.items()],
            counts=dict(self.unique),
            state=self.state.state if self.state is not None else None,
        )

    # --- stats --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The `stats` payload: counts so far, what is here now, lines, zones, routes."""
        frame = self._last_frame
        current: Counter[str] = Counter(item.label for item in self.tracker.objects.values() if item.counted)
        fps, inference_ms = self._window.take()
        stats: dict[str, Any] = {
            "camera": self.camera,
            "time": round(frame.time, 3) if frame else 0.0,
            "wall_time": iso_time(frame.wall_time) if frame else None,
            "fps": round(fps, 2),
            "inference_ms": round(inference_ms, 2),
            "unique": dict(sorted(self.unique.items())),
            "current": dict(sorted(current.items())),
            "lines": {
                line.name: {**line.totals(), "labels": {label: dict(c) for label, c in sorted(line.counts.items())}}
                for line in self.lines
            },
            "zones": {
                name: {
                    "occupancy": len(zone.members),
                    "labels": zone.occupancy(),
                    "max_occupancy": zone.max_occupancy,
                    "visits": zone.visits,
                }
                for name, zone in self.zones.items()
            },
            "routes": {label: dict(sorted(routes.items())) for label, routes in sorted(self.routes.items())},
            "incidents": {rule.config.name: rule.active for rule in self.rules},
        }
        if self.state is not None:
            stats["state"] = self.state.state
        if self._answered is not None:
            stats["detector"] = {key: self._answered[key] for key in DETECTOR_STATS if key in self._answered}
        return stats


#: what a remote detector's camera stats say of it (docs/mqtt.md)
DETECTOR_STATS = (
    "in_use", "server", "fallback", "dropped", "sent", "skipped", "sent_bytes", "min_change", "quality", "scale"
)  # fmt: skip


class _RateWindow:
    """Frames per wall second and mean inference time since the last stats."""

    def __init__(self) -> None:
        self._started = clock.monotonic()
        self._frames = 0
        self._inference_ms = 0.0

    def add(self, inference_ms: float) -> None:
        self._frames += 1
        self._inference_ms += inference_ms

    def take(self) -> tuple[float, float]:
        now = clock.monotonic()
        elapsed = now - self._started
        fps = self._frames / elapsed if elapsed > 0 else 0.0
        mean = self._inference_ms / self._frames if self._frames else 0.0
        self._started, self._frames, self._inference_ms = now, 0, 0.0
        return fps, mean
