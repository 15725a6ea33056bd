"""How good a detector is on labelled images: the table of the DeepLens write-up (expected / true /
false / missed boxes and their mean confidence), precision, recall, F1, AP@0.5 and mAP@[.5:.95].

`evaluate` only computes; the readers (`load_truth`, `read_run_json`, `read_coco_results`,
`read_evaluation`) and `pr_curve_png` are the only functions here that touch files.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv
from supervision.metrics import MeanAveragePrecision

from edgewatch.data import datasets
from edgewatch.errors import EdgewatchError

log = logging.getLogger(__name__)

TRUTH_FORMATS: tuple[str, ...] = datasets.FORMATS
#: the table's score threshold where neither the user nor the model names one
DEFAULT_SCORE = 0.3


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall after each prediction, predictions taken by descending score.

    `scores[k]` is the score of the k-th prediction, so the point of a score threshold `s` is the last
    `k` with `scores[k] >= s`.
    """

    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    @classmethod
    def from_hits(cls, scores: np.ndarray, hits: np.ndarray, expected: int) -> PRCurve:
        order = np.argsort(-scores, kind="stable")
        true = np.cumsum(hits[order])
        taken = np.arange(1, len(order) + 1)
        recall = true / expected if expected else np.zeros(len(order))
        return cls(scores=scores[order], precision=true / taken, recall=recall)

    def best_f1_score(self, floor: float = 0.0) -> float | None:
        """The score threshold with the best F1: halfway between the last prediction it keeps and the
        next one down (the widest margin to either), not below `floor` (the lowest score predictions
        can have); None without a true prediction.

        Example:
            >>> curve = PRCurve.from_hits(np.array([0.9, 0.6, 0.2, 0.1]), np.array([True, True, False, True]), 3)
            >>> round(curve.best_f1_score(), 2)  # keeping 0.9 and 0.6: F1 0.8; keeping all four: 0.86
            0.05
            >>> round(curve.best_f1_score(floor=0.06), 2)
            0.08
        """
        f1 = np.divide(2 * self.precision * self.recall, self.precision + self.recall,
                       out=np.zeros(len(self.scores)), where=self.precision + self.recall > 0)  # fmt: skip
        if not len(f1) or f1.max() == 0:
            return None
        best = int(np.argmax(f1))
        below = self.scores[best + 1] if best + 1 < len(self.scores) else floor  # none lower were seen
        return max(floor, float(self.scores[best] + below) / 2)


@dataclass(frozen=True)
class ClassScores:
    """One row of the evaluation table: one class, or all of them.

    Attributes:
        expected: truth boxes.
        true: predictions at or above the score threshold matched one-to-one to a truth box of the same
            class with IoU >= the IoU threshold.
        false: the other predictions at or above the score threshold (wrong place, wrong class, or a
            second box on an object already matched).
        missed: truth boxes no prediction at or above the score threshold matched (`expected - true`).
        mean_confidence_true: mean score of the true predictions (`None` without any).
        mean_confidence_false: mean score of the false predictions (`None` without any).
        ap50: average precision at IoU 0.5 over all predictions, whatever their score (`None` for a
            class without truth boxes). For all classes: the mean over classes (mAP@0.5).
        map: the same averaged over IoU 0.50, 0.55, ..., 0.95 (COCO's mAP@[.5:.95]).
        curve: precision / recall over all predictions at the evaluation's IoU threshold.
    """

    expected: int
    true: int
    false: int
    missed: int
    mean_confidence_true: float | None
    mean_confidence_false: float | None
    ap50: float | None
    map: float | None
    curve: PRCurve = field(repr=False)

    @property
    def precision(self) -> float | None:
        """true / (true + false); `None` without predictions."""
        predicted = self.true + self.false
        return self.true / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        """true / expected; `None` without truth boxes."""
        return self.true / self.expected if self.expected else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall: 2 true / (expected + true + false)."""
        total = self.expected + self.true + self.false
        if self.precision is None and self.recall is None:
            return None
        return 2 * self.true / total if total else None

    def to_json(self, digits: int | None = 4) -> dict[str, Any]:
        """The row's numbers by their JSON keys, floats rounded to `digits` (`None`: not rounded)."""

        def _round(value: float | None) -> float | None:
            if value is None:
                return None
            return float(value) if digits is None else round(float(value), digits)

        return {
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
            "ap50": _round(self.ap50),
            "map": _round(self.map),
            "expected": self.expected,
            "true": self.true,
            "false": self.false,
            "missed": self.missed,
            "mean_confidence_true": _round(self.mean_confidence_true),
            "mean_confidence_false": _round(self.mean_confidence_false),
        }


