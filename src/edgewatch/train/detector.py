"""Training a detector: its batches (augmented crops), its validation score (AP@0.5 through the same
decoder `edgewatch run` uses) and its export in the yolov8 layout, with the score threshold that gives
the best F1 on the validation images recorded in the file (metadata `min_score`).

Training sees crops of half the input's sides when the input is large enough (a quarter of the
pixels: four times the steps per second, and a crop is a fair augmentation for a fixed camera); the
network is fully convolutional, so it runs on the whole input afterwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import supervision as sv
import torch

from edgewatch.evaluate.detection import Evaluation, evaluate
from edgewatch.models.decoders import CANDIDATE_FLOOR, DecodeOptions, decode_yolov8
from edgewatch.models.geometry import InputGeometry
from edgewatch.models.model import MIN_SCORE_KEY
from edgewatch.train.augment import augment
from edgewatch.train.classifier import as_tensor
from edgewatch.train.detection_loss import detection_loss, targets
from edgewatch.train.export import export_onnx
from edgewatch.train.nets import SIDE_MULTIPLE, STRIDE, DetectorNet, ExportedDetector
from edgewatch.train.samples import Example, TrainingData

#: crops are at least this many pixels a side
MIN_CROP = 128


def crop_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """Half of each side, down to a multiple of what the network's grids need, or the whole input
    when half would be too small.

    Example:
        >>> crop_size((512, 288)), crop_size((640, 384)), crop_size((320, 192))
        ((256, 128), (320, 192), (320, 192))
    """
    halves = [side // 2 // SIDE_MULTIPLE * SIDE_MULTIPLE for side in input_size]
    return (halves[0], halves[1]) if min(halves) >= MIN_CROP else input_size


class DetectorTask:
    """A `fit.Task`: the focal / box loss on augmented crops, AP@0.5 on the validation images."""

    metric = "ap50"

    def __init__(self, data: TrainingData, model_size: str, device: torch.device) -> None:
        self.data = data
        self.device = device
        self.net = DetectorNet(len(data.classes), model_size).to(device)
        self.crop = crop_size(data.input_size)

    def batch_loss(self, examples: list[Example], rng: np.random.Generator) -> torch.Tensor:
        images, boxes, classes, scores = [], [], [], []
        for example in examples:
            pixels, kept_boxes, keep = augment(example.pixels, example.boxes, rng, self.crop)
            images.append(pixels)
            boxes.append(kept_boxes)
            classes.append(example.classes[keep])
            scores.append(example.scores[keep])
        grid = (self.crop[0] // STRIDE, self.crop[1] // STRIDE)
        wanted = [part.to(self.device) for part in targets(boxes, classes, scores, grid, len(self.data.classes))]
        return detection_loss(self.net(as_tensor(images, self.device)), *wanted)

    def inputs(self, examples: list[Example]) -> torch.Tensor:
        return as_tensor([example.pixels for example in examples], self.device)

    @torch.no_grad()
    def predict(self, examples: list[Example]) -> list[sv.Detections]:
        """Boxes in input pixels, decoded as `edgewatch run` decodes the exported model."""
        exported = ExportedDetector(self.net, self.data.input_size).to(self.device).eval()
        identity = InputGeometry.plan(self.data.input_size, self.data.input_size, letterbox=False)
        found = []
        for start in range(0, len(examples), 32):
            chunk = examples[start : start + 32]
            outputs = exported(as_tensor([example.pixels for example in chunk], self.device)).cpu().numpy()
            for output, example in zip(outputs, chunk, strict=True):
                detections = decode_yolov8([output], identity, self.data.classes, DecodeOptions())
                detections.xyxy = _within_picture(detections.xyxy, example.geometry)
                found.append(detections)
        return found

    def validate(self) -> float:
        result = self._evaluation()
        return float(result.overall.ap50 or 0.0) if result is not None else 0.0

    def best_f1_score(self) -> float | None:
        """The score threshold with the best F1 on the validation images (None without any): the
        exported model records it, so `edgewatch run` and `eval` keep what this network is sure of."""
        result = self._evaluation()
        return result.overall.curve.best_f1_score(floor=CANDIDATE_FLOOR) if result is not None else None

    def _evaluation(self) -> Evaluation | None:
        validation = self.data.validation
        if not validation:
            return None
        truth = {
            f"{index}": sv.Detections(xyxy=example.boxes.reshape(-1, 4), class_id=example.classes)
            for index, example in enumerate(validation)
        }
        predicted = {f"{index}": detections for index, detections in enumerate(self.predict(validation))}
        return evaluate(truth, predicted, self.data.classes)

    def export(self, path: Path) -> Path:
        score = self.best_f1_score()
        metadata = {MIN_SCORE_KEY: f"{score:.3f}"} if score is not None else {}
        return export_onnx(
            ExportedDetector(self.net, self.data.input_size), self.data.input_size, self.data.classes, path, metadata
        )


def _within_picture(boxes: np.ndarray, geometry: InputGeometry) -> np.ndarray:
    """Boxes clipped to the picture inside the letterbox bars, as `edgewatch run` clips them to the frame."""
    left, top = geometry.pad_x, geometry.pad_y
    right, bottom = left + geometry.content_size[0], top + geometry.content_size[1]
    return np.clip(boxes, [left, top, left, top], [right, bottom, right, bottom]).astype(np.float32)
