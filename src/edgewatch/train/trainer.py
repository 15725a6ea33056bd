"""One training run from start to end: read the data (or have a teacher label it), make the run
folder, fit, export the best epoch to ONNX, and score that file as `edgewatch eval` would.

Example:
    >>> result = train_run(Path("door-data"), Path("runs/door"), Settings.of("classifier"))  # doctest: +SKIP
    >>> result.folder, result.best_score  # doctest: +SKIP
    (PosixPath('runs/door'), 0.995)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
import torch

from edgewatch.errors import EdgewatchError
from edgewatch.evaluate import evaluate, evaluate_classifier, predict_boxes, predict_labels, table_score
from edgewatch.models import Detector, load_detector, load_model, runtime_for
from edgewatch.train import runs
from edgewatch.train.classifier import ClassifierTask
from edgewatch.train.detector import DetectorTask
from edgewatch.train.fit import fit
from edgewatch.train.latency import side_by_side
from edgewatch.train.samples import (
    TrainingData,
    check_data,
    load_classification,
    load_detection,
    load_teacher_labelled,
)
from edgewatch.train.settings import Settings

log = logging.getLogger(__name__)

#: frames of the validation images timed per model, for report.json
LATENCY_FRAMES = 30


@dataclass
class RunResult:
    """What a run left: its folder and its figures (report.json holds the same)."""

    folder: Path
    settings: Settings
    metric: str
    best_epoch: int | None
    best_score: float | None
    epochs: int
    seconds: float
    interrupted: bool
    model: Path | None
    evaluation: dict[str, Any] | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"run folder: {self.folder}"]
        if self.model is None:
            lines.append("no epoch ended, so there is no model")
            return "\n".join(lines)
        lines.append(
            f"best epoch {self.best_epoch} of {self.epochs}: validation {self.metric} {self.best_score:.3f} "
            f"({self.seconds:.0f} s{', interrupted' if self.interrupted else ''})"
        )
        student = self.report.get("model", {})
        lines.append(f"model: {self.model} ({student.get('megabytes', 0):.2f} MB, "
                     f"{student.get('ms_per_frame', 0):.1f} ms a frame here)")  # fmt: skip
        teacher = self.report.get("teacher")
        if teacher:
            lines.append(
                f"teacher: {teacher['name']} ({teacher['megabytes']:.2f} MB, {teacher['ms_per_frame']:.1f} ms a frame); "
                f"student/teacher latency {self.report['latency_ratio']:.2f}; "
                f"F1 against the teacher's boxes {self.report['f1_vs_teacher']:.3f}"
            )
        lines.append(f"use it: edgewatch run --model {self.model} --source ...")
        return "\n".join(lines)


def resolve_device(name: str | None) -> torch.device:
    """`cpu`, `cuda` (or `cuda:N`); None: cuda when present."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EdgewatchError(f"--device {name}: no CUDA device here", "use --device cpu, or leave it out")
    try:
        return torch.device(name)
    except RuntimeError:
        raise EdgewatchError(f"--device {name} is not a device torch knows", "use cpu or cuda") from None


def load_teacher(spec: str, labels: str | None) -> Detector:
    """A teacher: any model `edgewatch run` loads (a file or a built-in), with its class names file."""
    if labels is None:
        return load_model(spec)
    if not Path(labels).is_file():
        raise EdgewatchError(f"no such labels file: {labels}", "--teacher-labels names the teacher's class names file")
    load_model(spec)  # the same checks and messages as without labels
    return load_detector(runtime_for(spec), path=spec, labels=labels)


def read_data(data: Path, settings: Settings, format: str | None, teacher: Detector | None) -> TrainingData:
    check_data(data)
    given = {"size": settings.size, "seed": settings.seed, "val_split": settings.val_split}
    if settings.kind == "classifier":
        return load_classification(data, format=format, **given)
    if teacher is not None:
        return load_teacher_labelled(data, teacher, settings.teacher_min_score, **given)
    return load_detection(data, format=format, **given)


