"""Box annotations in the formats of the field: SageMaker object-detection JSON, YOLO txt, COCO.

All take boxes as xyxy pixels of the image they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def sagemaker_record(
    file: str, width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int], labels: Sequence[str],
    scores: Sequence[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One image's SageMaker object-detection JSON (`file`, `image_size`, `annotations` with left / top
    / width / height in pixels, `categories`), as the DeepLens retraining write-up produced. With
    `scores` (a model's predictions), each annotation also gets its `score`."""
    used = sorted({int(class_id) for class_id in class_ids})
    annotations = [
        {
            "class_id": int(class_id),
            "left": round(float(x1), 1),
            "top": round(float(y1), 1),
            "width": round(float(x2 - x1), 1),
            "height": round(float(y2 - y1), 1),
        }
        for (x1, y1, x2, y2), class_id in zip(xyxy, class_ids, strict=True)
    ]
    for annotation, score in zip(annotations, scores if scores is not None else [], strict=False):
        annotation["score"] = round(float(score), 4)
    return {
        "file": file,
        "image_size": [{"width": width, "height": height, "depth": 3}],
        "annotations": annotations,
        "categories": [{"class_id": class_id, "name": _name(labels, class_id)} for class_id in used],
    }


def yolo_lines(
    width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int], scores: Sequence[float] | None = None
) -> str:
    """YOLO txt: `class cx cy w h` a line, normalised to 0..1; with `scores`, a sixth column holds the
    score, as Ultralytics writes predictions with `save_conf`."""
    rows = []
    for k, ((x1, y1, x2, y2), class_id) in enumerate(zip(xyxy, class_ids, strict=True)):
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        row = f"{int(class_id)} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
        rows.append(row + (f" {float(scores[k]):.4f}" if scores is not None else ""))
    return "".join(row + "\n" for row in rows)


def coco_add(
    dataset: dict[str, Any], file: str, width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int],
    labels: Sequence[str], scores: Sequence[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Add one image and its boxes (with `scores`: each box's `score`, as in COCO results) to a COCO
    dataset dict (made when empty); returns it."""
    dataset.setdefault("images", [])
    dataset.setdefault("annotations", [])
    dataset.setdefault("categories", [])
    image_id = len(dataset["images"]) + 1
    dataset["images"].append({"id": image_id, "file_name": file, "width": width, "height": height})
    known = {category["id"] for category in dataset["categories"]}
    for class_id in sorted({int(class_id) for class_id in class_ids} - known):
        dataset["categories"].append({"id": class_id, "name": _name(labels, class_id)})
    for k, ((x1, y1, x2, y2), class_id) in enumerate(zip(xyxy, class_ids, strict=True)):
        w, h = float(x2 - x1), float(y2 - y1)
        annotation = {
            "id": len(dataset["annotations"]) + 1,
            "image_id": image_id,
            "category_id": int(class_id),
            "bbox": [round(float(x1), 2), round(float(y1), 2), round(w, 2), round(h, 2)],
            "area": round(w * h, 2),
            "iscrowd": 0,
        }
        if scores is not None:
            annotation["score"] = round(float(scores[k]), 4)
        dataset["annotations"].append(annotation)
    return dataset


def _name(labels: Sequence[str], class_id: int) -> str:
    return labels[class_id] if 0 <= class_id < len(labels) else f"class_{class_id}"


CSV_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
#: predictions add a last column
SCORE_COLUMN = "score"


def csv_rows(
    file: str, width: int, height: int, xyxy: np.ndarray, class_ids: Sequence[int], labels: Sequence[str],
    scores: Sequence[float] | None = None,
) -> list[list[Any]]:  # fmt: skip
    """CSV rows (`CSV_COLUMNS`, then `SCORE_COLUMN` with `scores`), one per box in xyxy pixels; an image
    without boxes has no row."""
    rows = [
        [file, width, height, _name(labels, int(class_id)), *(round(float(value), 1) for value in box)]
        for box, class_id in zip(xyxy, class_ids, strict=True)
    ]
    if scores is not None:
        rows = [[*row, round(float(score), 4)] for row, score in zip(rows, scores, strict=True)]
    return rows


def read_sagemaker_record(
    record: Any,
) -> tuple[str, tuple[int, int], np.ndarray, list[int], dict[int, str], np.ndarray | None]:
    """The inverse of `sagemaker_record`: `(file, (width, height), xyxy, class_ids, names by class id,
    scores)`; scores are None unless every annotation has one.

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
        scored = bool(boxes) and all("score" in box for box in record["annotations"])
        scores = np.array([float(box["score"]) for box in record["annotations"]]) if scored else None
        names = {int(category["class_id"]): str(category["name"]) for category in record.get("categories", [])}
    except KeyError as error:
        raise ValueError(f"missing {error}") from None
    except (TypeError, ValueError, IndexError) as error:
        raise ValueError(f"not a SageMaker record ({error})") from None
    if not isinstance(file, str) or not file:
        raise ValueError("'file' is not a file name")
    xywh = np.array([box[1:] for box in boxes], dtype=np.float64).reshape(-1, 4)
    xyxy = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
    return file, (width, height), xyxy, [box[0] for box in boxes], names, scores