@dataclass(frozen=True)
class Evaluation:
    """The result of `evaluate`: the overall row and one row per class.

    Attributes:
        classes: class names; a `class_id` indexes this list.
        iou: IoU a prediction needs with a truth box of its class to count as true.
        score: predictions scoring below it are left out of the table (not out of AP).
        images: how many truth images were evaluated.
        overall: all classes together (AP: the mean over classes that have truth boxes).
        per_class: class name -> its row, in the order of `classes`.
        unmatched: names of predicted images that are not in the truth (left out).
    """

    classes: list[str]
    iou: float
    score: float
    images: int
    overall: ClassScores
    per_class: dict[str, ClassScores]
    unmatched: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The `--json` file of `edgewatch eval` (see docs/evaluation.md)."""
        thresholds = {"iou": self.iou, "score": self.score}
        return {
            "images": self.images,
            **thresholds,
            "overall": {**self.overall.to_json(), **thresholds},
            "per_class": {name: {**row.to_json(), **thresholds} for name, row in self.per_class.items()},
        }

    def table(self) -> str:
        """The evaluation table, one row per class and `all` last, as Markdown that lines up in a terminal."""
        title = f"{self.images} images, IoU >= {self.iou:g}, score >= {self.score:g}"
        rows = [[name, *_row_cells(row.to_json(digits=None))] for name, row in self.per_class.items()]
        rows.append(["all", *_row_cells(self.overall.to_json(digits=None))])
        return title + "\n" + _markdown(["class", *_COLUMNS], rows)


def evaluate(
    truth: Mapping[str, sv.Detections],
    predictions: Mapping[str, sv.Detections],
    classes: list[str],
    iou: float = 0.5,
    score: float = DEFAULT_SCORE,
) -> Evaluation:
    """Compare predicted boxes with truth boxes, image by image.

    Images are matched by file name (the last part of the key, so `images/a.jpg` and `a.jpg` are the
    same image). A truth image without predictions counts as one where the detector found nothing;
    predictions for an image not in the truth are left out and named in `Evaluation.unmatched`.
    Both sides carry `class_id` indexing `classes`; predictions carry `confidence` (1.0 when absent).

    Args:
        truth: image name -> truth boxes.
        predictions: image name -> predicted boxes, all of them: the table keeps those scoring at least
            `score`, AP uses every one.
        classes: class names.
        iou: IoU with a truth box of the same class that makes a prediction true.
        score: the score threshold of the table, precision, recall and F1.

    Returns:
        The evaluation.

    Raises:
        EdgewatchError: when predictions name images but none of them is in the truth, or two truth
            images share a file name.

    Example:
        >>> import numpy as np, supervision as sv
        >>> truth = {"a.jpg": sv.Detections(xyxy=np.array([[0.0, 0, 10, 10]]), class_id=np.array([0]))}
        >>> boxes = np.array([[0.0, 0, 10, 10], [50, 50, 60, 60]])
        >>> pred = {"a.jpg": sv.Detections(xyxy=boxes, class_id=np.array([0, 0]), confidence=np.array([0.9, 0.4]))}
        >>> result = evaluate(truth, pred, ["person"])
        >>> result.overall.true, result.overall.false, result.overall.missed, result.overall.precision
        (1, 1, 0, 0.5)
    """
    if not 0.0 < iou <= 1.0:
        raise EdgewatchError(f"IoU threshold {iou} is out of range", "give a value in (0, 1], usually 0.5")
    truth_by_name = _by_name(truth, "truth")
    predicted_by_name = _by_name(predictions, "predictions")
    unmatched = tuple(sorted(set(predicted_by_name) - set(truth_by_name)))
    if predicted_by_name and len(unmatched) == len(predicted_by_name):
        raise EdgewatchError(
            f"none of the {len(predicted_by_name)} predicted images is in the truth (e.g. {unmatched[0]!r})",
            "predictions are matched to labels by image file name; run the detector on the labelled images",
        )
    names = sorted(truth_by_name)
    truths = [_boxes(truth_by_name[name], scored=False) for name in names]
    preds = [_boxes(predicted_by_name.get(name), scored=True) for name in names]

    # One pass over all predictions: greedy matching by descending score means the matches of the
    # predictions above any threshold are the same as if only those had been matched.
    hits = np.concatenate([match(t, p, iou) for t, p in zip(truths, preds, strict=True)] or [np.zeros(0, bool)])
    scores = np.concatenate([p.confidence for p in preds] or [np.zeros(0)])
    predicted_class = np.concatenate([p.class_id for p in preds] or [np.zeros(0, int)])
    truth_class = np.concatenate([t.class_id for t in truths] or [np.zeros(0, int)])
    ap50, ap = _average_precision(truths, preds, len(classes))

    def row(selected: np.ndarray, expected: int, ap50_value: float | None, map_value: float | None) -> ClassScores:
        kept = selected & (scores >= score)
        true = int(np.count_nonzero(kept & hits))
        false = int(np.count_nonzero(kept & ~hits))
        return ClassScores(
            expected=expected,
            true=true,
            false=false,
            missed=expected - true,
            mean_confidence_true=_mean(scores[kept & hits]),
            mean_confidence_false=_mean(scores[kept & ~hits]),
            ap50=ap50_value,
            map=map_value,
            curve=PRCurve.from_hits(scores[selected], hits[selected], expected),
        )

    per_class = {
        name: row(predicted_class == k, int(np.count_nonzero(truth_class == k)), ap50[k], ap[k])
        for k, name in enumerate(classes)
    }
    overall = row(np.ones(len(scores), bool), len(truth_class), _mean_valid(ap50), _mean_valid(ap))
    return Evaluation(
        classes=list(classes),
        iou=iou,
        score=score,
        images=len(names),
        overall=overall,
        per_class=per_class,
        unmatched=unmatched,
    )


def match(truth: sv.Detections, predictions: sv.Detections, iou: float = 0.5) -> np.ndarray:
    """Which predictions are true: matched one-to-one to a truth box of their class with IoU >= `iou`.

    Predictions are taken by descending confidence, each to the unmatched truth box of its class it
    overlaps most (COCO's rule), so a second box on the same object is false.

    Example:
        >>> import numpy as np, supervision as sv
        >>> truth = sv.Detections(xyxy=np.array([[0.0, 0, 10, 10]]), class_id=np.array([0]))
        >>> twice = sv.Detections(xyxy=np.array([[0.0, 0, 10, 10]] * 2), class_id=np.array([0, 0]),
        ...                       confidence=np.array([0.5, 0.9]))
        >>> match(truth, twice).tolist()
        [False, True]
    """
    hits = np.zeros(len(predictions), bool)
    if len(truth) == 0 or len(predictions) == 0:
        return hits
    overlap = sv.box_iou_batch(predictions.xyxy, truth.xyxy)
    overlap[predictions.class_id[:, None] != truth.class_id[None, :]] = -1.0
    confidence = predictions.confidence if predictions.confidence is not None else np.ones(len(predictions))
    taken = np.zeros(len(truth), bool)
    for i in np.argsort(-confidence, kind="stable"):
        candidates = np.where(taken, -1.0, overlap[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= iou:
            taken[j] = hits[i] = True
    return hits


# --- reading truth and predictions ----------------------------------------------------------------


def load_truth(path: Path, format: str | None = None) -> tuple[list[str], dict[str, sv.Detections]]:
    """Labelled images as (class names, image file name -> truth boxes in pixels); see `load_truth_dataset`."""
    dataset = load_truth_dataset(path, format)
    return list(dataset.classes), by_file_name(dataset)


def by_file_name(dataset: sv.DetectionDataset) -> dict[str, sv.Detections]:
    """The dataset's boxes by image file name, as predictions are matched to them."""
    return _by_name(dataset.annotations, "labelled")


def load_truth_dataset(path: Path, format: str | None = None) -> sv.DetectionDataset:
    """The labelled dataset, in any format `edgewatch data` reads (guessed when `format` is None).

    * `coco`: the annotation JSON (or its folder); the images need not be there, COCO states their sizes.
    * `yolo`: a folder with `images/` and `labels/`, its `data.yaml` in it or its parent (Ultralytics'
      split layout), or the `data.yaml` itself.
    * `voc`, `csv`, `sagemaker`: as `edgewatch data convert` reads them (docs/datasets.md).

    Annotations that cannot be used are left out with a warning each, as `data convert` reports them.
    """
    path = Path(path)
    if not path.exists():
        raise EdgewatchError(f"no such truth dataset: {path}", "give the labelled dataset's folder or file")
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        path, format = path.parent, format or "yolo"
    format = format or datasets.detect_format(path)
    if format == "coco":
        file = path if path.is_file() else next(iter(sorted(path.glob("*.json"))), path)
        if not file.is_file():
            raise EdgewatchError(f"{path} is not a COCO annotation file", "give the COCO JSON file itself")
        try:
            # the images beside the JSON, or in images/ as `edgewatch data convert --to coco` writes them
            images = file.parent / "images" if (file.parent / "images").is_dir() else file.parent
            return sv.DetectionDataset.from_coco(images_directory_path=str(images), annotations_path=str(file))
        except (ValueError, KeyError, TypeError, OSError) as error:
            raise EdgewatchError(f"cannot read COCO dataset {file}: {error}", "check the file") from error
    dataset, skipped = datasets.load(format, path)
    for line in skipped:
        log.warning("left out of the truth: %s", line)
    return dataset


def read_predictions(
    path: Path, classes: list[str], truth: Path | None = None, truth_images: Path | None = None
) -> dict[str, sv.Detections]:
    """Predictions in whichever form `path` has, by image file name:

    * a folder, or a `.csv`: a dataset in any format, each box with its score where the format keeps
      one (all but VOC; boxes without a score count as 1.0). A folder without `images/` (Ultralytics'
      `labels/` of `save_txt`) is read against `truth_images`, the labelled images.
    * a `.json` list: COCO results, named through the `truth` COCO file.
    * a `.json` dataset: COCO with a `score` per annotation.
    * anything else: the JSON lines of `edgewatch run --json`.
    """
    path = Path(path)
    if not path.exists():
        raise EdgewatchError(f"no such predictions file or folder: {path}", "check the path")
    if path.suffix == ".json" and isinstance(_read_json(path), list):
        if truth is None or Path(truth).suffix != ".json":
            raise EdgewatchError(
                "COCO results need COCO truth: its file gives the image ids", "give --truth the COCO JSON file"
            )
        return read_coco_results(path, Path(truth), classes)
    if path.is_dir() or path.suffix in (".csv", ".json"):
        format = datasets.detect_format(path)
        images = None if path.is_file() or (path / "images").is_dir() else truth_images
        found, skipped = datasets.load(format, path, images=images)
        for line in skipped:
            log.warning("left out of the predictions: %s", line)
        return _renamed(found, classes)
    return read_run_json(path, classes)


def _renamed(found: sv.DetectionDataset, classes: list[str]) -> dict[str, sv.Detections]:
    """`found`'s boxes with the class ids of `classes`, by image file name (see `LabelMatcher`)."""
    matcher = LabelMatcher(classes)
    predictions = {Path(image).name: matcher.keep(d, found.classes) for image, d in found.annotations.items()}
    matcher.warn()
    return predictions


class LabelMatcher:
    """Predicted labels to the truth's class ids, by name ignoring case. Boxes of a label the truth
    does not have are left out (the truth cannot say whether they are right), counted for `warn`."""

    def __init__(self, classes: list[str]) -> None:
        self._index = {name.lower(): k for k, name in enumerate(classes)}
        self.unknown: Counter[str] = Counter()

    def id(self, label: Any) -> int | None:
        """The truth's class id of `label`; None (and counted) when it has none."""
        class_id = self._index.get(str(label).lower())
        if class_id is None:
            self.unknown[str(label)] += 1
        return class_id

    def keep(self, detections: sv.Detections, names: list[str]) -> sv.Detections:
        """`detections`, whose class ids index `names`, with the truth's class ids and scores (1.0 where
        none), the boxes of unknown labels left out."""
        ids = np.array([self.id(names[class_id]) for class_id in detections.class_id], dtype=float)
        keep = ~np.isnan(ids)
        scores = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        return _detections(detections.xyxy[keep], ids[keep].astype(int), np.asarray(scores)[keep])

    def warn(self) -> None:
        """One warning naming the labels left out and how often."""
        if self.unknown:
            left_out = ", ".join(f"{label} ({count})" for label, count in self.unknown.most_common())
            log.warning("left out predicted labels the truth does not have: %s", left_out)


def read_run_json(path: Path, classes: list[str]) -> dict[str, sv.Detections]:
    """Predictions from the per-frame JSON lines of `edgewatch run --json` (docs/formats.md).

    Each line needs `file` (written for image sources) and is matched to the truth by it. Labels are
    mapped to `classes` by name (ignoring case); boxes of other labels are left out, with a warning,
    since the truth cannot say whether they are right.

    Raises:
        EdgewatchError: a line that is not valid (not UTF-8 or JSON, no `file`, a box that is not 4
            finite numbers in order, a score that is not a finite number), naming the file and line. A
            line is not skipped: its image would count as one where nothing was found, and every figure
            would be off without a word.
    """
    matcher = LabelMatcher(classes)
    predictions: dict[str, sv.Detections] = {}
    for number, record in _json_lines(Path(path)):
        name = record.get("file")
        if not name or not isinstance(name, str):
            raise EdgewatchError(
                f"{path} line {number} has no 'file'",
                "predictions need image names: run `edgewatch run --source IMAGE_FOLDER --json FILE`",
            )
        name = Path(name).name
        if name in predictions:
            raise EdgewatchError(f"{path} has image {name!r} twice (line {number})", "run each image once")
        try:
            found = _run_detections(record.get("detections", []))
        except ValueError as error:
            raise EdgewatchError(
                f"{path} line {number}: {error}",
                "give the lines `edgewatch run --json` writes; docs/formats.md has their shape",
            ) from None
        kept = [(box, k, score) for box, label, score in found if (k := matcher.id(label)) is not None]
        predictions[name] = _detections([box for box, _, _ in kept], [k for _, k, _ in kept], [p for *_, p in kept])
    matcher.warn()
    return predictions


def _run_detections(detections: Any) -> list[tuple[list[float], str, float]]:
    """The `(box, label, score)` of each detection of a `--json` line, checked.

    Raises:
        ValueError: what is wrong with which detection (numbered from 1).
    """
    if not isinstance(detections, list):
        raise ValueError("'detections' is not a list")
    found = []
    for number, detection in enumerate(detections, start=1):
        if not isinstance(detection, dict):
            raise ValueError(f"detection {number} is not a JSON object")
        box, score = detection.get("box"), detection.get("score", 1.0)
        if not isinstance(box, list) or len(box) != 4 or not all(_finite(value) for value in box):
            raise ValueError(f"detection {number}: 'box' is not 4 numbers x1, y1, x2, y2 in pixels")
        if box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f"detection {number}: 'box' {box} is reversed (x2 < x1 or y2 < y1)")
        if not _finite(score):
            raise ValueError(f"detection {number}: 'score' is not a finite number")
        found.append(([float(value) for value in box], str(detection.get("label", "")), float(score)))
    return found


