"""The interface every detector offers the pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import supervision as sv


class Detector(ABC):
    """Finds objects in one BGR image.

    `detect` returns `supervision.Detections` with boxes (xyxy) in the pixels of the image it was given,
    `confidence` in 0..1, `class_id`, and the label of each box in `data["class_name"]`.
    """

    #: the detector's name as the user typed it
    name: str = ""
    #: label of each class id
    labels: list[str]
    #: scores below this are dropped when the user gives no --min-score
    default_min_score: float = 0.0
    #: a track counts once the median of its recent scores reaches this, when the user sets none
    default_threshold: float = 0.0
    #: the score threshold the model file itself records (`edgewatch train` writes its best-F1 one);
    #: None where it records none. When set, it is `default_min_score` and `default_threshold` too.
    recorded_min_score: float | None = None
    #: frames worth handing to `detect_batch` at once (more than 1 only where one call serves them all)
    max_batch: int = 1

    @abstractmethod
    def detect(self, image: np.ndarray) -> sv.Detections:
        """Boxes found in `image` (BGR, uint8, HxWx3)."""

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """Detections for several images; model runtimes override it to make one call."""
        return [self.detect(image) for image in images]

    def close(self) -> None:
        """Release what the detector holds."""


def make_detections(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, labels: list[str]) -> sv.Detections:
    """Detections from parallel arrays, with each box's label filled in from `labels`."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    names = np.asarray(labels, dtype=object)[class_ids] if len(class_ids) else np.empty(0, dtype=object)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.asarray(scores, dtype=np.float32).reshape(-1),
        class_id=class_ids,
        data={"class_name": names.astype(str)},
    )


def xywh_to_xyxy(rects: np.ndarray) -> np.ndarray:
    """OpenCV's (x, y, w, h) rectangles as (x1, y1, x2, y2)."""
    rects = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
    return np.column_stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]])
