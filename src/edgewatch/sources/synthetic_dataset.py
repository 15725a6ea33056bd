"""Synthetic scenes written out as labelled frames, a training (or evaluation) set that
`edgewatch train` and `edgewatch eval --truth` read: street and pets as a detection dataset in any
format of `edgewatch.data.datasets`, door as a folder per state (`closed/`, `open/`).

Frames are taken evenly over each of several scenes (seeds `seed`, `seed + 1`, ...) and named
`<kind>_s<seed>_f<frame>.jpg`, so the images of every scene can share one folder. A box is left out
where the object is mostly hidden (street: behind the post; pets: behind the animals in front), as
the project's own evaluations do: nobody can ask a detector for what cannot be seen.

Example:
    >>> report = write_dataset("street", Path("street-data"), scenes=2, frames=3, format="yolo")  # doctest: +SKIP
    >>> report.summary()  # doctest: +SKIP
    '6 images, 14 boxes (person 5, car 9)'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from edgewatch.data.datasets import Report, check_format, check_target, save
from edgewatch.errors import EdgewatchError
from edgewatch.progress import with_progress
from edgewatch.sinks.files import write_whole
from edgewatch.sources.door import STATES
from edgewatch.sources.pets import LABELS as PET_LABELS
from edgewatch.sources.synthetic import LABELS as STREET_LABELS
from edgewatch.sources.synthetic import Scene, TruthBox
from edgewatch.sources.synthetic_export import SCENES

#: class names of the detection scenes, in class id order
CLASSES = {"street": STREET_LABELS, "pets": PET_LABELS}
JPEG_QUALITY = 95


def write_dataset(
    kind: str,
    target: str | Path,
    seed: int = 0,
    scenes: int = 8,
    frames: int = 25,
    format: str = "yolo",
    seconds: float | None = None,
    force: bool = False,
) -> Report:
    """Render `frames` frames evenly spread over each of `scenes` scenes of `kind` and write them as a
    dataset in the folder `target`.

    Args:
        kind: `street`, `pets` (a detection dataset in `format`) or `door` (a folder per state;
            `format` is not used).
        target: the folder to write; made when missing.
        seed: the first scene's seed; the others follow on (`seed + 1`, ...).
        scenes: how many scenes.
        frames: frames per scene; more than a scene has takes each of its frames once.
        format: one of `edgewatch.data.datasets.FORMATS`.
        seconds: each scene's length; None for the scene's own default.
        force: write into a `target` that is not empty. Only what this writer owns is replaced (a
            detection format's files, door's `closed/` and `open/`); nothing else there is touched.

    Returns:
        What was written: images, and boxes per class (door: images per state).

    Raises:
        EdgewatchError: an unknown kind or format, no frame to take, or a `target` that is a file or
            (without `force`) not empty; all before anything is written.
    """
    if kind not in SCENES:
        raise EdgewatchError(f"unknown synthetic scene '{kind}'", f"use one of {', '.join(SCENES)}")
    if scenes < 1 or frames < 1:
        raise EdgewatchError(f"{scenes} scenes of {frames} frames is no dataset", "ask for at least one of each")
    if kind != "door":
        check_format(format)
    check_target(target, force)
    target = Path(os.path.abspath(target))  # `.` has a parent to put the scratch folder in
    first = _scene(kind, seed, seconds)
    if first.frame_count < 1:
        raise EdgewatchError(f"a {kind} scene of {seconds} s has no frame", "give a longer --seconds")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgewatchError(
            f"cannot create folder {target.parent}: {error.strerror}", "choose a writable place"
        ) from None
    picks = spread(first.frame_count, frames)
    rendered = _render(kind, first, seed, scenes, seconds, picks)
    if kind == "door":
        return _write_door(rendered, target)
    return _write_detections(kind, rendered, target, format, force)


def spread(frame_count: int, frames: int) -> list[int]:
    """`frames` frame indices evenly spread over `frame_count` frames, each the middle of its stretch
    (so not the first frame, where a street is still empty); every frame when there are fewer.

    Example:
        >>> spread(500, 4), spread(3, 5)
        ([62, 187, 312, 437], [0, 1, 2])
    """
    if frames >= frame_count:
        return list(range(frame_count))
    # stretches are at least a frame long, so no index repeats
    return [int(index) for index in (np.arange(frames) + 0.5) * frame_count / frames]


def _scene(kind: str, seed: int, seconds: float | None) -> Scene:
    return SCENES[kind](seed=seed) if seconds is None else SCENES[kind](seed=seed, seconds=seconds)


def _render(
    kind: str, first: Scene, seed: int, scenes: int, seconds: float | None, picks: list[int]
) -> Iterator[tuple[str, np.ndarray, object]]:
    """(image name, picture, truth) of each pick of each scene, one scene in memory at a time."""

    def frames() -> Iterator[tuple[str, np.ndarray, object]]:
        for number in range(scenes):
            scene = first if number == 0 else _scene(kind, seed + number, seconds)
            for frame in picks:
                image, truth = scene.render(frame)
                yield f"{kind}_s{seed + number}_f{frame:05d}.jpg", image, truth

    return with_progress(frames(), scenes * len(picks), f"rendering {kind}", "frame")


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise EdgewatchError(f"cannot write {path}", f"check that {path.parent} is writable and has room")


def asked(kind: str, truth: list[TruthBox]) -> list[TruthBox]:
    """The boxes a detector is asked for: those not mostly hidden. A street box knows how much of it
    the post hides; a pets box does not (its `visible` is 1), so what the animals drawn after it (in
    front, `PetsScene.truth` is in drawing order) cover of it is worked out here.

    Example:
        >>> from edgewatch.sources.pets import PetsScene
        >>> truth = PetsScene(seed=0).truth(500)
        >>> len(asked("pets", truth)) <= len(truth)
        True
    """
    if kind == "pets":
        truth = [replace(item, visible=share) for item, share in zip(truth, _uncovered(truth), strict=True)]
    return [item for item in truth if not item.hidden]


def _uncovered(truth: list[TruthBox]) -> list[float]:
    """Share of each box, in whole pixels, that no box after it covers. A sprite does not fill its box,
    so this errs on the side of hidden; pets never stay on top of each other for more than a moment."""
    shares = []
    for index, item in enumerate(truth):
        x1, y1, x2, y2 = (round(value) for value in item.box)
        free = np.ones((max(y2 - y1, 1), max(x2 - x1, 1)), bool)
        for front in truth[index + 1 :]:  # at most two animals in front: a loop of boxes, not of pixels
            fx1, fy1, fx2, fy2 = (round(value) for value in front.box)
            free[max(fy1 - y1, 0) : max(fy2 - y1, 0), max(fx1 - x1, 0) : max(fx2 - x1, 0)] = False
        shares.append(float(free.mean()))
    return shares


def _write_detections(
    kind: str, rendered: Iterator[tuple[str, np.ndarray, object]], target: Path, format: str, force: bool
) -> Report:
    """Render into a scratch folder beside `target` (`save` copies the images from there), then save."""
    classes = list(CLASSES[kind])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as scratch:
        annotations: dict[str, sv.Detections] = {}
        for name, image, truth in rendered:
            path = Path(scratch) / name
            _write_jpeg(path, image)
            boxes = asked(kind, truth)  # type: ignore[arg-type]  # street and pets give TruthBox lists
            annotations[str(path)] = sv.Detections(
                xyxy=np.array([item.box for item in boxes], np.float32).reshape(-1, 4),
                class_id=np.array([classes.index(item.label) for item in boxes], int),
            )
        dataset = sv.DetectionDataset(classes=classes, images=list(annotations), annotations=annotations)
        save(dataset, format, target, force=force)
    if format == "coco":
        _drop_capture_dates(target / "annotations.json")
    return Report.of(dataset)


def _drop_capture_dates(file: Path) -> None:
    """supervision stamps each COCO image with the time it wrote it; a rendered frame has no capture
    date, and without the stamp the same seed gives the same file."""
    data = json.loads(file.read_text(encoding="utf-8"))
    for image in data["images"]:
        image.pop("date_captured", None)
    write_whole(file, json.dumps(data).encode())


def _write_door(rendered: Iterator[tuple[str, np.ndarray, object]], target: Path) -> Report:
    """Render into a folder beside `target` and move it into place whole, so a failure (or Ctrl-C)
    leaves `target` as it was."""
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        counts = dict.fromkeys(STATES, 0)
        for name, image, state in rendered:
            (staging / str(state)).mkdir(exist_ok=True)
            _write_jpeg(staging / str(state) / name, image)
            counts[str(state)] += 1
        if not target.exists():
            staging.rename(target)
        else:
            # an existing target (empty, or with force) keeps its own inode and everything else in it
            # (it may be the shell's working folder); only the state folders are swapped
            for state in STATES:
                if (target / state).exists() or (target / state).is_symlink():
                    (target / state).rename(staging / f".old-{state}")
                if (staging / state).is_dir():
                    (staging / state).rename(target / state)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Report(images=sum(counts.values()), per_class=counts)
