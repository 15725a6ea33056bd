"""What a training run learns from: the user's images, read once, resized to the network's input, with
their labels (or a teacher's boxes), and split into training and validation images.

Where the split comes from, in this order: the folders of `edgewatch data split` (`train/` and
`validation/`, `val/` or `valid/`; SageMaker's `train/` + `train_annotation/`), else `--val-split`
of the images, stratified by class with the run's seed (`edgewatch.data.convert.assign_splits`).

An image that cannot be read is left out and named; training goes on without it.

Example:
    >>> data = load_detection(Path("street-data"), size=512, seed=0)  # doctest: +SKIP
    >>> data.classes, data.input_size, len(data.train), len(data.validation)  # doctest: +SKIP
    (['person', 'car'], (512, 288), 160, 40)
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from edgewatch.data import datasets
from edgewatch.data.convert import assign_splits
from edgewatch.errors import EdgewatchError
from edgewatch.evaluate.classification import is_class_folders, load_class_folders
from edgewatch.models.geometry import InputGeometry, prepare_input
from edgewatch.progress import with_progress
from edgewatch.train.nets import SIDE_MULTIPLE

log = logging.getLogger(__name__)

DEFAULT_VAL_SPLIT = 0.2
#: folder names `edgewatch data split` and other tools give a validation part
VALIDATION_FOLDERS = ("validation", "val", "valid")
#: a classifier's input sides are multiples of this (its four strided blocks halve it four times)
CLASSIFIER_MULTIPLE = 8


@dataclass
class Example:
    """One image as the network sees it, with what it should answer.

    Attributes:
        path: the image file.
        pixels: BGR uint8 at the input size (letterboxed for a detector, stretched for a classifier).
        geometry: how the image maps onto the input.
        label: the class id of a classifier's image (-1 for a detector's).
        boxes: N × 4 xyxy in input pixels.
        classes: N class ids.
        scores: N target scores: 1 for a label, the teacher's score for a distilled box.
    """

    path: Path
    pixels: np.ndarray
    geometry: InputGeometry
    label: int = -1
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass
class TrainingData:
    """The images of a run, split, with what was left out.

    Attributes:
        kind: `classifier` or `detector`.
        classes: class names; ids index this list.
        input_size: (width, height) of the network's input.
        train, validation: the examples of each part.
        split: where the split came from, for args.yaml and the log.
        skipped: one `file: reason` line per image left out.
    """

    kind: str
    classes: list[str]
    input_size: tuple[int, int]
    train: list[Example]
    validation: list[Example]
    split: str
    skipped: list[str] = field(default_factory=list)

    @property
    def letterbox(self) -> bool:
        return self.kind == "detector"


def input_size(image_sizes: Sequence[tuple[int, int]], width: int, multiple: int) -> tuple[int, int]:
    """The input (width, height): `width` rounded to `multiple`, the height following the images' median
    aspect, so a camera's frames fill the input instead of a square of grey bars.

    Example:
        >>> input_size([(640, 360)] * 3, 512, 32)
        (512, 288)
    """
    width = max(multiple, round(width / multiple) * multiple)
    aspect = float(np.median([height / side for side, height in image_sizes])) if image_sizes else 1.0
    return width, max(multiple, round(width * aspect / multiple) * multiple)


# --- classifiers ------------------------------------------------------------------------------


def load_classification(
    data: Path, size: int, seed: int, val_split: float | None = None, format: str | None = None
) -> TrainingData:
    """A classifier's images: a folder per class (or a `train/` + `validation/` pair of such), or a
    detection dataset whose images each hold boxes of one class only (that class is the image's).

    Raises:
        EdgewatchError: no images, one class only, a class with a single image, or a bad `val_split`.
    """
    parts = _split_folders(data)
    if parts is not None:
        (classes, train_labels, _), (val_classes, val_labels, _) = (_image_labels(part, format) for part in parts)
        for name in sorted(set(val_classes) - set(classes)):
            log.warning("class %s is only in the validation split: it is not learnt, its images are left out", name)
        for name in sorted(set(classes) - set(val_classes)):
            log.warning("class %s has no validation images: its accuracy is not measured", name)
        val_labels = {path: label for path, label in val_labels.items() if label in classes}
        split = f"the folders {parts[0].name}/ and {parts[1].name}/"
        _check_classes(classes, Counter(train_labels.values()), data, need_two=False)
    else:
        classes, labels, skipped = _image_labels(data, format)
        _check_classes(classes, Counter(labels.values()), data, need_two=True)
        share = _share(val_split)
        assignment = _stratified([classes.index(label) for label in labels.values()], list(labels), share, seed)
        train_labels = {path: label for path, label in labels.items() if assignment[path] == 0}
        val_labels = {path: label for path, label in labels.items() if assignment[path] == 1}
        split = f"--val-split {share:g} of {data} (seed {seed})"
    skipped: list[str] = []
    every = [*train_labels, *val_labels]
    size_wh = input_size(_sizes(every), size, CLASSIFIER_MULTIPLE)
    read = _read_all(every, size_wh, letterbox=False, skipped=skipped)
    return TrainingData(
        kind="classifier",
        classes=classes,
        input_size=size_wh,
        train=[_labelled(read[path], classes.index(label)) for path, label in train_labels.items() if path in read],
        validation=[_labelled(read[path], classes.index(label)) for path, label in val_labels.items() if path in read],
        split=split,
        skipped=skipped,
    )


def _image_labels(data: Path, format: str | None) -> tuple[list[str], dict[Path, str], list[str]]:
    """(classes, image path -> class name, skipped lines) of class folders or a one-class-per-image dataset."""
    if not data.exists():
        raise EdgewatchError(f"no such dataset: {data}", "give a folder per class, or a labelled dataset")
    if is_class_folders(data):
        classes, truth, images = load_class_folders(data)
        return classes, {images[name]: truth[name] for name in sorted(truth)}, []
    dataset, skipped = _load_dataset(data, format)
    labels = {}
    for image in dataset.image_paths:
        present = sorted(set(dataset.annotations[image].class_id.tolist()))
        if len(present) == 1:
            labels[Path(image)] = dataset.classes[present[0]]
        else:
            reason = "no label" if not present else "boxes of several classes"
            skipped.append(f"{Path(image).name}: {reason}, so no whole-image class")
    for line in skipped:
        log.warning("left out: %s", line)
    used = sorted(set(labels.values()), key=dataset.classes.index)
    return used, labels, skipped


def _check_classes(classes: list[str], counts: Counter[str], data: Path, need_two: bool) -> None:
    if not counts:
        raise EdgewatchError(f"no labelled images in {data}", "put each class's images in a folder named after it")
    if len(classes) < 2:
        raise EdgewatchError(f"{data} holds one class ({classes[0]}): a classifier needs two or more",
                             "add a folder of images for each other class")  # fmt: skip
    lonely = [name for name in classes if counts[name] < 2] if need_two else []
    if lonely:
        raise EdgewatchError(
            f"class {lonely[0]} has {counts[lonely[0]]} image: a class needs two, one to learn from and one to check",
            "add images of it, or remove its folder",
        )


def _labelled(example: Example, label: int) -> Example:
    example.label = label
    return example


# --- detectors --------------------------------------------------------------------------------


def load_detection(
    data: Path, size: int, seed: int, val_split: float | None = None, format: str | None = None
) -> TrainingData:
    """A detector's images and boxes, from a dataset in any of the five formats (or a split of one).

    Raises:
        EdgewatchError: no dataset, no images, no boxes at all, or a bad `val_split`.
    """
    parts = _split_folders(data)
    if parts is not None:
        train_set, skipped = _load_dataset(parts[0], format)
        validation_set, more = _load_dataset(parts[1], format)
        skipped += more
        validation_set = _onto_classes(validation_set, train_set.classes)
        split = f"the folders {parts[0].name}/ and {parts[1].name}/"
    else:
        dataset, skipped = _load_dataset(data, format)
        share = _share(val_split)
        if len(dataset) < 2:
            raise EdgewatchError(
                f"{data} holds {len(dataset)} image", "a run needs two, one to learn from and one to check"
            )
        assignment = assign_splits(dataset, (1 - share, share), seed)
        train_set = _subset(dataset, [image for image in dataset.image_paths if assignment[image] == 0])
        validation_set = _subset(dataset, [image for image in dataset.image_paths if assignment[image] == 1])
        split = f"--val-split {share:g} of {data} (seed {seed})"
    for line in skipped:
        log.warning("left out: %s", line)
    boxes = sum(len(detections) for detections in train_set.annotations.values())
    if not len(train_set) or not boxes:
        raise EdgewatchError(
            f"no labelled boxes in {data}", "label some objects first (edgewatch review), or use --teacher"
        )
    _warn_unvalidated(train_set, validation_set)
    return _detection_data(train_set, validation_set, size, split, skipped)


def _detection_data(
    train_set: sv.DetectionDataset, validation_set: sv.DetectionDataset, size: int, split: str, skipped: list[str]
) -> TrainingData:
    every = [Path(image) for image in (*train_set.image_paths, *validation_set.image_paths)]
    size_wh = input_size(_sizes(every), size, SIDE_MULTIPLE)
    read = _read_all(every, size_wh, letterbox=True, skipped=skipped)

    def examples(dataset: sv.DetectionDataset) -> list[Example]:
        kept = []
        for image in dataset.image_paths:
            example = read.get(Path(image))
            if example is not None:
                detections = dataset.annotations[image]
                example.boxes = example.geometry.to_input(detections.xyxy)
                example.classes = detections.class_id.astype(np.int64)
                confidence = detections.confidence
                example.scores = (confidence if confidence is not None else np.ones(len(detections))).astype(np.float32)
                kept.append(example)
        return kept

    return TrainingData("detector", list(train_set.classes), size_wh, examples(train_set), examples(validation_set),
                        split, skipped)  # fmt: skip


def _onto_classes(dataset: sv.DetectionDataset, classes: list[str]) -> sv.DetectionDataset:
    """The validation part with class ids of the training part's `classes`; boxes of a class the
    training part lacks are left out (warned)."""
    for name in sorted(set(dataset.classes) - set(classes)):
        log.warning("class %s is only in the validation split: it is not learnt, its boxes are left out", name)
    mapping = np.array([classes.index(name) if name in classes else -1 for name in dataset.classes] or [-1])
    annotations = {}
    for image, detections in dataset.annotations.items():
        ids = mapping[detections.class_id] if len(detections) else np.zeros(0, int)
        kept = detections[ids >= 0]
        kept.class_id = ids[ids >= 0]
        annotations[image] = kept
    return sv.DetectionDataset(classes=classes, images=list(dataset.image_paths), annotations=annotations)


def _warn_unvalidated(train_set: sv.DetectionDataset, validation_set: sv.DetectionDataset) -> None:
    present = {int(k) for detections in validation_set.annotations.values() for k in detections.class_id}
    for class_id, name in enumerate(train_set.classes):
        if class_id not in present:
            log.warning("class %s has no validation boxes: its AP is not measured", name)


# --- a teacher's boxes ---------------------------------------------------------------------------


def images_of(data: Path) -> list[Path]:
    """The images of `data` for a teacher to label: a dataset's images (its labels unused), `images/`,
    or the images in the folder itself."""
    if not data.is_dir():
        raise EdgewatchError(
            f"no such folder: {data}", "give the folder of the frames, e.g. from edgewatch data sample"
        )
    for folder in (data / "images", data):
        if folder.is_dir() and (found := datasets.images_in(folder)):
            return found
    raise EdgewatchError(f"no images in {data}", "give a folder of .jpg or .png frames")


def load_teacher_labelled(
    data: Path, teacher: object, min_score: float, size: int, seed: int, val_split: float | None = None
) -> TrainingData:
    """Images labelled by `teacher` (a `Detector`): its boxes scoring at least `min_score`, each with a
    soft target from its score (`soft_target`), split as a dataset would be.

    Raises:
        EdgewatchError: no images, or the teacher found nothing on any of them.
    """
    parts = _split_folders(data)
    groups = [images_of(part) for part in parts] if parts is not None else [images_of(data)]
    skipped: list[str] = []
    labelled: list[dict[str, sv.Detections]] = []
    for images in groups:
        found = {}
        for path in with_progress(images, len(images), "teacher", "image"):
            picture = cv2.imread(str(path))
            if picture is None:
                skipped.append(f"{path.name}: not a readable image")
                continue
            detections = teacher.detect(picture)
            detections = detections[detections.confidence >= min_score] if len(detections) else detections
            found[str(path)] = detections
        labelled.append(found)
    # the classes the teacher found, in its own order: a label map that starts at 1 names no class 0
    found_names = {name for group in labelled for detections in group.values() for name in _names(detections, teacher)}
    classes = [name for name in teacher.labels if name in found_names]
    classes += sorted(found_names - set(classes))
    boxes = sum(len(detections) for group in labelled for detections in group.values())
    if not boxes:
        total = sum(len(group) for group in labelled)
        raise EdgewatchError(
            f"the teacher found nothing scoring {min_score:g} or more on {total} images: nothing to learn",
            "check the teacher runs on these frames (edgewatch run --model TEACHER), or lower --teacher-min-score",
        )
    datasets_ = [_teacher_dataset(group, classes, teacher, min_score) for group in labelled]
    if parts is not None:
        train_set, validation_set = datasets_
        split = f"the folders {parts[0].name}/ and {parts[1].name}/"
    else:
        share = _share(val_split)
        dataset = datasets_[0]
        assignment = assign_splits(dataset, (1 - share, share), seed)
        train_set = _subset(dataset, [image for image in dataset.image_paths if assignment[image] == 0])
        validation_set = _subset(dataset, [image for image in dataset.image_paths if assignment[image] == 1])
        split = f"--val-split {share:g} of {data} (seed {seed})"
    return _detection_data(train_set, validation_set, size, split, skipped)


def _names(detections: sv.Detections, teacher: object) -> list[str]:
    names = detections.data.get("class_name") if len(detections) else None
    if names is not None:
        return [str(name) for name in names]
    return [teacher.labels[int(k)] for k in detections.class_id]


def soft_target(scores: np.ndarray, min_score: float) -> np.ndarray:
    """The class target of a teacher's boxes: its threshold `min_score` maps to 0.5 and a sure box to 1.

    A box at the teacher's threshold is the teacher's own coin toss, and a box below it is background:
    what the student must copy is that decision, and above it the teacher's order. Asked for the raw
    score instead, a student learns to answer 0.32 where the teacher said 0.35, and every such object
    falls either side of the threshold by chance.

    Example:
        >>> soft_target(np.array([0.3, 0.65, 1.0]), 0.3).tolist()
        [0.5, 0.75, 1.0]
    """
    span = max(1e-6, 1 - min_score)
    return np.clip(0.5 + 0.5 * (np.asarray(scores, np.float32) - min_score) / span, 0.5, 1.0).astype(np.float32)


def _teacher_dataset(
    found: dict[str, sv.Detections], classes: list[str], teacher: object, min_score: float
) -> sv.DetectionDataset:
    annotations = {}
    for image, detections in found.items():
        ids = np.array([classes.index(name) for name in _names(detections, teacher)], dtype=int)
        targets = soft_target(detections.confidence, min_score) if len(ids) else None
        annotations[image] = sv.Detections(xyxy=detections.xyxy.astype(np.float32).reshape(-1, 4), class_id=ids,
                                           confidence=targets)  # fmt: skip
    return sv.DetectionDataset(classes=classes, images=list(found), annotations=annotations)


# --- shared ------------------------------------------------------------------------------------


def check_data(data: Path) -> None:
    """Raise EdgewatchError for data that is missing or an empty folder, before anything else is read."""
    if not data.exists():
        raise EdgewatchError(f"no such dataset: {data}", "check the path")
    if data.is_dir() and not any(data.iterdir()):
        raise EdgewatchError(f"{data} is empty", "give the folder of the images and their labels")


def _split_folders(data: Path) -> tuple[Path, Path] | None:
    """(train, validation) folders of a split, or None."""
    if not data.is_dir() or not (data / "train").is_dir():
        return None
    for name in VALIDATION_FOLDERS:
        if (data / name).is_dir():
            return data / "train", data / name
    return None


def _load_dataset(path: Path, format: str | None) -> tuple[sv.DetectionDataset, list[str]]:
    """A detection dataset in `format` (guessed when None), and what was left out. SageMaker's split
    keeps a part's JSON in `<part>_annotation/` beside its images in `<part>/`."""
    annotation = path.parent / f"{path.name}_annotation"
    if annotation.is_dir() and format in (None, "sagemaker"):
        return datasets.load("sagemaker", annotation, images=path)
    if not path.exists():
        raise EdgewatchError(f"no such dataset: {path}", "check the path")
    dataset, skipped = datasets.load(format or datasets.detect_format(path), path)
    if not len(dataset):
        raise EdgewatchError(f"no images in {path}", "a run needs labelled images")
    return dataset, list(skipped)


def _subset(dataset: sv.DetectionDataset, images: list[str]) -> sv.DetectionDataset:
    return sv.DetectionDataset(classes=dataset.classes, images=images,
                               annotations={image: dataset.annotations[image] for image in images})  # fmt: skip


def _share(val_split: float | None) -> float:
    share = DEFAULT_VAL_SPLIT if val_split is None else val_split
    if not 0 < share < 1:
        raise EdgewatchError(f"--val-split {share:g} is not a share between 0 and 1", "e.g. --val-split 0.2")
    return share


def _stratified(class_ids: list[int], keys: list[Path], share: float, seed: int) -> dict[Path, int]:
    """Each key's part (0 train, 1 validation), at least one of each class in each part."""
    rng = np.random.default_rng(seed)
    assignment = {}
    for class_id in sorted(set(class_ids)):
        members = [key for key, k in zip(keys, class_ids, strict=True) if k == class_id]
        order = rng.permutation(len(members))
        held = min(len(members) - 1, max(1, math.floor(len(members) * share + 0.5)))
        for rank, index in enumerate(order):
            assignment[members[index]] = 1 if rank < held else 0
    return assignment


def _sizes(paths: Sequence[Path]) -> list[tuple[int, int]]:
    sizes = []
    for path in paths:
        try:
            sizes.append(datasets.image_size(path))
        except (OSError, ValueError):
            continue  # named when it is read
    return sizes


def _read_all(paths: Sequence[Path], size: tuple[int, int], letterbox: bool, skipped: list[str]) -> dict[Path, Example]:
    """Each readable image resized to the input once; the others named in `skipped` (with a warning)."""
    read = {}
    for path in with_progress(list(dict.fromkeys(paths)), len(paths), "read", "image"):
        picture = cv2.imread(str(path))
        if picture is None:
            line = f"{path.name}: not a readable image"
            if line not in skipped:
                skipped.append(line)
                log.warning("left out: %s", line)
            continue
        geometry = InputGeometry.plan((picture.shape[1], picture.shape[0]), size, letterbox=letterbox)
        read[Path(path)] = Example(Path(path), prepare_input(picture, geometry), geometry)
    return read