def _finite(value: Any) -> bool:
    """A JSON number that is neither NaN nor infinite (JSON's `true` is no number, though Python's is)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_coco_results(path: Path, truth_coco: Path, classes: list[str]) -> dict[str, sv.Detections]:
    """Predictions from a COCO results JSON (a list of `{image_id, category_id, bbox, score}`, bbox as
    x, y, width, height in pixels); the truth COCO file gives the image names and category names."""
    truth_data = _read_json(Path(truth_coco))
    results = _read_json(Path(path))
    if not isinstance(results, list):
        raise EdgewatchError(f"{path} is not a COCO results list", "expected [{image_id, category_id, bbox, score}]")
    try:
        image_names = {image["id"]: Path(image["file_name"]).name for image in truth_data["images"]}
        index = {name: k for k, name in enumerate(classes)}
        category = {c["id"]: index.get(c["name"]) for c in truth_data["categories"]}
        grouped: dict[str, tuple[list, list, list]] = {name: ([], [], []) for name in image_names.values()}
        for number, result in enumerate(results, start=1):
            name = image_names[result["image_id"]]
            k = category.get(result["category_id"])
            if k is None:
                continue
            bbox, score = result["bbox"], result.get("score", 1.0)
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(_finite(value) for value in bbox):
                raise ValueError(f"result {number}: 'bbox' is not 4 numbers x, y, width, height")
            if bbox[2] < 0 or bbox[3] < 0 or not _finite(score):
                raise ValueError(f"result {number}: a negative width or height, or a score that is no number")
            x, y, w, h = bbox
            grouped[name][0].append([x, y, x + w, y + h])
            grouped[name][1].append(k)
            grouped[name][2].append(score)
    except (KeyError, TypeError, ValueError) as error:
        reason = str(error) if isinstance(error, ValueError) else repr(error)
        raise EdgewatchError(
            f"cannot read COCO results {path}: {reason}", "check it against the truth COCO file"
        ) from None
    return {name: _detections(*columns) for name, columns in grouped.items() if columns[0]}


def read_evaluation(path: Path) -> dict[str, Any]:
    """A file written by `edgewatch eval --results`: a detector's (`overall`) or a classifier's (`accuracy`)."""
    data = _read_json(Path(path))
    if not isinstance(data, dict) or not (isinstance(data.get("overall"), dict) or "accuracy" in data):
        raise EdgewatchError(f"{path} is not an evaluation result", "give files written by `edgewatch eval --results`")
    return data


def compare(paths: Iterable[Path]) -> str:
    """The summary table across runs, one row per saved evaluation (`edgewatch eval --results`), as the
    write-up compared its training versions. A row is named by the file's stem, or by its folder where
    the stems are alike (`runs/*/eval.json`). Detectors get the evaluation table's columns;
    classifiers their images, accuracy and recall per class."""
    paths = [Path(path) for path in paths]
    if not paths:
        raise EdgewatchError("nothing to compare", "give the --results files of two or more evaluations")
    folders_by_stem: dict[str, set[str]] = {}
    for path in paths:
        folders_by_stem.setdefault(path.stem, set()).add(str(path.parent.resolve()))
    names = [path.parent.name if len(folders_by_stem[path.stem]) > 1 else path.stem for path in paths]
    results = [read_evaluation(path) for path in paths]
    detectors = [isinstance(data.get("overall"), dict) for data in results]
    if any(detectors) and not all(detectors):
        raise EdgewatchError("these files mix detector and classifier evaluations", "compare one kind at a time")
    if not all(detectors):
        classes = list(dict.fromkeys(name for data in results for name in data.get("classes", [])))
        rows = [
            [name, str(data.get("images")), _cell(data.get("accuracy")),
             *(_cell(data.get("per_class", {}).get(label, {}).get("recall")) for label in classes)]
            for name, data in zip(names, results, strict=True)
        ]  # fmt: skip
        return _markdown(["run", "images", "accuracy", *(f"recall {label}" for label in classes)], rows)
    rows = []
    for name, data in zip(names, results, strict=True):
        overall = data["overall"]
        thresholds = [_cell(overall.get("iou", data.get("iou"))), _cell(overall.get("score", data.get("score")))]
        rows.append([name, *thresholds, *_row_cells(overall)])
    return _markdown(["run", "IoU", "score", *_COLUMNS], rows)


# --- the PR curve picture ---------------------------------------------------------------------------


def pr_curve_png(evaluation: Evaluation, path: Path, size: tuple[int, int] = (900, 600)) -> Path:
    """Draw precision over recall for each class (colour) and all classes (black, thick) into a PNG.

    Curves use every prediction at the evaluation's IoU; the dot on the black curve is the score
    threshold of the table. The legend gives each curve's AP@0.5. Drawn with OpenCV only.
    """
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, top, plot_w, plot_h = 70, 30, height - 100, height - 100
    font = cv2.FONT_HERSHEY_SIMPLEX

    def to_pixels(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
        x = left + np.asarray(recall) * plot_w
        y = top + (1.0 - np.asarray(precision)) * plot_h
        return np.round(np.stack([x, y], axis=1)).astype(np.int32)

    for tick in np.linspace(0.0, 1.0, 6):
        x, y = int(left + tick * plot_w), int(top + (1 - tick) * plot_h)
        cv2.line(image, (x, top), (x, top + plot_h), (230, 230, 230), 1)
        cv2.line(image, (left, y), (left + plot_w, y), (230, 230, 230), 1)
        cv2.putText(image, f"{tick:.1f}", (x - 12, top + plot_h + 20), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, f"{tick:.1f}", (left - 35, y + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (left + plot_w, top + plot_h), (0, 0, 0), 1)
    cv2.putText(image, "recall", (left + plot_w // 2 - 25, height - 25), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "precision", (5, top - 10), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)

    palette = sv.ColorPalette.DEFAULT
    legend_x, legend_y, line_h = left + plot_w + 25, top + 10, 20
    max_rows = (plot_h - 10) // line_h - 1
    curves = [(name, row, palette.by_idx(k).as_bgr(), 2) for k, (name, row) in enumerate(evaluation.per_class.items())]
    curves.append(("all", evaluation.overall, (0, 0, 0), 4))
    for rank, (name, row, colour, thickness) in enumerate(curves):
        curve = row.curve
        if len(curve.recall):
            # Start at recall 0 on the first point's precision, as PR plots do.
            points = to_pixels(np.r_[0.0, curve.recall], np.r_[curve.precision[0], curve.precision])
            cv2.polylines(image, [points], False, colour, thickness, cv2.LINE_AA)
        if rank < max_rows or name == "all":
            y = legend_y + min(rank, max_rows) * line_h
            ap = "-" if row.ap50 is None else f"{row.ap50:.3f}"
            cv2.line(image, (legend_x, y - 5), (legend_x + 20, y - 5), colour, thickness, cv2.LINE_AA)
            text = f"{name[:18]} AP50 {ap}"
            cv2.putText(image, text, (legend_x + 28, y), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    overall = evaluation.overall
    if overall.true + overall.false:
        at = int(np.count_nonzero(overall.curve.scores >= evaluation.score)) - 1
        point = to_pixels(overall.curve.recall[at : at + 1], overall.curve.precision[at : at + 1])[0]
        cv2.circle(image, tuple(int(v) for v in point), 6, (0, 0, 255), -1, cv2.LINE_AA)
    title = f"IoU {evaluation.iou:g}, dot: score >= {evaluation.score:g}"
    cv2.putText(image, title, (left + 150, top - 10), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)

    path = Path(path)
    if not cv2.imwrite(str(path), image):
        raise EdgewatchError(f"cannot write {path}", "give a writable path ending in .png")
    return path


# --- internals -----------------------------------------------------------------------------------------

_COLUMNS = [
    "expected", "true", "false", "missed", "avg true conf", "avg false conf", "precision", "recall", "F1", "AP50",
    "mAP50-95",
]  # fmt: skip
_KEYS = [
    "expected", "true", "false", "missed", "mean_confidence_true", "mean_confidence_false", "precision", "recall",
    "f1", "ap50", "map",
]  # fmt: skip


def _row_cells(values: Mapping[str, Any]) -> list[str]:
    return [_cell(values.get(key)) for key in _KEYS]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return (
            "| "
            + " | ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)])
            + " |"
        )

    rule = "|:" + "-" * (widths[0] + 1) + "|" + "|".join("-" * (w + 1) + ":" for w in widths[1:]) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _by_name(images: Mapping[str, sv.Detections], side: str) -> dict[str, sv.Detections]:
    named = {Path(key).name: detections for key, detections in images.items()}
    if len(named) != len(images):
        raise EdgewatchError(f"two {side} images share a file name", "images are matched by file name alone")
    return named


def _boxes(detections: sv.Detections | None, scored: bool) -> sv.Detections:
    """xyxy, class_id and (for predictions) confidence, never None, whatever else the input carries."""
    if detections is None or len(detections) == 0:
        return _detections([], [], [])
    if detections.class_id is None:
        raise EdgewatchError("detections without class ids cannot be evaluated", "give each box a class_id")
    confidence = None
    if scored:
        confidence = detections.confidence if detections.confidence is not None else np.ones(len(detections))
    return sv.Detections(
        xyxy=np.asarray(detections.xyxy, dtype=float),
        class_id=np.asarray(detections.class_id, dtype=int),
        confidence=None if confidence is None else np.asarray(confidence, dtype=float),
    )


def _detections(boxes: list, class_ids: list, scores: list) -> sv.Detections:
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=float).reshape(-1, 4),
        class_id=np.asarray(class_ids, dtype=int),
        confidence=np.asarray(scores, dtype=float),
    )


def _average_precision(
    truths: list[sv.Detections], preds: list[sv.Detections], n_classes: int
) -> tuple[list[float | None], list[float | None]]:
    """AP@0.5 and AP@[.5:.95] per class from supervision's COCO evaluation (None: no truth boxes)."""
    ap50: list[float | None] = [None] * n_classes
    ap: list[float | None] = [None] * n_classes
    if not truths or not any(len(t) for t in truths):
        return ap50, ap
    result = MeanAveragePrecision().update(preds, truths).compute()
    for class_id, scores in zip(result.matched_classes, result.ap_per_class, strict=True):
        if 0 <= class_id < n_classes and scores[0] >= 0:
            ap50[class_id] = float(scores[0])
            ap[class_id] = float(scores[scores >= 0].mean())
    return ap50, ap


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _mean_valid(values: list[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise EdgewatchError(f"no such file: {path}", "check the path") from None
    except OSError as error:
        raise EdgewatchError(f"cannot read {path}: {error.strerror or error}", "check the path") from None
    except UnicodeDecodeError as error:
        raise EdgewatchError(
            f"{path} is not UTF-8 text (byte {error.start})", "give the file as it was written"
        ) from None
    except json.JSONDecodeError as error:
        raise EdgewatchError(f"{path} is not JSON: {error}", "give the file as it was written") from None


def _json_lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EdgewatchError(f"no such file: {path}", "give the file written by `edgewatch run --json`") from None
    except OSError as error:
        raise EdgewatchError(f"cannot read {path}: {error.strerror or error}", "check the path") from None
    # bytes split only at line ends: str.splitlines would also split a JSON string at a U+2028 in it
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise EdgewatchError(
                f"{path} line {number} is not UTF-8 text (byte {error.start} of the line)", "give JSON lines in UTF-8"
            ) from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise EdgewatchError(f"{path} line {number} is not JSON: {error}", "give JSON lines") from None
        if not isinstance(record, dict):
            raise EdgewatchError(f"{path} line {number} is not a JSON object", "give `edgewatch run --json` lines")
        yield number, record
