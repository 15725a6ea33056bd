"""Model outputs → boxes in frame pixels (or a class for classifiers), one function per layout.

Each decoder takes the outputs of one image (batch axis removed), that image's `InputGeometry` and
the label names, and returns `supervision.Detections` in frame pixels. All of them map boxes with
`InputGeometry.to_frame`, the same geometry pre-processing used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from edgewatch.errors import EdgewatchError
from edgewatch.models.base import make_detections
from edgewatch.models.geometry import InputGeometry

FORMATS = ("yolov8", "yolov5", "ssd", "ssd_tf", "classifier")

#: boxes scoring below this never reach NMS; the user's min_score filters above it
CANDIDATE_FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    nms_iou: float = 0.45
    max_detections: int = 300
    softmax: bool | None = None  # classifiers: None = apply when the outputs are not probabilities


def guess_format(shapes: Sequence[tuple[int, ...]]) -> str | None:
    """The layout that output shapes (batch axis included) suggest, or None."""
    if len(shapes) == 4 and any(len(shape) == 3 and shape[-1] == 4 for shape in shapes):
        return "ssd_tf"
    if len(shapes) != 1:
        return None
    shape = shapes[0]
    if len(shape) == 4 and shape[-1] == 7:
        return "ssd"
    if len(shape) == 2:
        return "classifier"
    if len(shape) == 3:
        rows, columns = shape[1], shape[2]
        if 5 <= rows < columns:
            return "yolov8"
        if 6 <= columns < rows:
            return "yolov5"
    return None


def fits(fmt: str, shapes: Sequence[tuple[int, ...]]) -> bool:
    """Whether outputs of these shapes (batch axis included) can be read as layout `fmt` at all; a
    layout forced on a model that does not fit would fail inside the decoder, or read noise."""
    ranks = [len(shape) for shape in shapes]
    if fmt == "ssd_tf":
        return len(shapes) in (3, 4) and any(
            rank == 3 and shape[-1] == 4 for rank, shape in zip(ranks, shapes, strict=True)
        )
    if len(shapes) != 1:
        return False
    shape = shapes[0]
    if fmt == "yolov8":
        return len(shape) == 3 and shape[1] >= 5 and shape[2] >= 1
    if fmt == "yolov5":
        return len(shape) == 3 and shape[2] >= 6 and shape[1] >= 1
    if fmt == "ssd":
        return len(shape) in (3, 4) and shape[-1] == 7
    if fmt == "classifier":
        return len(shape) == 2 and shape[1] >= 2
    return False


def describe_outputs(names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape in zip(names, shapes, strict=True))


def class_count(fmt: str, shapes: Sequence[tuple[int, ...]]) -> int | None:
    """How many classes the layout says the model has; None when the outputs do not say."""
    shape = shapes[0]
    if fmt == "yolov8":
        return shape[1] - 4
    if fmt == "yolov5":
        return shape[2] - 5
    if fmt == "classifier":
        return shape[1]
    return None


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, options: DecodeOptions) -> np.ndarray:
    """Per-class NMS (OpenCV's batched NMS) on xyxy boxes; indices kept, best first."""
    if len(boxes) == 0:
        return np.empty(0, np.int64)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    kept = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), scores.tolist(), classes.tolist(), 0.0, options.nms_iou, top_k=options.max_detections
    )
    return np.asarray(kept, np.int64).reshape(-1)


def _center_to_corners(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2
    return np.column_stack([boxes[:, :2] - half, boxes[:, :2] + half])


def _finish(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    geometry: InputGeometry,
    labels: list[str],
    options: DecodeOptions,
) -> sv.Detections:
    keep = _nms(boxes, scores, classes, options)
    return make_detections(geometry.to_frame(boxes[keep]), scores[keep], classes[keep], labels)


def decode_yolov8(
    outputs: list[np.ndarray], geometry: InputGeometry, labels: list[str], options: DecodeOptions
) -> sv.Detections:
    """[4 + C, N]: cx, cy, w, h in input pixels, then one score per class (no objectness)."""
    output = outputs[0]
    class_scores = output[4:]
    # reduce along the contiguous axis first; only the few candidates need their argmax (5x faster)
    candidates = np.flatnonzero(class_scores.max(axis=0) >= CANDIDATE_FLOOR)
    scores = class_scores[:, candidates]
    classes = scores.argmax(axis=0)
    return _finish(
        _center_to_corners(output[:4, candidates].T), scores[classes, np.arange(len(candidates))], classes,
        geometry, labels, options,
    )  # fmt: skip


def decode_yolov5(
    outputs: list[np.ndarray], geometry: InputGeometry, labels: list[str], options: DecodeOptions
) -> sv.Detections:
    """[N, 5 + C]: cx, cy, w, h, objectness, then class scores; score = objectness × class score."""
    table = outputs[0]
    table = table[table[:, 4] >= CANDIDATE_FLOOR]
    class_scores = table[:, 5:] * table[:, 4:5]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(table)), classes]
    candidates = scores >= CANDIDATE_FLOOR
    return _finish(
        _center_to_corners(table[candidates, :4]), scores[candidates], classes[candidates], geometry, labels, options
    )


