"""The review index of a dataset folder: what a person decided about each box, kept beside the data.

The review page reads a folder's annotations once as drafts (`origin: model`), then records every
decision in `.review/review.json`: per image whether it was reviewed, per box its label, `xyxy`
pixels, score, status (`pending` / `accepted` / `rejected`), origin (`model` / `human`) and when it
last changed (ISO 8601 UTC). Saving exports the boxes that were not rejected in a dataset format into
the same folder; the index itself stays the record of the review.

The index lives in a hidden folder because a `review.json` beside the annotations would read as one
more COCO file or SageMaker record to the format readers. Every write goes to a temporary file that
replaces the index in one step, after the index as it was has been copied to
`.review/backups/review-<UTC time with microseconds>.json` (the last `KEEP_BACKUPS` are kept, at
most `BACKUP_BYTES` of them together).

Example index:

    {"version": 1, "format": "voc", "classes": ["car", "person"],
     "images": {"street.jpg": {"path": "images/street.jpg", "width": 640, "height": 360,
                               "state": "reviewed", "reviewed_at": "2026-11-22T10:00:12.400Z", "next_id": 2,
                               "boxes": [{"id": 0, "label": "car", "xyxy": [4.0, 10.0, 40.0, 30.0],
                                          "score": 0.91, "status": "accepted", "origin": "model",
                                          "time": "2026-11-22T10:00:12.400Z"}, ...]}},
     "saved": {"format": "voc", "time": "2026-11-22T10:05:00.000Z", "images": 40, "boxes": 97}}
"""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgewatch.data.datasets import (
    IMAGE_SUFFIXES,
    Report,
    check_format,
    detect_format,
    image_size,
    load,
    write_annotations,
)
from edgewatch.errors import EdgewatchError
from edgewatch.sinks.files import write_whole

INDEX_FOLDER = ".review"
INDEX_NAME = "review.json"
BACKUP_FOLDER = "backups"
KEEP_BACKUPS = 50
# Backups together stay under this (the newest is kept whatever its size): 50 copies of a large index
# would otherwise fill a small disk.
BACKUP_BYTES = 64 * 1024 * 1024
# What one image's edit may hold: far more boxes than a person draws, and corners well past any camera's
# frame (JPEG stops at 65,535 pixels a side), so no single request can grow the index (and each of its
# backups) by megabytes.
MAX_BOXES = 1000
MAX_PIXELS = 100_000.0
# A box edge moved by less than this (pixels) is the same box: the page sends floats back as it got them.
SAME_PLACE = 1e-3
MIN_SIZE = 1.0  # pixels: a box narrower or lower than this is a slip of the mouse

Status = Literal["pending", "accepted", "rejected"]
State = Literal["unreviewed", "reviewed"]
Origin = Literal["model", "human"]


def utc_now() -> str:
    """The time now as ISO 8601 UTC with milliseconds, as the rest of edgewatch writes it.

    Example:
        >>> utc_now()  # doctest: +SKIP
        '2026-11-22T10:00:12.400Z'
    """
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReviewBox(BaseModel):
    """One box of the index."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0, description="unique within its image, never reused")
    label: str
    xyxy: tuple[float, float, float, float] = Field(description="pixels of the image: x1, y1, x2, y2")
    score: float | None = Field(None, description="the model's score; none once a person moved or relabelled it")
    status: Status = "pending"
    origin: Origin = "model"
    time: str = Field(description="when it was read as a draft or last changed (ISO 8601 UTC)")


class ReviewImage(BaseModel):
    """One image of the index."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the image, relative to the folder")
    width: int
    height: int
    state: State = "unreviewed"
    reviewed_at: str | None = None
    next_id: int = 0
    boxes: list[ReviewBox] = Field(default_factory=list)


class SavedExport(BaseModel):
    """The last export."""

    format: str
    time: str
    images: int
    boxes: int


