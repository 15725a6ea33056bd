"""How good a whole-image classifier is on labelled images: accuracy, precision and recall per class, and
the confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgewatch.data.datasets import images_in
from edgewatch.errors import EdgewatchError
from edgewatch.evaluate.detection import _json_lines, _markdown


def evaluate_classifier(truth: Mapping[str, str], predicted: Mapping[str, str], classes: list[str]) -> dict[str, Any]:
    """Compare predicted labels with true labels, image by image (matched by file name).

    A truth image without a prediction, or predicted a label outside `classes`, counts as wrong: its
    row of the confusion matrix gets it in the extra last column, `other`.

    Args:
        truth: image name -> true label (one of `classes`).
        predicted: image name -> predicted label.
        classes: class names; rows and columns of the matrix follow them.

    Returns:
        `{"images", "accuracy", "classes", "per_class": {name: {"precision", "recall", "support"}},
        "confusion_matrix"}`: `confusion_matrix[i][j]` counts images of class `classes[i]` predicted as
        `classes[j]` (`j == len(classes)`: no prediction or another label). Precision is `None` for a
        class never predicted, recall for a class without images; accuracy for no images.

    Example:
        >>> result = evaluate_classifier({"a.jpg": "open", "b.jpg": "closed"}, {"a.jpg": "open", "b.jpg": "open"},
        ...                              ["open", "closed"])
        >>> result["accuracy"], result["confusion_matrix"]
        (0.5, [[1, 0, 0], [1, 0, 0]])
    """
    index = {name: k for k, name in enumerate(classes)}
    by_name = {Path(key).name: label for key, label in predicted.items()}
    matrix = np.zeros((len(classes), len(classes) + 1), dtype=int)
    for key, label in truth.items():
        if label not in index:
            raise EdgewatchError(f"truth label {label!r} of {key} is not a class", f"classes: {', '.join(classes)}")
        guess = by_name.get(Path(key).name)
        matrix[index[label], index.get(guess, len(classes)) if guess is not None else len(classes)] += 1
    images = int(matrix.sum())
    correct = np.diag(matrix[:, : len(classes)])
    predicted_as = matrix[:, : len(classes)].sum(axis=0)
    support = matrix.sum(axis=1)
    per_class = {
        name: {
            "precision": _ratio(correct[k], predicted_as[k]),
            "recall": _ratio(correct[k], support[k]),
            "support": int(support[k]),
        }
        for k, name in enumerate(classes)
    }
    return {
        "images": images,
        "accuracy": _ratio(correct.sum(), images),
        "classes": list(classes),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def classifier_table(result: Mapping[str, Any]) -> str:
    """The confusion matrix of `evaluate_classifier` as Markdown (rows: truth, columns: predicted), then
    precision and recall per class."""
    classes = result["classes"]
    rows = [
        [name, *(str(count) for count in counts), _cell(result["per_class"][name]["precision"]),
         _cell(result["per_class"][name]["recall"])]
        for name, counts in zip(classes, result["confusion_matrix"], strict=True)
    ]  # fmt: skip
    title = f"{result['images']} images, accuracy {_cell(result['accuracy'])}"
    return title + "\n" + _markdown(["truth \\ predicted", *classes, "other", "precision", "recall"], rows)


def read_run_classifications(path: Path) -> dict[str, str]:
    """Predicted labels from `edgewatch run --json` lines of a classifier: image `file` -> `classification.label`."""
    predicted = {}
    for number, record in _json_lines(Path(path)):
        classification = record.get("classification")
        if (
            not isinstance(record.get("file"), str)
            or not isinstance(classification, dict)
            or "label" not in classification
        ):
            raise EdgewatchError(
                f"{path} line {number} has no 'file' or no 'classification'",
                "run a classifier on an image folder: `edgewatch run --source IMAGE_FOLDER --json FILE`",
            )
        predicted[Path(record["file"]).name] = str(classification["label"])
    return predicted


def is_class_folders(path: Path) -> bool:
    """Whether `path` is labelled images for a classifier: one folder per class holding its images
    (torchvision's ImageFolder layout), and no detection annotations."""
    path = Path(path)
    if not path.is_dir() or any((path / name).exists() for name in _DETECTION_LAYOUT):
        return False
    folders = [folder for folder in path.iterdir() if folder.is_dir() and not folder.name.startswith(".")]
    return bool(folders) and all(images_in(folder) for folder in folders)


_DETECTION_LAYOUT = ("annotations", "labels", "annotations.csv", "annotations.json", "data.yaml")


def load_class_folders(path: Path) -> tuple[list[str], dict[str, str], dict[str, Path]]:
    """(class names, image file name -> true label, image file name -> path) of a folder per class.

    Example:
        >>> classes, truth, images = load_class_folders(Path("door-truth"))  # doctest: +SKIP
        >>> classes, truth["frame_0001.jpg"]  # doctest: +SKIP
        (['closed', 'open'], 'open')
    """
    if not is_class_folders(path):
        raise EdgewatchError(
            f"{path} is not a folder of class folders", "put each class's images in a folder named after it"
        )
    classes = sorted(
        folder.name for folder in Path(path).iterdir() if folder.is_dir() and not folder.name.startswith(".")
    )
    truth, images = {}, {}
    for label in classes:
        for image in images_in(Path(path) / label):
            if image.name in truth:
                raise EdgewatchError(
                    f"{image.name} is in {truth[image.name]}/ and {label}/", "images are matched by file name"
                )
            truth[image.name], images[image.name] = label, image
    return classes, truth, images


def _ratio(part: int, whole: int) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
