"""Drawing detections onto frames, with supervision's annotators."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import supervision as sv


@dataclass(frozen=True, slots=True)
class Overlay:
    """What analytics adds to a frame's picture, as it stood at that frame."""

    lines: list[tuple[str, np.ndarray, np.ndarray, int, int]] = field(default_factory=list)  # name, a, b, in, out
    zones: list[tuple[str, np.ndarray, int]] = field(default_factory=list)  # name, polygon, occupancy
    counts: dict[str, int] = field(default_factory=dict)  # unique objects per label so far
    state: str | None = None


class Annotator:
    """Draws each box with its label and score (and track id once tracking runs).

    Example:
        >>> import numpy as np
        >>> from edgewatch.models import make_detections
        >>> boxes = make_detections(np.array([[10, 10, 60, 90]]), np.array([0.9]), np.array([0]), ["person"])
        >>> Annotator().draw(np.zeros((100, 100, 3), np.uint8), boxes).shape
        (100, 100, 3)
    """

    def __init__(self) -> None:
        self._boxes = sv.BoxAnnotator(thickness=2)
        self._labels = sv.LabelAnnotator(text_scale=0.5, text_thickness=1, text_padding=4)

    def draw(self, image: np.ndarray, detections: sv.Detections, overlay: Overlay | None = None) -> np.ndarray:
        """A copy of `image` with the detections (and the overlay) drawn; the original is left untouched."""
        canvas = image.copy()
        if overlay is not None:
            _draw_zones(canvas, overlay)
            _draw_lines(canvas, overlay)
        captions = []
        classification = detections.metadata.get("classification")
        if classification is not None:
            captions.append(f"{classification['label']} {classification['score']:.2f}")
        if overlay is not None:
            if overlay.state is not None:
                captions.append(f"state: {overlay.state}")
            captions += [f"{label}: {count}" for label, count in sorted(overlay.counts.items())]
        for row, caption in enumerate(captions):
            _text(canvas, caption, (8, 24 + 22 * row), 0.6)
        if len(detections) == 0:
            return canvas
        canvas = self._boxes.annotate(canvas, detections)
        return self._labels.annotate(canvas, detections, labels=box_captions(detections))


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    """White text with a dark outline, readable on any background."""
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _draw_lines(canvas: np.ndarray, overlay: Overlay) -> None:
    for name, start, end, count_in, count_out in overlay.lines:
        a, b = tuple(map(int, np.round(start))), tuple(map(int, np.round(end)))
        cv2.line(canvas, a, b, (0, 255, 255), 2, cv2.LINE_AA)
        _text(canvas, f"{name} in {count_in} out {count_out}", (a[0] + 6, max(14, a[1] + 16)), 0.5)


def _draw_zones(canvas: np.ndarray, overlay: Overlay) -> None:
    for name, polygon, occupancy in overlay.zones:
        points = np.round(polygon).astype(np.int32)
        shaded = canvas.copy()
        cv2.fillPoly(shaded, [points], (255, 120, 0))
        cv2.addWeighted(shaded, 0.25, canvas, 0.75, 0, dst=canvas)
        cv2.polylines(canvas, [points], True, (255, 120, 0), 2, cv2.LINE_AA)
        corner = points.min(axis=0)
        _text(canvas, f"{name}: {occupancy}", (int(corner[0]) + 4, int(corner[1]) + 18), 0.5)


def box_captions(detections: sv.Detections) -> list[str]:
    names = detections.data.get("class_name", [""] * len(detections))
    scores = detections.confidence if detections.confidence is not None else [None] * len(detections)
    ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
    captions = []
    for name, score, track_id in zip(names, scores, ids, strict=True):
        caption = f"#{track_id} {name}" if track_id is not None and track_id >= 0 else str(name)
        captions.append(f"{caption} {score:.2f}" if score is not None else caption)
    return captions