class ReviewFile(BaseModel):
    """The whole index file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    format: str
    classes: list[str] = Field(default_factory=list)
    images: dict[str, ReviewImage] = Field(default_factory=dict)
    saved: SavedExport | None = None


Pixel = Annotated[float, Field(ge=-MAX_PIXELS, le=MAX_PIXELS)]


class BoxEdit(BaseModel):
    """A box as the page sends it back: `id` None (or unknown) for a box a person drew."""

    # JSON's 1e309 parses to an infinity: refused here, so no edit reaches the index without finite corners
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: int | None = Field(None, ge=0)
    label: str = Field(min_length=1, max_length=100)
    xyxy: tuple[Pixel, Pixel, Pixel, Pixel]
    status: Status = "accepted"

    @field_validator("label")
    @classmethod
    def _one_line(cls, label: str) -> str:
        label = label.strip()
        if not label or any(not character.isprintable() for character in label):
            raise ValueError("a label is one line of printable text")
        return label


class ImageEdit(BaseModel):
    """An image's boxes and state as the page sends them (request body of the PUT), at most
    `MAX_BOXES` boxes with corners within `MAX_PIXELS`.

    Example:
        >>> body = '{"state": "reviewed", "boxes": [{"label": "car", "xyxy": [1, 2, 3, 4]}]}'
        >>> edit = ImageEdit.model_validate_json(body)
        >>> edit.boxes[0].xyxy
        (1.0, 2.0, 3.0, 4.0)
    """

    model_config = ConfigDict(extra="forbid")

    boxes: list[BoxEdit] = Field(max_length=MAX_BOXES)
    state: State


class ReviewIndex:
    """The review of one dataset folder: drafts read from its annotations, decisions kept in its index.

    Opening reads the folder's annotations (format guessed unless given) and the index if there is
    one; images new on disk join as drafts (a capture folder grows while a camera runs). Each change is
    written at once, so a review is never lost; `save` exports it. Thread-safe: the web app calls it
    from its worker threads.

    Args:
        folder: the dataset folder.
        format: its annotations' format (default: as the index says, else guessed).
        target_format: the format `save` writes by default (default: `format`).

    Raises:
        EdgewatchError: `folder` is no dataset, or its index cannot be read.

    Example:
        >>> index = ReviewIndex("sampled/")  # doctest: +SKIP
        >>> first = index.names()[0]  # doctest: +SKIP
        >>> boxes = [BoxEdit(id=box.id, label=box.label, xyxy=box.xyxy, status="accepted")
        ...          for box in index.image(first).boxes]  # doctest: +SKIP
        >>> index.update(first, ImageEdit(boxes=boxes, state="reviewed"))  # doctest: +SKIP
        >>> index.save("yolo").summary()  # doctest: +SKIP
        '40 images, 97 boxes (car 80, person 17)'
    """

    def __init__(self, folder: str | Path, format: str | None = None, target_format: str | None = None) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise EdgewatchError(f"no such dataset folder: {folder}", "name a folder of images and annotations")
        self.path = self.folder / INDEX_FOLDER / INDEX_NAME
        self.backups = self.folder / INDEX_FOLDER / BACKUP_FOLDER
        self._lock = threading.RLock()
        self._last_backup = ""
        self._disk_signature: tuple[tuple[str, int], ...] = ()
        self.skipped: list[str] = []
        stored = self._read_index()
        if format is not None:
            check_format(format)
        self.format = format or (stored.format if stored is not None else detect_format(self.folder))
        if target_format is not None:
            check_format(target_format)
        self.target_format = target_format or self.format
        self._file = stored or ReviewFile(format=self.format)
        self._file.format = self.format
        self.refresh(force=True)

    # --- reading ---------------------------------------------------------------------------------

    @property
    def classes(self) -> list[str]:
        """Class names in id order: the dataset's, then those typed on the page."""
        return list(self._file.classes)

    @property
    def saved(self) -> SavedExport | None:
        return self._file.saved

    def names(self) -> list[str]:
        """The names of the images still on disk, sorted (a capture's names sort by time)."""
        with self._lock:
            entries = list(self._file.images.items())
        return sorted(name for name, entry in entries if (self.folder / entry.path).is_file())

    def overview(self) -> list[dict[str, Any]]:
        """A row per image on disk: `name`, `state`, `reviewed_at`, `boxes` (not rejected), `pending`."""
        rows = []
        with self._lock:
            for name in self.names():
                entry = self._file.images[name]
                kept = sum(box.status != "rejected" for box in entry.boxes)
                pending = sum(box.status == "pending" for box in entry.boxes)
                row = {"name": name, "state": entry.state, "reviewed_at": entry.reviewed_at}
                rows.append({**row, "boxes": kept, "pending": pending})
        return rows

    def image(self, name: str) -> ReviewImage:
        """One image's entry (a copy).

        Raises:
            KeyError: no image of that name.
        """
        with self._lock:
            return self._file.images[name].model_copy(deep=True)

    def image_path(self, name: str) -> Path:
        """The image file of `name`, checked to be inside the folder.

        Raises:
            KeyError: no image of that name, or its file is outside the folder or gone.
        """
        with self._lock:
            relative = self._file.images[name].path
        path = (self.folder / relative).resolve()
        if not path.is_relative_to(self.folder) or not path.is_file():
            raise KeyError(name)
        return path

    def last_reviewed(self) -> str | None:
        """The image reviewed most recently (where to pick up the work), or None."""
        with self._lock:
            reviewed = [(entry.reviewed_at, name) for name, entry in self._file.images.items() if entry.reviewed_at]
        return max(reviewed)[1] if reviewed else None

    def refresh(self, force: bool = False) -> bool:
        """Read the folder's annotations again if its files changed (or `force`): images new on disk
        join as drafts, and an image nobody has touched yet follows its drafts. True if that changed the
        index (which is then written)."""
        with self._lock:
            signature = self._signature()
            if not force and signature == self._disk_signature:
                return False
            self._disk_signature = signature
            dataset, self.skipped = self._load_drafts()
            changed = self._merge(dataset)
            if changed or not self.path.is_file():
                self._write()
            return changed

    # --- changing --------------------------------------------------------------------------------

    def update(self, name: str, edit: ImageEdit) -> ReviewImage:
        """Record the page's boxes and state for image `name`: a box whose label or corners changed
        becomes a person's (`origin: human`, no score), a box whose status changed gets the time, a
        new box gets an id, and a `reviewed` image gets `reviewed_at`. Writes the index.

        Raises:
            KeyError: no image of that name.
            ValueError: a box is smaller than a pixel once kept inside its image.
        """
        now = utc_now()
        with self._lock:
            entry = self._file.images[name].model_copy(deep=True)
            previous = {box.id: box for box in entry.boxes}
            limits = np.array([entry.width, entry.height, entry.width, entry.height], dtype=np.float64)
            boxes, taken = [], set()
            for edit_box in edit.boxes:
                xyxy = np.clip(np.asarray(edit_box.xyxy, dtype=np.float64), 0, limits)
                if xyxy[2] - xyxy[0] < MIN_SIZE or xyxy[3] - xyxy[1] < MIN_SIZE:
                    raise ValueError(f"box {edit_box.xyxy} is less than a pixel wide or high inside the image")
                corners = tuple(float(value) for value in xyxy)
                old = previous.get(edit_box.id) if edit_box.id not in taken else None
                if old is None:
                    box = ReviewBox(id=entry.next_id, label=edit_box.label, xyxy=corners, status=edit_box.status,
                                    origin="human", time=now)  # fmt: skip
                    entry.next_id += 1
                elif old.label != edit_box.label or not np.allclose(old.xyxy, corners, atol=SAME_PLACE):
                    box = old.model_copy(update={"label": edit_box.label, "xyxy": corners, "score": None,
                                                 "status": edit_box.status, "origin": "human", "time": now})  # fmt: skip
                elif old.status != edit_box.status:
                    box = old.model_copy(update={"status": edit_box.status, "time": now})
                else:
                    box = old
                taken.add(box.id)
                boxes.append(box)
            entry.boxes = boxes
            entry.state = edit.state
            entry.reviewed_at = now if edit.state == "reviewed" else entry.reviewed_at
            for box in boxes:
                if box.label not in self._file.classes:
                    self._file.classes.append(box.label)
            self._file.images[name] = entry
            self._write()
            return entry.model_copy(deep=True)

    def save(self, format: str | None = None) -> Report:
        """Export every image's boxes that were not rejected (accepted and pending) in `format`
        (default: the target format) into the folder, with `write_annotations`, and note it in the
        index. Scores are written where some box has one (a person's box counts as 1.0).

        Raises:
            EdgewatchError: `format` is unknown, or the folder's images are not in `images/` (the
                layout the formats are written for).
        """
        format = format or self.target_format
        check_format(format)
        with self._lock:
            dataset = self._accepted()
            write_annotations(dataset, format, self.folder)
            report = Report.of(dataset)
            self._file.saved = SavedExport(format=format, time=utc_now(), images=report.images, boxes=report.boxes)
            self._write()
            return report

    # --- inside ----------------------------------------------------------------------------------

    def _read_index(self) -> ReviewFile | None:
        if not self.path.is_file():
            return None
        try:
            return ReviewFile.model_validate_json(self.path.read_bytes())
        except (OSError, ValidationError) as error:
            if isinstance(error, ValidationError):
                first = error.errors()[0]
                reason = ".".join(str(part) for part in first["loc"]) + f": {first['msg']}"
            else:
                reason = str(error)
            raise EdgewatchError(
                f"cannot read the review index {self.path}: {reason}",
                f"restore the newest copy from {self.backups}, or move the index away to start over",
            ) from None

    def _source(self) -> Path:
        """Where the drafts are: a capture folder's `coco.json` before anything else, because saving
        as COCO writes `annotations.json` beside it, which the reader would otherwise prefer."""
        capture = self.folder / "coco.json"
        return capture if self.format == "coco" and capture.is_file() else self.folder

    def _load_drafts(self) -> tuple[sv.DetectionDataset, list[str]]:
        images = self.folder / "images"
        # With images/ named, every image in it is part of the dataset: one without drafts is reviewable.
        return load(self.format, self._source(), images=images if images.is_dir() else None)

    def _signature(self) -> tuple[tuple[str, int], ...]:
        """Modification times of the folder and its sub-folders: a file added, replaced or removed in
        any of them (the formats' layouts are one level deep) changes one."""
        folders = [
            self.folder,
            *(path for path in self.folder.iterdir() if path.is_dir() and path.name != INDEX_FOLDER),
        ]
        found = []
        for folder in sorted(folders):
            try:
                found.append((str(folder), folder.stat().st_mtime_ns))
            except OSError:  # removed while we looked: the next look sees it gone
                continue
        return tuple(found)

    def _merge(self, dataset: sv.DetectionDataset) -> bool:
        """Add images new in `dataset`; give an image nobody touched (unreviewed, every box a pending
        draft) its drafts as they are now. True if anything changed."""
        now, changed = utc_now(), False
        for name in dataset.classes:
            if name not in self._file.classes:
                self._file.classes.append(name)
                changed = True
        for image, detections in dataset.annotations.items():
            path = Path(image).resolve()
            if not path.is_relative_to(self.folder) or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue  # images named outside the folder are not ours to serve
            entry = self._file.images.get(path.name)
            if entry is not None and not _untouched(entry):
                continue
            boxes = _drafts(detections, dataset.classes, now)
            if entry is not None and _same_boxes(entry.boxes, boxes):
                continue
            width, height = image_size(path)
            self._file.images[path.name] = ReviewImage(
                path=path.relative_to(self.folder).as_posix(), width=width, height=height, next_id=len(boxes),
                boxes=boxes,
            )  # fmt: skip
            changed = True
        return changed

    def _accepted(self) -> sv.DetectionDataset:
        classes = self.classes
        class_ids = {name: class_id for class_id, name in enumerate(classes)}
        kept = {}
        for name in sorted(self._file.images):
            entry = self._file.images[name]
            path = self.folder / entry.path
            if path.is_file():
                kept[str(path)] = [box for box in entry.boxes if box.status != "rejected"]
        scored = any(box.score is not None for boxes in kept.values() for box in boxes)
        annotations = {}
        for image, boxes in kept.items():
            scores = np.array([1.0 if box.score is None else box.score for box in boxes], dtype=np.float32)
            annotations[image] = sv.Detections(
                xyxy=np.array([box.xyxy for box in boxes], dtype=np.float32).reshape(-1, 4),
                class_id=np.array([class_ids[box.label] for box in boxes], dtype=int),
                confidence=scores if scored else None,
            )
        return sv.DetectionDataset(classes=classes, images=list(annotations), annotations=annotations)

    def _write(self) -> None:
        """Back the index up, then replace it in one step (a crash leaves the old or the new, whole)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            self.backups.mkdir(exist_ok=True)
            shutil.copy2(self.path, self.backups / f"review-{self._backup_stamp()}.json")
            self._prune_backups()
        write_whole(self.path, self._file.model_dump_json(indent=1).encode("utf-8"))

    def _prune_backups(self) -> None:
        """Keep the newest backups, at most `KEEP_BACKUPS` of them and `BACKUP_BYTES` together; the
        newest is kept whatever its size, as it is the one a person restores."""
        total = 0
        for number, backup in enumerate(sorted(self.backups.glob("review-*.json"), reverse=True)):
            try:
                total += backup.stat().st_size
            except OSError:  # removed meanwhile: nothing left to prune
                continue
            if number and (number >= KEEP_BACKUPS or total > BACKUP_BYTES):
                backup.unlink(missing_ok=True)

    def _backup_stamp(self) -> str:
        """The UTC time with microseconds, later than the last backup's: two writes within one
        microsecond (or a clock stepped back) would otherwise overwrite or misorder a backup."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        if stamp <= self._last_backup:
            last = datetime.strptime(self._last_backup, "%Y%m%dT%H%M%S.%fZ")
            stamp = (last.replace(tzinfo=UTC) + _MICROSECOND).strftime("%Y%m%dT%H%M%S.%fZ")
        self._last_backup = stamp
        return stamp


_MICROSECOND = timedelta(microseconds=1)


def _untouched(entry: ReviewImage) -> bool:
    return entry.state == "unreviewed" and all(box.origin == "model" and box.status == "pending" for box in entry.boxes)


def _drafts(detections: sv.Detections, classes: list[str], now: str) -> list[ReviewBox]:
    scores = detections.confidence
    boxes = []
    for number, (xyxy, class_id) in enumerate(zip(detections.xyxy.tolist(), detections.class_id, strict=True)):
        score = None if scores is None else round(float(scores[number]), 4)
        boxes.append(ReviewBox(id=number, label=classes[int(class_id)], xyxy=tuple(xyxy), score=score, time=now))
    return boxes


def _same_boxes(old: list[ReviewBox], new: list[ReviewBox]) -> bool:
    return len(old) == len(new) and all(
        a.label == b.label and a.score == b.score and np.allclose(a.xyxy, b.xyxy, atol=SAME_PLACE)
        for a, b in zip(old, new, strict=True)
    )
