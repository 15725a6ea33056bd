"""Tracks that become objects: ByteTrack (Roboflow's `trackers`) per label, and on top of it the
object lifecycle that counting needs.

ByteTrack gives a track an id once it has been matched `confirm_frames` frames in a row, and drops
it when it stays unmatched `lost_after` seconds. Every tracker hands a box hidden behind a post for
a few frames back with a new id, so an object here outlives its tracks: a new track that appears
where a recently lost object of the same label was heading continues that object. An object unseen
for `gone_after` seconds has gone: its exit side is known and it ends.

One ByteTrack per label keeps ids from jumping between classes; object ids are the camera's own.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from edgewatch.analytics.filters import DetectionFilter, track_passes
from edgewatch.analytics.geometry import INSIDE, border_side
from edgewatch.config import TrackingConfig
from edgewatch.frame import Frame

RECENT_SCORES = 10  # the window of the track threshold's median, as in Frigate
STILL = 2.0  # pixels per second under which an object is not heading anywhere
ENTRY_EVIDENCE = 1.0  # seconds after which an object that has not moved counts anyway (entered 'inside')


@dataclass(eq=False)
class TrackedObject:
    """One object from its first confirmed box to its last.

    Attributes:
        id: the camera's object id (the `track_id` of JSON lines and events): 1, 2, 3... in the order
            objects are counted; -1 until then.
        key: the tracker's own handle for it, from its first confirmed box.
        counted: confirmed and past its label's threshold; only counted objects are reported.
        entered / exited: the border side it came in by and left by, or 'inside'.
        best_score / best_frame / best_box: the frame to take its snapshot from.
    """

    id: int
    label: str
    class_id: int
    first_box: np.ndarray
    box: np.ndarray
    first_time: float
    last_time: float
    first_wall: datetime
    last_wall: datetime
    best_score: float
    best_frame: int
    best_box: np.ndarray
    scores: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_SCORES))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # of the box centre, pixels / s
    entered: str | None = None
    exited: str | None = None
    counted: bool = False
    seen: bool = True  # has a box in the latest frame
    key: int = 0

    @property
    def centre(self) -> np.ndarray:
        return (self.box[:2] + self.box[2:]) / 2

    @property
    def dwell(self) -> float:
        """Seconds between the first and the last sighting."""
        return self.last_time - self.first_time

    def heading(self) -> np.ndarray | None:
        return self.velocity if float(np.hypot(*self.velocity)) >= STILL else None

    def observe(self, box: np.ndarray, score: float, frame: Frame) -> None:
        elapsed = frame.time - self.last_time
        if elapsed > 0:
            step = ((box[:2] + box[2:]) / 2 - self.centre) / elapsed
            self.velocity = step if not self.velocity.any() else 0.6 * self.velocity + 0.4 * step
        self.box, self.last_time, self.last_wall, self.seen = box, frame.time, frame.wall_time, True
        self.scores.append(score)
        if score > self.best_score:
            self.best_score, self.best_frame, self.best_box = score, frame.index, box

    def came_from(self) -> np.ndarray | None:
        """The direction back to where it was first seen, once it has moved half its size from there."""
        first_centre = (self.first_box[:2] + self.first_box[2:]) / 2
        back = first_centre - self.centre
        size = float(min(self.box[2:] - self.box[:2]))
        return back if float(np.hypot(*back)) >= 0.5 * size else None

    def predicted_centre(self, time: float) -> np.ndarray:
        return self.centre + self.velocity * (time - self.last_time)


@dataclass
class TrackingUpdate:
    """What one frame changed: its detections with object ids, the objects counted from now on, and
    the objects that ended (counted or not: check `counted`)."""

    detections: sv.Detections
    started: list[TrackedObject]
    ended: list[TrackedObject]


class ObjectTracker:
    """Turns each frame's detections into objects with a lifecycle.

    Args:
        config: the camera's `tracking:` settings.
        detection_filter: the camera's per-label filters (boxes before tracking, thresholds after).
        fps: the source's frame rate, ByteTrack's reference for its Kalman steps.
    """

    def __init__(self, config: TrackingConfig, detection_filter: DetectionFilter, fps: float | None = None) -> None:
        self.config = config
        self.filter = detection_filter
        self.fps = fps or 25.0
        self.objects: dict[int, TrackedObject] = {}  # key → object, for objects not gone yet
        self._trackers: dict[str, ByteTrackTracker] = {}
        self._tracks: dict[tuple[str, int], TrackedObject] = {}  # (label, ByteTrack id) → object
        self._next_id = 1  # public ids, given when an object is counted
        self._next_key = 1
        self._last_time: float | None = None
        self._previous_time = -np.inf  # of the frame before this one
        self._leaving: set[int] = set()  # objects lost at the border they were heading for: not to be continued

    def update(self, frame: Frame, detections: sv.Detections) -> TrackingUpdate:
        if self._last_time is not None and frame.time < self._last_time:
            self._trackers.clear()  # the input started over (--loop): old motion predicts nothing
            self._tracks.clear()
        self._last_time = frame.time
        detections = self.filter(detections, frame.width, frame.height)
        for item in self.objects.values():
            item.seen = False
        tracked = self._track(frame, detections)
        started: list[TrackedObject] = []
        object_ids = np.full(len(tracked), -1, dtype=int)
        names = tracked.data.get("class_name", np.full(len(tracked), ""))
        scores = tracked.confidence if tracked.confidence is not None else np.ones(len(tracked))
        class_ids = tracked.class_id if tracked.class_id is not None else np.zeros(len(tracked), int)
        for index in np.argsort(-scores):  # the surest boxes claim lost objects first
            track_id = int(tracked.tracker_id[index])
            if track_id < 0:
                continue  # not confirmed: neither counted nor shown with an id
            box, label, score = tracked.xyxy[index].astype(np.float64), str(names[index]), float(scores[index])
            item = self._object_for(label, track_id, box, frame)
            if item is None:
                item = self._new_object(label, int(class_ids[index]), box, score, frame)
                self._tracks[(label, track_id)] = item
            else:
                item.observe(box, score, frame)
            if not item.counted and self._believed(item):
                item.counted, item.id = True, self._next_id
                self._next_id += 1
                item.entered = border_side(item.first_box, frame.width, frame.height, item.came_from())
                started.append(item)
            if item.counted:
                object_ids[index] = item.id
        tracked.tracker_id = object_ids
        self._leaving = {
            item.key
            for item in self.objects.values()
            if not item.seen and border_side(item.box, frame.width, frame.height, item.heading()) != INSIDE
        }
        self._previous_time = frame.time
        ended = self._retire(frame, lambda item: frame.time - item.last_time > self.config.gone_after)
        return TrackingUpdate(tracked, started, ended)

    def finish(self, frame: Frame) -> list[TrackedObject]:
        """End every object still here, as the input has ended. One already out of sight at a border
        it was heading for has left by it; any other is still in the scene and left by no side
        (`exited` stays None)."""
        ended = self._retire(frame, lambda item: True)
        for item in ended:
            if item.seen or item.exited == INSIDE:
                item.exited = None
        return ended

    def _track(self, frame: Frame, detections: sv.Detections) -> sv.Detections:
        names = detections.data.get("class_name", np.full(len(detections), ""))
        labels = set(self._trackers) | {str(name) for name in names}
        parts = []
        for label in sorted(labels):
            tracker = self._trackers.get(label) or self._trackers.setdefault(label, self._new_tracker())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate timestamps of a stalled live stream are harmless
                parts.append(tracker.update(detections[names == label], timestamp=frame.time))
        parts = [part for part in parts if len(part)]
        if not parts:
            empty = detections[np.zeros(len(detections), dtype=bool)]
            empty.tracker_id = np.zeros(0, dtype=int)
            return empty
        return sv.Detections.merge(parts)

    def _believed(self, item: TrackedObject) -> bool:
        """Counted from now on: its scores pass the threshold, and it has been seen long enough, or
        moved far enough, to tell where it came from."""
        if not track_passes(item.scores, self.filter.threshold(item.label)):
            return False
        return item.dwell >= ENTRY_EVIDENCE or item.came_from() is not None

    def _new_tracker(self) -> ByteTrackTracker:
        config = self.config
        high = config.high_score if config.high_score is not None else self.filter.min_score
        return ByteTrackTracker(
            lost_track_buffer=max(1, round(config.lost_after * 30)),  # in 30 fps frames, whatever the fps
            frame_rate=self.fps,
            track_activation_threshold=high,
            minimum_consecutive_frames=config.confirm_frames,
            minimum_iou_threshold=config.min_iou,
            high_conf_det_threshold=high,
        )

    def _object_for(self, label: str, track_id: int, box: np.ndarray, frame: Frame) -> TrackedObject | None:
        """The object this confirmed track belongs to: its own, or a lost one it continues."""
        key = (label, track_id)
        item = self._tracks.get(key)
        if item is not None and item.key in self.objects:
            return item if not item.seen else None
        item = self._lost_object_near(label, box, frame.time)
        if item is not None:
            self._tracks[key] = item
        return item

    def _lost_object_near(self, label: str, box: np.ndarray, time: float) -> TrackedObject | None:
        """A lost object of `label`, of a similar size, whose path from where it was last seen to
        where it would be now (it may have stopped) passes within its own size of `box`; the nearest
        if several. Objects seen in the previous frame are still ByteTrack's, and not lost."""
        centre = (box[:2] + box[2:]) / 2
        size = box[2:] - box[:2]
        best, best_distance = None, np.inf
        for item in self.objects.values():
            if item.label != label or item.last_time >= self._previous_time or item.key in self._leaving:
                continue
            item_size = item.box[2:] - item.box[:2]
            if np.any(size > 2.5 * item_size) or np.any(item_size > 2.5 * size):
                continue
            distance = _distance_to_segment(centre, item.centre, item.predicted_centre(time))
            if distance <= max(item_size) and distance < best_distance:
                best, best_distance = item, distance
        return best

    def _new_object(self, label: str, class_id: int, box: np.ndarray, score: float, frame: Frame) -> TrackedObject:
        item = TrackedObject(
            id=-1,
            label=label,
            class_id=class_id,
            first_box=box,
            box=box,
            first_time=frame.time,
            last_time=frame.time,
            first_wall=frame.wall_time,
            last_wall=frame.wall_time,
            best_score=score,
            best_frame=frame.index,
            best_box=box,
        )
        item.scores.append(score)
        item.key = self._next_key
        self._next_key += 1
        self.objects[item.key] = item
        return item

    def _retire(self, frame: Frame | None, gone) -> list[TrackedObject]:
        ended = [item for item in self.objects.values() if gone(item)]
        for item in ended:
            del self.objects[item.key]
            if frame is not None:
                item.exited = border_side(item.box, frame.width, frame.height, item.heading())
        self._tracks = {key: item for key, item in self._tracks.items() if item.key in self.objects}
        return ended


def _distance_to_segment(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    along = end - start
    length = float(along @ along)
    t = 0.0 if length == 0 else float(np.clip((point - start) @ along / length, 0, 1))
    return float(np.hypot(*(point - (start + t * along))))
