"""Small labelled datasets made on the spot: plain images, one shade each, with the boxes a test names."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import supervision as sv


def plain_dataset(
    folder: Path,
    boxes: dict[str, list[tuple[str, float, float, float, float]]],
    classes: list[str],
    size: tuple[int, int],
    scores: dict[str, list[float]] | None = None,
) -> sv.DetectionDataset:
    """Write one plain `size` (width, height) JPEG per name of `boxes` into `folder`, and return the
    dataset of their `(class, x1, y1, x2, y2)` boxes (with `scores`, if given, as a model's)."""
    annotations = {}
    width, height = size
    for index, (name, image_boxes) in enumerate(boxes.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), np.full((height, width, 3), 40 + 50 * index % 200, dtype=np.uint8))
        annotations[str(path)] = sv.Detections(
            xyxy=np.array([box[1:] for box in image_boxes], dtype=np.float32).reshape(-1, 4),
            class_id=np.array([classes.index(box[0]) for box in image_boxes], dtype=int),
            confidence=np.array(scores[name], dtype=np.float32) if scores else None,
        )
    return sv.DetectionDataset(classes=classes, images=list(annotations), annotations=annotations)
