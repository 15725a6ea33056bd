"""Retraining capture (the DeepLens extension): frames worth labelling, saved raw with what the model
predicted, in SageMaker JSON, YOLO and COCO, for review and the next training run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgewatch.config import CaptureConfig, StorageConfig
from edgewatch.data.formats import coco_add, sagemaker_record, yolo_lines
from edgewatch.pipeline.result import FrameResult
from edgewatch.sinks.files import write_whole

log = logging.getLogger(__name__)

JPEG_QUALITY = 95  # near-lossless: these frames are training data


class RetrainingCapture:
    """A sink that saves at most one frame per `interval` seconds of video that has boxes (or, with
    `min_score` / `max_score`, a box in that uncertain band) under `<storage.path>/capture/<camera>/`:

    `images/<name>.jpg` (the frame without drawings), `sagemaker/<name>.json`, `yolo/<name>.txt`,
    `yolo/classes.txt` and `coco.json` (all captures of the camera), as `config.formats` asks.

    Args:
        camera: the camera's name, the start of every file name.
        config: the camera's `capture:` settings.
        storage: where `storage.path` is.
        labels: the detector's class names.
        input_size: the model's (width, height), for `size: model`; None keeps frames whole.

    Example:
        >>> capture = RetrainingCapture("door", CaptureConfig(interval=5), StorageConfig(), ["open"])  # doctest: +SKIP
    """

    def __init__(
        self,
        camera: str,
        config: CaptureConfig,
        storage: StorageConfig,
        labels: list[str],
        input_size: tuple[int, int] | None = None,
    ) -> None:
        self.camera = camera
        self.config = config
        self.labels = labels
        self.input_size = input_size if config.size == "model" else None
        self.root = Path(storage.path) / "capture" / camera
        self.saved = 0
        self._last_time: float | None = None
        coco_path = self.root / "coco.json"
        self._coco: dict[str, Any] = json.loads(coco_path.read_text()) if coco_path.exists() else {}

    def write(self, result: FrameResult) -> None:
        frame, detections = result.frame, result.detections
        if len(detections) == 0 or (
            self._last_time is not None and frame.time - self._last_time < self.config.interval
        ):
            return
        scores = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        low = self.config.min_score if self.config.min_score is not None else 0.0
        high = self.config.max_score if self.config.max_score is not None else 1.0
        if not np.any((scores >= low) & (scores <= high)):
            return  # every box is sure (or too weak): nothing a reviewer would learn from
        image, xyxy = frame.image, detections.xyxy.astype(np.float64)
        if self.input_size is not None:
            width, height = self.input_size
            scale_x, scale_y = width / frame.width, height / frame.height
            xyxy = xyxy * np.array([scale_x, scale_y, scale_x, scale_y])
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        class_ids = [int(class_id) for class_id in detections.class_id]
        try:
            self._save(f"{self.camera}_{frame.index:08d}", image, xyxy, class_ids, scores)
        except OSError as error:
            log.warning("capture %s: frame %d not saved: %s", self.camera, frame.index, error.strerror or error)
            return
        self._last_time = frame.time
        self.saved += 1

    def _save(self, name: str, image: np.ndarray, xyxy: np.ndarray, class_ids: list[int], scores: np.ndarray) -> None:
        """Write the frame and its predicted boxes, each with its score, so a reviewer sees how sure the
        model was."""
        height, width = image.shape[:2]
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError("JPEG encoding failed")
        _write(self.root / "images" / f"{name}.jpg", encoded.tobytes())
        file = f"{name}.jpg"
        if "sagemaker" in self.config.formats:
            record = sagemaker_record(file, width, height, xyxy, class_ids, self.labels, scores)
            _write(self.root / "sagemaker" / f"{name}.json", json.dumps(record).encode())
        if "yolo" in self.config.formats:
            _write(self.root / "yolo" / f"{name}.txt", yolo_lines(width, height, xyxy, class_ids, scores).encode())
            _write(self.root / "yolo" / "classes.txt", "".join(f"{label}\n" for label in self.labels).encode())
        if "coco" in self.config.formats:
            coco_add(self._coco, f"images/{file}", width, height, xyxy, class_ids, self.labels, scores)
            _write(self.root / "coco.json", json.dumps(self._coco).encode())

    def close(self) -> None:
        if self.saved:
            log.info("capture %s: %d frames saved in %s", self.camera, self.saved, self.root)


def _write(path: Path, data: bytes) -> None:
    """A file whole or absent, in a folder made on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, data)
