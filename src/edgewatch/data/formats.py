"""Box annotations in the formats of the field: SageMaker object-detection JSON, YOLO txt, COCO.

All take boxes as xyxy pixels of the image they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def sagemaker_record(
    file: str, width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """One image's SageMaker object-detection JSON (`file`, `image_size`, `annotations` with left / top
    / width / height in pixels, `categories`), as the DeepLens retraining write-up produced."""
    used = sorted({int(class_id) for class_id in class_ids})
    return {
        "file": file,
        "image_size": [{"width": width, "height": height, "depth": 3}],
        "annotations": [
            {
                "class_id": int(class_id),
                "left": round(float(x1), 1),
                "top": round(float(y1), 1),
                "width": round(float(x2 - x1), 1),
                "height": round(float(y2 - y1), 1),
            }
            for (x1, y1, x2, y2), class_id in zip(xyxy, class_ids, strict=True)
        ],
        "categories": [{"class_id": class_id, "name": _name(labels, class_id)} for class_id in used],
    }


def yolo_lines(width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int]) -> str:
    """YOLO txt: `class cx cy w h` a line, normalised to 0..1."""
    rows = []
    for (x1, y1, x2, y2), class_id in zip(xyxy, class_ids, strict=True):
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        rows.append(f"{int(class_id)} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return "".join(row + "\n" for row in rows)


def coco_add(
    dataset: dict[str, Any], file: str, width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int],
    labels: Sequence[str],
) -> dict[str, Any]:  # fmt: skip
    """Add one image and its boxes to a COCO dataset dict (made when empty); returns it."""
    dataset.setdefault("images", [])
    dataset.setdefault("annotations", [])
    dataset.setdefault("categories", [])
    image_id = len(dataset["images"]) + 1
    dataset["images"].append({"id": image_id, "file_name": file, "width": width, "height": height})
    known = {category["id"] for category in dataset["categories"]}
    for class_id in sorted({int(class_id) for class_id in class_ids} - known):
        dataset["categories"].append({"id": class_id, "name": _name(labels, class_id)})
    for (x1, y1, x2, y2), class_id in zip(xyxy, class_ids, strict=True):
        w, h = float(x2 - x1), float(y2 - y1)
        dataset["annotations"].append(
            {
                "id": len(dataset["annotations"]) + 1,
                "image_id": image_id,
                "category_id": int(class_id),
                "bbox": [round(float(x1), 2), round(float(y1), 2), round(w, 2), round(h, 2)],
                "area": round(w * h, 2),
                "iscrowd": 0,
            }
        )
    return dataset


def _name(labels: Sequence[str], class_id: int) -> str:
    return labels[class_id] if 0 <= class_id < len(labels) else f"class_{class_id}"