def train_run(
    data: Path, out: Path, settings: Settings, format: str | None = None, prepared: TrainingData | None = None,
    teacher: Detector | None = None,
) -> RunResult:  # fmt: skip
    """Train one model on `data` into a new run folder at `out` (see `runs.new_run_folder`).

    Args:
        data: the dataset (see `samples`).
        out: the run folder's name.
        settings: the run's settings, checked.
        format: the dataset's format (None: guessed).
        prepared: the data already read at these settings' size and seed (a sweep reads it once).
        teacher: the loaded teacher, when `settings.teacher` names one.
    """
    settings.check()
    runs.check_outside(out, data)
    device = resolve_device(settings.device)
    if settings.teacher and teacher is None:
        teacher = load_teacher(settings.teacher, settings.teacher_labels)
    training = prepared or read_data(data, settings, format, teacher)
    if not training.train:
        raise EdgewatchError(f"no training images left in {data}", "every image was left out: see the lines above")
    folder = runs.new_run_folder(out)
    log.info("run folder %s: %d training and %d validation images of %s, input %dx%d, split by %s", folder,
             len(training.train), len(training.validation), ", ".join(training.classes), *training.input_size,
             training.split)  # fmt: skip
    runs.write_args(folder, {
        "data": str(data), **settings.to_yaml_dict(), "classes": training.classes,
        "input_size": list(training.input_size), "split": training.split, "train_images": len(training.train),
        "validation_images": len(training.validation), "skipped": training.skipped, "versions": runs.versions(),
    })  # fmt: skip
    torch.manual_seed(settings.seed)  # the initial weights too
    task = (ClassifierTask if settings.kind == "classifier" else DetectorTask)(training, settings.model_size, device)
    metrics = runs.MetricsFile(folder / "metrics.csv", task.metric)
    started = time.monotonic()
    fitted = fit(task, training.train, settings, metrics.add)
    seconds = time.monotonic() - started
    runs.curves_png(folder / "curves.png", fitted.epochs, task.metric, f"{settings.kind} run {folder.name}")
    result = RunResult(folder, settings, task.metric, fitted.best_epoch, fitted.best_score, len(fitted.epochs),
                       seconds, fitted.interrupted, None)  # fmt: skip
    if fitted.best_epoch is None:
        return result
    torch.save({"state_dict": task.net.state_dict(), "settings": settings.to_yaml_dict(), "classes": training.classes,
                "input_size": training.input_size}, folder / "best.pt")  # fmt: skip
    result.model = task.export(folder / "best.onnx")
    student = load_model(result.model)  # the exported file, as `edgewatch run` loads it
    result.evaluation = evaluation_of(student, training)
    runs.write_json(folder / "eval.json", result.evaluation)
    result.report = report_of(result, training, student, teacher)
    runs.write_json(folder / "report.json", result.report)
    return result


def evaluation_of(detector: Detector, training: TrainingData) -> dict[str, Any]:
    """`edgewatch eval --results` of the exported model (`detector`: the ONNX file run by ONNX Runtime
    through edgewatch's own pre- and post-processing) on the validation images, against the labels (or
    the teacher's boxes) in the images' own pixels, at the score threshold the model records (chosen
    on these same images, so its F1 is the best this network gets there: a figure for held-out
    images needs images the run did not see)."""
    validation = training.validation
    names = {example.path.name: example for example in validation}
    if training.kind == "classifier":
        truth = {name: training.classes[example.label] for name, example in names.items()}
        return evaluate_classifier(truth, predict_labels(detector, [example.path for example in validation]),
                                   training.classes)  # fmt: skip
    truth = {
        name: sv.Detections(xyxy=example.geometry.to_frame(example.boxes), class_id=example.classes)
        for name, example in names.items()
    }
    predicted = predict_boxes(detector, [example.path for example in validation], training.classes)
    return evaluate(truth, predicted, training.classes, score=table_score(detector, None)).to_json()


def report_of(result: RunResult, training: TrainingData, student: Detector, teacher: Detector | None) -> dict[str, Any]:
    """report.json: the run's figures, the model's size and latency, and the teacher's beside it."""
    import cv2

    images = [cv2.imread(str(example.path)) for example in training.validation[:LATENCY_FRAMES]]
    images = [image for image in images if image is not None] or [np.zeros((*training.input_size[::-1], 3), np.uint8)]
    models = [student] + ([teacher] if teacher is not None else [])
    latencies = side_by_side(models, images)
    report: dict[str, Any] = {
        "folder": str(result.folder), "metric": result.metric, "best_epoch": result.best_epoch,
        "best_score": result.best_score, "epochs": result.epochs, "seconds": round(result.seconds, 1),
        "interrupted": result.interrupted, "settings": result.settings.to_yaml_dict(),
        "model": {"path": str(result.model), "megabytes": result.model.stat().st_size / 1e6,
                  "ms_per_frame": latencies[0], "min_score": student.recorded_min_score},
    }  # fmt: skip
    if teacher is not None:
        spec = result.settings.teacher or ""
        size = Path(spec).stat().st_size / 1e6 if Path(spec).is_file() else 0.0
        overall = (result.evaluation or {}).get("overall", {})
        report["teacher"] = {"name": spec, "megabytes": size, "ms_per_frame": latencies[1]}
        report["latency_ratio"] = latencies[0] / latencies[1] if latencies[1] else None
        report["f1_vs_teacher"] = overall.get("f1") or 0.0
        report["ap50_vs_teacher"] = overall.get("ap50") or 0.0
    return report
