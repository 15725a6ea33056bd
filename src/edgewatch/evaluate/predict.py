"""Running a model on labelled images, for `edgewatch eval --model`: the same detectors `edgewatch run`
loads, applied to each image once, their boxes or labels kept by image file name."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from edgewatch.errors import EdgewatchError
from edgewatch.evaluate.detection import DEFAULT_SCORE, LabelMatcher
from edgewatch.models import Detector, load_model
from edgewatch.progress import with_progress

log = logging.getLogger(__name__)

__all__ = ["load_model", "predict_boxes", "predict_labels", "table_score"]  # load_model: edgewatch.models'


def table_score(detector: Detector | None, given: float | None) -> float:
    """The evaluation table's score threshold: the user's, else the one the model records for itself
    (`edgewatch train` writes its best-F1 one), else `DEFAULT_SCORE`."""
    if given is not None:
        return given
    recorded = detector.recorded_min_score if detector is not None else None
    return recorded if recorded is not None else DEFAULT_SCORE


def predict_boxes(detector: Detector, images: Iterable[str | Path], classes: list[str]) -> dict[str, sv.Detections]:
    """The detector's boxes on each image, every score kept (AP needs the low ones), class ids mapped to
    `classes` by label name, ignoring case; labels the truth lacks are left out with a warning."""
    matcher = LabelMatcher(classes)
    images = list(images)
    predictions = {
        Path(image).name: matcher.keep(detector.detect(_read(image)), detector.labels)
        for image in with_progress(images, len(images), "eval", "image")
    }
    matcher.warn()
    return predictions


def predict_labels(detector: Detector, images: Iterable[str | Path]) -> dict[str, str]:
    """A whole-image classifier's label of each image, by file name."""
    predicted = {}
    images = list(images)
    for image in with_progress(images, len(images), "eval", "image"):
        classification = detector.detect(_read(image)).metadata.get("classification")
        if classification is None:
            raise EdgewatchError(f"{detector.name or 'the model'} is no classifier", "give a classifier's model")
        predicted[Path(image).name] = str(classification["label"])
    return predicted


def _read(image: str | Path) -> np.ndarray:
    picture = cv2.imread(str(image))
    if picture is None:
        raise EdgewatchError(f"cannot read image {image}", "is it a whole .jpg or .png?")
    return picture
