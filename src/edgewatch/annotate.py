"""Drawing detections onto frames, with supervision's annotators."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv


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

    def draw(self, image: np.ndarray, detections: sv.Detections) -> np.ndarray:
        """A copy of `image` with the detections drawn; the original is left untouched."""
        canvas = image.copy()
        classification = detections.metadata.get("classification")
        if classification is not None:
            caption = f"{classification['label']} {classification['score']:.2f}"
            cv2.putText(canvas, caption, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(canvas, caption, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        if len(detections) == 0:
            return canvas
        canvas = self._boxes.annotate(canvas, detections)
        return self._labels.annotate(canvas, detections, labels=box_captions(detections))


def box_captions(detections: sv.Detections) -> list[str]:
    names = detections.data.get("class_name", [""] * len(detections))
    scores = detections.confidence if detections.confidence is not None else [None] * len(detections)
    ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
    captions = []
    for name, score, track_id in zip(names, scores, ids, strict=True):
        caption = f"#{track_id} {name}" if track_id is not None else str(name)
        captions.append(f"{caption} {score:.2f}" if score is not None else caption)
    return captions