def _normalised_to_input(boxes: np.ndarray, geometry: InputGeometry) -> np.ndarray:
    width, height = geometry.input_size
    return boxes * np.array([width, height, width, height], np.float32)


def decode_ssd(
    outputs: list[np.ndarray], geometry: InputGeometry, labels: list[str], options: DecodeOptions
) -> sv.Detections:
    """DetectionOutput [1, N, 7]: image_id, label, conf, xmin, ymin, xmax, ymax (0..1 of the input).
    Rows after the first image_id of -1 are padding. NMS already ran inside the model."""
    rows = outputs[0].reshape(-1, 7)
    ends = np.nonzero(rows[:, 0] < 0)[0]
    rows = rows[: ends[0]] if len(ends) else rows
    rows = rows[rows[:, 2] >= CANDIDATE_FLOOR][: options.max_detections]
    classes = rows[:, 1].astype(np.int64)
    boxes = geometry.to_frame(_normalised_to_input(rows[:, 3:7], geometry))
    return make_detections(boxes, rows[:, 2], classes, _labels_for(labels, classes))


def decode_ssd_tf(
    outputs: list[np.ndarray], geometry: InputGeometry, labels: list[str], options: DecodeOptions
) -> sv.Detections:
    """TensorFlow's 4 outputs: boxes [N, 4] as ymin, xmin, ymax, xmax (0..1), classes [N], scores [N],
    count []. Told apart by shape: boxes have 4 columns, count is a single number, and of the two
    [N] outputs the scores are the one within 0..1 that is not all whole numbers."""
    boxes = next(output for output in outputs if output.ndim == 2 and output.shape[-1] == 4)
    count_output = next((output for output in outputs if output.size == 1), None)
    vectors = [output.reshape(-1) for output in outputs if output.ndim == 1 and output.size > 1]
    if len(vectors) != 2:
        vectors = [output.reshape(-1) for output in outputs if output is not boxes and output is not count_output]
    first, second = vectors
    first_is_scores = np.any(first != np.round(first)) and first.max(initial=0) <= 1
    scores, classes = (first, second) if first_is_scores else (second, first)
    count = int(count_output.reshape(-1)[0]) if count_output is not None else len(scores)
    boxes, scores, classes = boxes[:count], scores[:count], classes[:count].astype(np.int64)
    keep = scores >= CANDIDATE_FLOOR
    corners = boxes[keep][:, [1, 0, 3, 2]]
    frame_boxes = geometry.to_frame(_normalised_to_input(corners, geometry))
    return make_detections(frame_boxes, scores[keep], classes[keep], _labels_for(labels, classes[keep]))


def decode_classifier(
    outputs: list[np.ndarray], geometry: InputGeometry, labels: list[str], options: DecodeOptions
) -> sv.Detections:
    """[C] logits or probabilities → the best class, as `metadata["classification"]` with no boxes."""
    values = outputs[0].reshape(-1).astype(np.float64)
    looks_like_probabilities = values.min() >= 0 and abs(values.sum() - 1) < 1e-3
    if options.softmax or (options.softmax is None and not looks_like_probabilities):
        values = np.exp(values - values.max())
        values /= values.sum()
    best = int(values.argmax())
    detections = make_detections(np.empty((0, 4)), np.empty(0), np.empty(0, np.int64), labels)
    detections.metadata["classification"] = {
        "label": _labels_for(labels, np.array([best]))[best],
        "score": float(values[best]),
    }
    return detections


def _labels_for(labels: list[str], classes: np.ndarray) -> list[str]:
    """Labels long enough for every class id that occurs (ids past the names become class_N)."""
    needed = int(classes.max()) + 1 if len(classes) else 0
    return labels + [f"class_{index}" for index in range(len(labels), needed)]


DECODERS: dict[str, Callable[[list[np.ndarray], InputGeometry, list[str], DecodeOptions], sv.Detections]] = {
    "yolov8": decode_yolov8,
    "yolov5": decode_yolov5,
    "ssd": decode_ssd,
    "ssd_tf": decode_ssd_tf,
    "classifier": decode_classifier,
}


def check_format(fmt: str) -> str:
    if fmt not in DECODERS:
        raise EdgewatchError(f"unknown model format '{fmt}'", f"use one of {', '.join(FORMATS)}")
    return fmt
