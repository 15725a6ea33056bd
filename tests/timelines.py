"""Feeding analytics by hand: boxes per frame in, events out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from edgewatch.analytics.camera import CameraAnalytics
from edgewatch.config import CameraConfig
from edgewatch.frame import Frame
from edgewatch.models import make_detections

LABELS = ["person", "car", "cat", "dog", "dog1", "dog2"]
BLANK = np.zeros((360, 640, 3), np.uint8)
FPS = 25.0


def boxes(*items: tuple[str, Sequence[float]], score: float = 0.9):
    """Detections from (label, xyxy) pairs."""
    xyxy = np.array([box for _, box in items], np.float32).reshape(-1, 4)
    class_ids = np.array([LABELS.index(label) for label, _ in items], int)
    return make_detections(xyxy, np.full(len(items), score), class_ids, LABELS)


def frame(index: int, image: np.ndarray = BLANK) -> Frame:
    return Frame(image, "test", index, index / FPS)


def analytics(**camera: object) -> CameraAnalytics:
    return CameraAnalytics("test", CameraConfig(source="test.mp4", **camera), fps=FPS)


def run(camera: CameraAnalytics, timeline: Iterable, start: int = 0) -> list[dict]:
    """Feed one detections object per frame; returns every event, the end-of-input ones included."""
    events = []
    for index, detections in enumerate(timeline, start):
        events += camera.update(frame(index), detections).events
    return events + camera.finish().events


def moving_box(start: Sequence[float], step: Sequence[float], frames: int, size=(20.0, 60.0)):
    """xyxy boxes of an object whose top-left corner moves by `step` a frame."""
    x, y = start
    return [
        (x + step[0] * i, y + step[1] * i, x + step[0] * i + size[0], y + step[1] * i + size[1]) for i in range(frames)
    ]


def of_type(events: list[dict], kind: str, **match: object) -> list[dict]:
    return [event for event in events if event["type"] == kind and all(event.get(k) == v for k, v in match.items())]
