"""What the pipeline hands to sinks and callbacks for each processed frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from edgewatch.annotate import Annotator, Overlay
from edgewatch.frame import Frame, iso_time


@dataclass(slots=True)
class FrameResult:
    """A frame and what was found in it.

    Attributes:
        frame: the decoded frame.
        detections: boxes in the frame's pixels, filtered by min score and labels, with the object id
            of each tracked box (`tracker_id`, -1 while a track is not yet an object).
        inference_ms: time the detector took on this frame.
        events: events this frame raised (docs/formats.md), in order.
        stats: the camera's stats when they were due at this frame.
        overlay: lines, zones and counts to draw.
    """

    frame: Frame
    detections: sv.Detections
    inference_ms: float
    annotator: Annotator | None = field(default=None, repr=False)
    events: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    overlay: Overlay | None = field(default=None, repr=False)
    _annotated: np.ndarray | None = field(default=None, repr=False)

    @property
    def annotated(self) -> np.ndarray:
        """The frame with boxes (and lines, zones, counts) drawn, computed once however many sinks ask."""
        if self._annotated is None:
            self._annotated = (self.annotator or Annotator()).draw(self.frame.image, self.detections, self.overlay)
        return self._annotated

    def to_json(self) -> dict[str, Any]:
        """The per-frame JSON line of the public contract (see docs/formats.md)."""
        frame = self.frame
        record: dict[str, Any] = {
            "camera": frame.camera,
            "frame": frame.index,
            "time": round(frame.time, 3),
            "wall_time": iso_time(frame.wall_time),
            "width": frame.width,
            "height": frame.height,
        }
        if frame.name is not None:
            record["file"] = frame.name
        record["detections"] = detections_json(self.detections)
        classification = self.detections.metadata.get("classification")
        if classification is not None:
            record["classification"] = {"label": classification["label"], "score": round(classification["score"], 4)}
        return record


def detections_json(detections: sv.Detections) -> list[dict[str, Any]]:
    n = len(detections)
    names = detections.data.get("class_name", [""] * n)
    class_ids = detections.class_id if detections.class_id is not None else [0] * n
    scores = detections.confidence if detections.confidence is not None else [1.0] * n
    track_ids = detections.tracker_id if detections.tracker_id is not None else [None] * n
    return [
        {
            "label": str(name),
            "class_id": int(class_id),
            "score": round(float(score), 4),
            "box": [round(float(v), 2) for v in box],
            "track_id": None if track_id is None or track_id < 0 else int(track_id),
        }
        for name, class_id, score, box, track_id in zip(
            names, class_ids, scores, detections.xyxy, track_ids, strict=True
        )
    ]
