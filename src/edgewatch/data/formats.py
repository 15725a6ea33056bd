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


CSV_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def csv_rows(
    file: str, width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int], labels: Sequence[str]
) -> list[list[Any]]:
    """CSV rows (`CSV_COLUMNS`), one per box in xyxy pixels; an image without boxes has no row."""
    return [
        [file, width, height, _name(labels, int(class_id)), *(round(float(value), 1) for value in box)]
        for box, class_id in zip(xyxy, class_ids, strict=True)
    ]


def read_sagemaker_record(
    record: Any,
) -> tuple[str, tuple[int, int], np.ndarray, list[int], dict[int, str]]:
    """The inverse of `sagemaker_record`: `(file, (width, height), xyxy, class_ids, names by class id)`.

    Raises:
        ValueError: a key is missing or a value is not a number, naming which.

    Example:
        >>> record = sagemaker_record("a.jpg", 64, 48, np.array([[1, 2, 11, 22]]), [0], ["car"])
        >>> read_sagemaker_record(record)[2].tolist(), read_sagemaker_record(record)[4]
        ([[1.0, 2.0, 11.0, 22.0]], {0: 'car'})
    """
    try:
        file = record["file"]
        size = record["image_size"][0]
        width, height = int(size["width"]), int(size["height"])
        boxes = [
            (int(box["class_id"]), float(box["left"]), float(box["top"]), float(box["width"]), float(box["height"]))
            for box in record["annotations"]
        ]
        names = {int(category["class_id"]): str(category["name"]) for category in record.get("categories", [])}
    except KeyError as error:
        raise ValueError(f"missing {error}") from None
    except (TypeError, ValueError, IndexError) as error:
        raise ValueError(f"not a SageMaker record ({error})") from None
    if not isinstance(file, str) or not file:
        raise ValueError("'file' is not a file name")
    xywh = np.array([box[1:] for box in boxes], dtype=np.float64).reshape(-1, 4)
    xyxy = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
    return file, (width, height), xyxy, [box[0] for box in boxes], names
