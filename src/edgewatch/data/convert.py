"""Dataset conversion between formats, and the train / validation / test split, each returning a
`Report` of what was written and what was skipped.

The split is stratified by class: every image is assigned by its rarest class (the class found in the
fewest images; images without objects form a group of their own), and each group is dealt out so
that a class with at least two images lands in train and in validation (and, with three or more and a
test share, in test). The rest of each group goes wherever the overall ratios are furthest behind,
so the totals stay close to `ratios`. A class that is no image's rarest is checked afterwards and, if
a split lacks it, an image holding it is moved there from the split that has most of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import supervision as sv

from edgewatch.data.datasets import Report, check_format, check_target, load, save, save_split
from edgewatch.errors import EdgewatchError

__all__ = ["SPLITS", "Report", "assign_splits", "convert", "split"]

SPLITS = ("train", "validation", "test")


def convert(
    source_format: str,
    target_format: str,
    source: str | Path,
    target: str | Path,
    images: str | Path | None = None,
    classes: str | Path | Sequence[str] | None = None,
    force: bool = False,
    allow_outside_images: bool = False,
) -> Report:
    """Read a dataset in one format and write it in another, copying the images.

    Args:
        source_format: `voc`, `csv`, `sagemaker`, `coco` or `yolo`.
        target_format: the same choice, for the output.
        source: the dataset folder (or the `.csv` / COCO `.json` file).
        target: the output folder; it must be new or empty unless `force`.
        images: the folder of the source images where they are not beside the annotations; every image
            in it is kept, one without annotations as an image without objects.
        classes: a file of class names, one a line (or the names), fixing the class ids.
        force: write into a folder that is not empty (replacing what this format writes there).
        allow_outside_images: copy images an annotation names outside the dataset's image folders
            (`../x.jpg`, an absolute path elsewhere); by default they are skipped and named.

    Returns:
        The counts written and the `file: reason` lines of what was skipped.

    Raises:
        EdgewatchError: an unknown format, a source that is no dataset of `source_format`, or a target
            that is not empty without `force`.

    Example:
        >>> report = convert("voc", "sagemaker", "labelled/", "sagemaker/")  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        '120 images, 310 boxes (car 200, person 110)'
    """
    check_format(source_format)
    check_format(target_format)
    check_target(target, force)  # before reading: a refused target should not cost a long read
    dataset, skipped = load(
        source_format, source, images=images, classes=classes, allow_outside_images=allow_outside_images
    )
    save(dataset, target_format, target, force=force)
    return Report.of(dataset, skipped)


def split(
    source: str | Path,
    target: str | Path,
    ratios: Sequence[float] = (0.8, 0.2, 0.0),
    seed: int = 0,
    source_format: str = "voc",
    target_format: str = "sagemaker",
    force: bool = False,
    images: str | Path | None = None,
    classes: str | Path | Sequence[str] | None = None,
    allow_outside_images: bool = False,
) -> Report:
    """Split a dataset into train / validation (/ test), stratified by class (see the module
    docstring), and write the parts: SageMaker's `train/`, `train_annotation/`, `validation/`,
    `validation_annotation/` (and `test/`, `test_annotation/`), or `<part>/` in another format's layout.

    Args:
        source: the dataset folder (or file).
        target: the output folder; it must be new or empty unless `force`.
        ratios: the train, validation and (optional) test shares, adding up to 1; a test share of 0
            writes no test part.
        seed: the same seed on the same dataset gives the same split.
        source_format: the format of `source`.
        target_format: the format to write the parts in.
        force: write into a folder that is not empty.
        images: as for `convert`.
        classes: as for `convert`.
        allow_outside_images: as for `convert`.

    Returns:
        The report, with the images per part in `splits`.

    Example:
        >>> split("labelled/", "out/", ratios=(0.8, 0.2), seed=1).splits  # doctest: +SKIP
        {'train': 96, 'validation': 24}
    """
    shares = _shares(ratios)
    check_format(source_format)
    check_format(target_format)
    check_target(target, force)
    dataset, skipped = load(
        source_format, source, images=images, classes=classes, allow_outside_images=allow_outside_images
    )
    assignment = assign_splits(dataset, shares, seed)
    parts = {
        name: _subset(dataset, [image for image in dataset.image_paths if assignment[image] == index])
        for index, name in enumerate(SPLITS)
        if index < 2 or shares[index] > 0
    }
    save_split(parts, target_format, target, force=force)
    report = Report.of(dataset, skipped)
    report.splits = {name: len(part) for name, part in parts.items()}
    return report


def assign_splits(dataset: sv.DetectionDataset, ratios: Sequence[float], seed: int = 0) -> dict[str, int]:
    """The split (an index into `SPLITS`) of every image of `dataset`, stratified by class.

    Example:
        >>> assign_splits(dataset, (0.8, 0.2), seed=0)  # doctest: +SKIP
        {'a.jpg': 0, 'b.jpg': 1, ...}
    """
    shares = _shares(ratios)
    active = [index for index, share in enumerate(shares) if share > 0]
    present = {image: set(dataset.annotations[image].class_id.tolist()) for image in dataset.image_paths}
    counts = Counter(class_id for classes in present.values() for class_id in classes)

    def rarity(class_id: int) -> tuple[int, int]:
        return counts[class_id], class_id

    groups: dict[int | None, list[str]] = {}
    for image in sorted(dataset.image_paths):
        key = min(present[image], key=rarity) if present[image] else None
        groups.setdefault(key, []).append(image)
    rng = np.random.default_rng(seed)
    assignment: dict[str, int] = {}
    taken = [0] * len(shares)

    def take(image: str, part: int) -> None:
        assignment[image] = part
        taken[part] += 1

    def furthest_behind() -> int:
        total = sum(taken) + 1
        return max(active, key=lambda part: (shares[part] * total - taken[part], -part))

    for key in sorted(groups, key=lambda key: (1, 0, 0) if key is None else (0, *rarity(key))):
        members = [groups[key][index] for index in rng.permutation(len(groups[key]))]
        forced = active[: len(members)] if key is not None and len(members) >= 2 else []
        for image, part in zip(members, forced, strict=False):
            take(image, part)
        for image in members[len(forced) :]:
            take(image, furthest_behind())
    _repair(present, counts, assignment, active[:2])
    return assignment


def _repair(present: dict[str, set[int]], counts: Counter[int], assignment: dict[str, int], needed: list[int]) -> None:
    """Move an image into a split that lacks one of its classes (with >= 2 images), from the split
    that has most images of that class, if that leaves it at least one."""
    for class_id in sorted(counts, key=lambda class_id: (counts[class_id], class_id)):
        if counts[class_id] < 2:
            continue
        holders = [image for image in sorted(present) if class_id in present[image]]
        for part in needed:
            per_part = Counter(assignment[image] for image in holders)
            if per_part[part]:
                continue
            donor, held = per_part.most_common(1)[0]
            if held >= 2:
                assignment[next(image for image in reversed(holders) if assignment[image] == donor)] = part


def _shares(ratios: Sequence[float]) -> tuple[float, float, float]:
    values = [float(value) for value in ratios]
    if len(values) not in (2, 3) or any(not np.isfinite(value) or value < 0 for value in values):
        raise EdgewatchError(f"ratios {ratios} are not 2 or 3 shares >= 0", "e.g. --ratios 0.8,0.2 or 0.8,0.1,0.1")
    if abs(sum(values) - 1) > 1e-6 or values[0] <= 0 or values[1] <= 0:
        raise EdgewatchError(
            f"ratios {','.join(f'{value:g}' for value in values)} do not add up to 1 with a train and a validation share",
            "e.g. --ratios 0.8,0.2 or 0.8,0.1,0.1",
        )
    return values[0], values[1], values[2] if len(values) == 3 else 0.0


def _subset(dataset: sv.DetectionDataset, images: list[str]) -> sv.DetectionDataset:
    return sv.DetectionDataset(
        classes=dataset.classes, images=images, annotations={image: dataset.annotations[image] for image in images}
    )
