"""Detection datasets on disk: one in-memory `sv.DetectionDataset` (class names, image paths, an
`sv.Detections` per image) read from and written to Pascal VOC (labelImg), CSV, SageMaker JSON, COCO
and YOLO, with the items that could not be read reported as `file: reason` lines.

Layout written for each format (and read back, along with the usual variants listed in
docs/datasets.md):

| format | annotations | images |
| --- | --- | --- |
| `voc` | `annotations/<stem>.xml` | `images/` |
| `csv` | `annotations.csv` (`filename,width,height,class,xmin,ymin,xmax,ymax`, a row a box) | `images/` |
| `sagemaker` | `annotations/<stem>.json` | `images/` |
| `coco` | `annotations.json` | `images/` |
| `yolo` | `labels/<stem>.txt`, `data.yaml`, `classes.txt` | `images/` |

Class ids: a classes file fixes the order. Otherwise a format that numbers its classes keeps its order
(YOLO's names file, COCO and SageMaker categories by id); VOC and CSV take the order in which classes
first appear (files by name, rows in file order; within one XML file, by name).

An annotation that cannot be used (malformed file or row, box outside its image or of negative size,
class not in the classes file, image missing) costs the whole image, not just the box: an image with
one of its objects left unlabelled would teach a model that the object is background.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import numpy as np
import supervision as sv
import yaml
from defusedxml.ElementTree import parse as parse_xml
from PIL import Image
from supervision.dataset.formats.coco import coco_annotations_to_detections
from supervision.dataset.formats.pascal_voc import detections_from_xml_obj
from supervision.dataset.formats.yolo import yolo_annotations_to_detections
from supervision.utils.file import read_yaml_file, save_yaml_file

from edgewatch.data.formats import CSV_COLUMNS, SCORE_COLUMN, csv_rows, read_sagemaker_record, sagemaker_record
from edgewatch.errors import EdgewatchError
from edgewatch.progress import with_progress

FORMATS = ("voc", "csv", "sagemaker", "coco", "yolo")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Formats that store whole pixels (VOC, and VOC's 1-based corners) put an edge box up to a pixel past
# the border; more than that is a box that does not belong to the image.
EDGE_TOLERANCE = 1.0
_ANNOTATIONS = {
    "voc": "annotations",
    "csv": "annotations.csv",
    "sagemaker": "annotations",
    "coco": "annotations.json",
    "yolo": "labels",
}
# The files a per-image format keeps in its folder: VOC and SageMaker share `annotations/`, so clearing
# that folder for one must leave the other's files.
_OWN_FILES = {"voc": "*.xml", "sagemaker": "*.json", "yolo": "*.txt"}
_EXIF_ORIENTATION = 0x0112


@dataclass
class Report:
    """What a conversion or split wrote, and what it skipped.

    Attributes:
        images: images written.
        boxes: boxes written.
        per_class: boxes written per class name, in class id order.
        splits: images per split (`train`, `validation`, `test`), for a split.
        skipped: one `file: reason` line per item left out.

    Example:
        >>> Report(images=3, boxes=4, per_class={"car": 3, "dog": 1}, skipped=["a.xml: not valid XML"]).summary()
        '3 images, 4 boxes (car 3, dog 1); 1 skipped'
    """

    images: int = 0
    boxes: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, dataset: sv.DetectionDataset, skipped: Sequence[str] = ()) -> Report:
        """The counts of `dataset` with the `skipped` lines of reading it."""
        class_ids = [detections.class_id for detections in dataset.annotations.values()]
        counts = np.bincount(np.concatenate([np.zeros(0, dtype=int), *class_ids]), minlength=len(dataset.classes))
        return cls(
            images=len(dataset),
            boxes=int(counts.sum()),
            per_class={name: int(count) for name, count in zip(dataset.classes, counts, strict=False)},
            skipped=list(skipped),
        )

    def summary(self) -> str:
        """One line: images, boxes per class, images per split, how many items were skipped."""
        classes = ", ".join(f"{name} {count}" for name, count in self.per_class.items())
        line = f"{self.images} images, {self.boxes} boxes" + (f" ({classes})" if classes else "")
        if self.splits:
            line += ": " + ", ".join(f"{name} {count}" for name, count in self.splits.items())
        return line + (f"; {len(self.skipped)} skipped" if self.skipped else "")


def load(
    format: str,
    path: str | Path,
    images: str | Path | None = None,
    classes: str | Path | Sequence[str] | None = None,
    allow_outside_images: bool = False,
) -> tuple[sv.DetectionDataset, list[str]]:
    """Read a dataset, leaving out (and reporting) what cannot be used.

    Args:
        format: one of `FORMATS`.
        path: the dataset: a folder (any format), or the `.csv` / COCO `.json` file itself.
        images: the folder of the images, where they are not beside the annotations. Every image in it
            is part of the dataset: one without annotations has no objects (CSV has no row for those).
        classes: a file of class names, one a line, or the names: fixes the class ids; a box of another
            class costs its image.
        allow_outside_images: read an image an annotation names outside the folders the format keeps
            its images in (`../x.jpg`, an absolute path elsewhere); by default such an image is skipped
            and named, so a dataset from elsewhere cannot pull other files into the output.

    Returns:
        The dataset (image paths are the source images) and the `file: reason` lines of what was skipped.

    Raises:
        EdgewatchError: `path` is no dataset of `format`, or `images` / `classes` cannot be read.

    Example:
        >>> dataset, skipped = load("voc", "labelled/")  # doctest: +SKIP
        >>> dataset.classes, len(dataset), skipped  # doctest: +SKIP
        (['car', 'person'], 120, ['b.xml: not valid XML (syntax error: line 3, column 2)'])
    """
    check_format(format)
    path = Path(path)
    if not path.exists():
        raise EdgewatchError(f"no such dataset: {path}", "check the path")
    image_dir = Path(images) if images is not None else None
    if image_dir is not None and not image_dir.is_dir():
        raise EdgewatchError(f"no such image folder: {image_dir}", "--images names the folder of the images")
    fixed = read_classes(classes) if classes is not None else None
    read = _READERS[format](path, image_dir, fixed)
    return _assemble(read, image_dir, fixed, allow_outside_images)


def save(dataset: sv.DetectionDataset, format: str, target: str | Path, force: bool = False) -> None:
    """Write `dataset` in `format` under the folder `target` (layout in the module docstring), copying
    the images.

    Raises:
        EdgewatchError: `target` exists and is not empty and `force` is False, or it holds the source.

    Example:
        >>> save(dataset, "sagemaker", "out/")  # doctest: +SKIP
    """
    check_format(format)
    target = Path(target)
    owned = ["images", _ANNOTATIONS[format], *(["data.yaml", "classes.txt"] if format == "yolo" else [])]
    own_files = {_ANNOTATIONS[format]: _OWN_FILES[format]} if format in _OWN_FILES else None
    _prepare(target, force, owned, dataset, own_files=own_files)
    _write(dataset, format, target / "images", target / _ANNOTATIONS[format])


def save_split(parts: dict[str, sv.DetectionDataset], format: str, target: str | Path, force: bool = False) -> None:
    """Write each part (`train`, `validation`, `test`) of a split under `target`.

    SageMaker gets its channels: `<part>/` (images) and `<part>_annotation/` (JSON). The other formats
    get `<part>/` holding that part in the layout `save` writes; YOLO also gets a `data.yaml` at the
    top whose `train` / `val` / `test` name the parts, as Ultralytics reads it.

    Example:
        >>> save_split({"train": train, "validation": validation}, "sagemaker", "out/")  # doctest: +SKIP
    """
    check_format(format)
    target = Path(target)
    if format == "sagemaker":
        owned = [name for part in parts for name in (part, f"{part}_annotation")]
    else:
        owned = [*parts, *(["data.yaml"] if format == "yolo" else [])]
    for dataset in parts.values():
        _prepare(target, force, owned, dataset, create=False)
    _prepare(target, force, owned, None)
    for part, dataset in parts.items():
        if format == "sagemaker":
            _write(dataset, format, target / part, target / f"{part}_annotation")
        else:
            _write(dataset, format, target / part / "images", target / part / _ANNOTATIONS[format])
    if format == "yolo":
        classes = next(iter(parts.values())).classes if parts else []
        keys = {"train": "train", "validation": "val", "test": "test"}
        data = {keys.get(part, part): f"{part}/images" for part in parts}
        save_yaml_file({**data, "nc": len(classes), "names": list(classes)}, target / "data.yaml")


def write_annotations(dataset: sv.DetectionDataset, format: str, folder: str | Path) -> None:
    """Write only the annotations of `format` (layout of `save`) for a dataset whose images are already
    in `folder/images/`: how the sampler writes its drafts and the review page saves in place.

    The annotations are written beside and then moved in file by file, so a failed write (a full disk)
    leaves the last ones whole. Only the files of `format` for the images of `dataset` are replaced:
    VOC and SageMaker share `annotations/`, and a save in one never removes the other's files, nor any
    file it did not write.

    Raises:
        EdgewatchError: an image of `dataset` is not in `folder/images/`.

    Example:
        >>> write_annotations(dataset, "yolo", "sampled/")  # doctest: +SKIP
    """
    check_format(format)
    folder = Path(folder)
    images = folder / "images"
    for image in dataset.image_paths:
        if not (images / Path(image).name).is_file():
            raise EdgewatchError(f"image {Path(image).name} is not in {images}", "write the images there first")
    staging = folder / f".{format}.writing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _write_annotations(dataset, format, staging / _ANNOTATIONS[format])
        for written in sorted(path for path in staging.rglob("*") if path.is_file()):
            target = folder / written.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def detect_format(path: str | Path) -> str:
    """The format of the dataset folder `path`, from the files of each format's layout (see the
    module docstring); a retraining-capture folder (`images/` and `coco.json`) reads as COCO.

    Raises:
        EdgewatchError: no format's files are there.

    Example:
        >>> detect_format("sampled/")  # doctest: +SKIP
        'voc'
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv"
        if path.suffix.lower() == ".json":
            return "coco"
    elif path.is_dir():
        annotations = path / "annotations"
        if (path / "annotations.csv").is_file():
            return "csv"
        if (path / "annotations.json").is_file() or (path / "coco.json").is_file():
            return "coco"
        if (path / "labels").is_dir() or (path / "data.yaml").is_file() or (path / "yolo").is_dir():
            return "yolo"
        if any(annotations.glob("*.xml")) or any(path.glob("*.xml")):
            return "voc"
        if any(annotations.glob("*.json")) or any((path / "sagemaker").glob("*.json")):
            return "sagemaker"
    raise EdgewatchError(
        f"{path} is no dataset edgewatch knows",
        "expected annotations/ (voc, sagemaker), annotations.csv, annotations.json or labels/ (yolo)",
    )


def read_classes(classes: str | Path | Sequence[str]) -> list[str]:
    """Class names from a file (one a line, blank lines ignored) or a list, checked for repeats.

    Example:
        >>> read_classes(["car", "person"])
        ['car', 'person']
    """
    if isinstance(classes, str | Path):
        try:
            names = [line.strip() for line in Path(classes).read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as error:
            raise EdgewatchError(f"cannot read classes file {classes}: {error}", "one class name a line") from None
    else:
        names = [str(name).strip() for name in classes]
    names = [name for name in names if name]
    if not names:
        raise EdgewatchError(f"no class names in {classes}", "one class name a line")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise EdgewatchError(f"class {repeated[0]!r} is listed twice in {classes}", "list each class once")
    return names


def check_format(format: str) -> None:
    """Raise EdgewatchError unless `format` is one of `FORMATS`."""
    if format not in FORMATS:
        raise EdgewatchError(f"unknown dataset format {format!r}", f"use one of {', '.join(FORMATS)}")


def check_target(target: str | Path, force: bool) -> None:
    """Raise EdgewatchError if `target` is a file, or a folder that is not empty and `force` is False."""
    _prepare(Path(target), force, [], None, create=False)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as OpenCV loads the image, from its header alone (no decoding).

    Example:
        >>> image_size("frame.jpg")  # doctest: +SKIP
        (640, 360)
    """
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    # cv2.imread turns the image as its EXIF orientation says; 5-8 are quarter turns
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


# --- reading -----------------------------------------------------------------------------------


@dataclass
class _Item:
    """One image's annotation as a reader found it, before it is checked against the image."""

    where: str  # the annotation file (and row), for report lines
    image: str  # the image's name as the annotation gives it (a stem where it gives none)
    size: tuple[int, int] | None  # (width, height) the annotation states, if it does
    xyxy: np.ndarray
    names: list[str]
    scores: np.ndarray | None = None  # a model's predictions carry a score per box


@dataclass
class _Read:
    items: list[_Item]
    skipped: list[str]
    image_dirs: list[Path]
    native: list[str] = field(default_factory=list)  # the class order the format carries
    rejected: set[str] = field(default_factory=set)  # stems of images whose annotation was skipped
    every_image: bool = False  # every image in image_dirs[0] belongs (YOLO: no labels file, no objects)

    def reject(self, stem: str, reason: str) -> None:
        """Skip the image `stem` (its annotation is broken) and say why."""
        self.skipped.append(reason)
        self.rejected.add(stem)


def _image_dirs(image_dir: Path | None, *candidates: Path) -> list[Path]:
    if image_dir is not None:
        return [image_dir]
    return list(dict.fromkeys(path for path in candidates if path.is_dir()))


def _read_voc(path: Path, image_dir: Path | None, fixed: list[str] | None) -> _Read:
    folder = _folder_with(path, "*.xml", "annotations", "Annotations")
    if folder is None:
        raise EdgewatchError(
            f"{path} is no Pascal VOC dataset: no .xml files in it or in annotations/",
            "name the folder labelImg saved into, or pick the format with --from",
        )
    read = _Read([], [], _image_dirs(image_dir, folder, path, path / "images", path / "JPEGImages"))
    for file in sorted(folder.glob("*.xml")):
        try:
            root = parse_xml(file).getroot()
            if root is None or root.tag != "annotation":
                raise ValueError("no <annotation> element")
            size = tuple(int(float(root.findtext(f"size/{key}") or 0)) for key in ("width", "height"))
            detections, names = detections_from_xml_obj(root, [], (max(size[0], 1), max(size[1], 1)))
            xyxy = _voc_corners(root)
        except ParseError as error:
            read.reject(file.stem, f"{file.name}: not valid XML ({error})")
            continue
        except ValueError as error:
            read.reject(file.stem, f"{file.name}: {error}")
            continue
        image = (root.findtext("filename") or "").strip() or file.stem
        names_of = [names[class_id] for class_id in detections.class_id]
        read.items.append(_Item(file.name, image, size if all(size) else None, xyxy, names_of))
    return read


def _voc_corners(root: Any) -> np.ndarray:
    """Each object's box as its file gives it, 0-based: supervision puts reversed corners in order, but
    xmin > xmax is a slip the docs promise to skip (with its image), as every other format's is."""
    corners = [
        [float(obj.findtext(f"bndbox/{key}") or "nan") for key in ("xmin", "ymin", "xmax", "ymax")]
        for obj in root.findall("object")
    ]
    # VOC's devkit indices are 1-based and inclusive: the far edge is already the 0-based one
    return np.array(corners, dtype=np.float64).reshape(-1, 4) - np.array([1.0, 1.0, 0.0, 0.0])


def _read_csv(path: Path, image_dir: Path | None, fixed: list[str] | None) -> _Read:
    file = path if path.is_file() else _one_file(path, "*.csv", "annotations.csv")
    if file is None or file.suffix.lower() != ".csv":
        raise EdgewatchError(f"{path} is no CSV dataset: no .csv file", "name the .csv file or its folder")
    try:
        rows = list(csv.reader(io.StringIO(file.read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise EdgewatchError(f"cannot read {file}: {error}", "a CSV file in UTF-8") from None
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    columns = len(CSV_COLUMNS) + (header[len(CSV_COLUMNS) :] == [SCORE_COLUMN])
    if header[: len(CSV_COLUMNS)] != list(CSV_COLUMNS) or len(header) != columns:
        raise EdgewatchError(
            f"{file} is no CSV dataset: its header is not {','.join(CSV_COLUMNS)}[,{SCORE_COLUMN}]",
            "add that header row",
        )
    read = _Read([], [], _image_dirs(image_dir, file.parent / "images", file.parent))
    boxes: dict[str, list[tuple[tuple[int, int], str, list[float], float]]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where, name = f"{file.name}:{line}", row[0].strip()
        problem = None
        if len(row) != columns:
            problem = f"{len(row)} fields, expected {columns}"
        elif not name or not row[3].strip():
            problem = "no file name" if not name else "no class"
        else:
            try:
                size = (int(row[1]), int(row[2]))
                box = [float(value) for value in row[4:8]]
                score = float(row[8]) if columns > len(CSV_COLUMNS) and row[8].strip() else 1.0
            except ValueError:
                problem = f"not a number in {','.join(row[1:3] + row[4:])}"
        if problem is not None:
            read.reject(Path(name).stem, f"{where}: {problem}" + (f" (image {name} skipped)" if name else ""))
            continue
        boxes.setdefault(name, []).append((size, row[3].strip(), box, score))
    for name, rows_of in boxes.items():
        if Path(name).stem in read.rejected:
            continue
        xyxy = np.array([box for _, _, box, _ in rows_of], dtype=np.float64)
        size = rows_of[0][0]
        scores = np.array([score for *_, score in rows_of]) if columns > len(CSV_COLUMNS) else None
        where, names = f"{file.name} ({name})", [c for _, c, _, _ in rows_of]
        read.items.append(_Item(where, name, size if all(size) else None, xyxy, names, scores))
    return read


def _read_sagemaker(path: Path, image_dir: Path | None, fixed: list[str] | None) -> _Read:
    folder = _folder_with(path, "*.json", "annotations", "sagemaker")  # sagemaker/: the retraining capture
    if folder is None:
        raise EdgewatchError(
            f"{path} is no SageMaker dataset: no .json files in it or in annotations/",
            "name the folder of the per-image JSON files",
        )
    dirs = _image_dirs(image_dir, path / "images", path, folder.parent / "images", path.parent / "images")
    read = _Read([], [], dirs)
    records = []
    names: dict[int, str] = {}
    for file in sorted(folder.glob("*.json")):
        try:
            record = read_sagemaker_record(json.loads(file.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            read.reject(file.stem, f"{file.name}: not valid JSON ({error})")
            continue
        except ValueError as error:
            read.reject(file.stem, f"{file.name}: {error}")
            continue
        records.append((file, record))
        for class_id, name in record[4].items():
            names.setdefault(class_id, name)
    for _, (_, _, _, class_ids, _, _) in records:
        for class_id in class_ids:
            names.setdefault(class_id, f"class_{class_id}")
    read.native = [names[class_id] for class_id in sorted(names)]
    for file, (image, size, xyxy, class_ids, _, scores) in records:
        read.items.append(_Item(file.name, image, size, xyxy, [names[class_id] for class_id in class_ids], scores))
    return read


def _read_coco(path: Path, image_dir: Path | None, fixed: list[str] | None) -> _Read:
    file = path if path.is_file() else _one_file(path, "*.json", "annotations.json", "_annotations.coco.json")
    if file is None:
        raise EdgewatchError(f"{path} is no COCO dataset: no .json file", "name the COCO .json file or its folder")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EdgewatchError(f"{file} is no COCO dataset: not valid JSON ({error})", "check the file") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list) for key in _COCO_KEYS):
        raise EdgewatchError(
            f"{file} is no COCO dataset: no 'images', 'annotations' and 'categories' lists", "check the file"
        )
    read = _Read([], [], _image_dirs(image_dir, file.parent / "images", file.parent))
    try:
        categories = {int(category["id"]): str(category["name"]) for category in data["categories"]}
    except (KeyError, TypeError, ValueError) as error:
        raise EdgewatchError(f"{file}: a category without a whole 'id' and a 'name' ({error})", "fix it") from None
    read.native = [categories[category_id] for category_id in sorted(categories)]
    entries: dict[Any, dict[str, Any]] = {}
    for number, entry in enumerate(data["images"], start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) or "id" not in entry:
            read.skipped.append(f"{file.name}: image entry {number} has no 'id' and 'file_name'")
            continue
        entries[entry["id"]] = entry
    grouped: dict[Any, list[dict[str, Any]]] = {image_id: [] for image_id in entries}
    for number, annotation in enumerate(data["annotations"], start=1):
        image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
        if image_id not in entries:
            read.skipped.append(
                f"{file.name}: annotation {number} is for image id {image_id!r}, which it does not list"
            )
            continue
        grouped[image_id].append(annotation)
    for image_id, entry in entries.items():
        where = f"{file.name} ({entry['file_name']})"
        try:
            unknown = [a.get("category_id") for a in grouped[image_id] if a.get("category_id") not in categories]
            if unknown:
                raise ValueError(f"category_id {unknown[0]!r} is not in its categories")
            size = (int(entry.get("width") or 0), int(entry.get("height") or 0))
            detections = coco_annotations_to_detections(
                grouped[image_id], resolution_wh=size, with_masks=False, use_iscrowd=False
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            read.reject(Path(entry["file_name"]).stem, f"{where}: {error}")
            continue
        names = [categories[int(category_id)] for category_id in detections.class_id]
        scores = _scores([annotation.get("score") for annotation in grouped[image_id]])
        size_or_none = size if all(size) else None
        read.items.append(_Item(where, entry["file_name"], size_or_none, detections.xyxy, names, scores))
    return read


_COCO_KEYS = ("images", "annotations", "categories")


def _read_yolo(path: Path, image_dir: Path | None, fixed: list[str] | None) -> _Read:
    if not path.is_dir():
        raise EdgewatchError(f"{path} is no YOLO dataset: not a folder", "name the folder with labels/ and data.yaml")
    # labels/: Ultralytics and our writer; yolo/: the retraining capture
    labels = next((folder for folder in (path / "labels", path / "yolo") if folder.is_dir()), path)
    names_files = [path / "data.yaml", path / "classes.txt", path / "obj.names", labels / "classes.txt"]
    names_files.append(path.parent / "data.yaml")  # Ultralytics' layout: splits in folders beside data.yaml
    names_file = next((file for file in names_files if file.is_file()), None)
    dirs = _image_dirs(image_dir, path / "images", path, path.parent / "images")
    dirs = [next((folder for folder in dirs if images_in(folder)), dirs[0])] if dirs else []
    files = sorted(file for file in labels.glob("*.txt") if file not in names_files)
    if (names_file is None and fixed is None) or (not files and not (dirs and images_in(dirs[0]))):
        raise EdgewatchError(
            f"{path} is no YOLO dataset: no labels/*.txt with a data.yaml, classes.txt or obj.names",
            "name the folder that holds them (or pass the class names with --classes)",
        )
    read = _Read([], [], dirs, every_image=True)
    read.native = _yolo_names(names_file) if names_file is not None else list(fixed or [])
    for file in files:
        image = _find(file.stem, dirs)
        if image is None:
            read.skipped.append(f"{file.name}: no image {file.stem}{'/'.join(IMAGE_SUFFIXES)}")
            continue
        try:
            lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
            detections = yolo_annotations_to_detections(lines, resolution_wh=image_size(image), with_masks=False)
            unnamed = [int(class_id) for class_id in detections.class_id if not 0 <= class_id < len(read.native)]
            if unnamed:
                raise ValueError(f"class id {unnamed[0]} has no name in {names_file.name if names_file else 'classes'}")
        except (OSError, UnicodeDecodeError, ValueError) as error:
            read.reject(file.stem, f"{file.name}: {error}")
            continue
        names = [read.native[class_id] for class_id in detections.class_id]
        # predictions keep their score in a sixth column (Ultralytics' save_conf); supervision drops it
        scores = _scores([line.split()[5] if len(line.split()) == 6 else None for line in lines])
        read.items.append(_Item(file.name, str(image), None, detections.xyxy, names, scores))
    return read


def _scores(values: list[Any]) -> np.ndarray | None:
    """The boxes' scores, when every box has one (else the boxes are labels, not predictions)."""
    if not values or any(value is None for value in values):
        return None
    return np.array([float(value) for value in values])


def _yolo_names(file: Path) -> list[str]:
    if file.suffix == ".yaml":
        try:
            names = read_yaml_file(file).get("names")
        except (OSError, yaml.YAMLError, AttributeError) as error:  # AttributeError: not a mapping
            raise EdgewatchError(f"cannot read class names from {file}: {error}", "check its 'names'") from None
        if isinstance(names, dict):
            return [str(names[key]) for key in sorted(names, key=int)]
        if isinstance(names, list):
            return [str(name) for name in names]
        raise EdgewatchError(f"{file} has no 'names' list", "list the class names under 'names'")
    return [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


_READERS: dict[str, Callable[[Path, Path | None, list[str] | None], _Read]] = {
    "voc": _read_voc,
    "csv": _read_csv,
    "sagemaker": _read_sagemaker,
    "coco": _read_coco,
    "yolo": _read_yolo,
}


def _assemble(
    read: _Read, image_dir: Path | None, fixed: list[str] | None, allow_outside_images: bool = False
) -> tuple[sv.DetectionDataset, list[str]]:
    """Check every item against its image and the classes, and build the dataset of those that pass."""
    skipped, rejected = read.skipped, set(read.rejected)
    kept: dict[str, tuple[np.ndarray, list[str], np.ndarray | None]] = {}
    names_taken: dict[str, str] = {}
    for item in read.items:
        image = _find(item.image, read.image_dirs, allow_outside_images)
        problem = _problem(item, image, fixed)
        if image is None and not allow_outside_images and _outside(item.image, read.image_dirs):
            problem = f"image {item.image} is outside the dataset's image folders"
        if problem is None and image is not None and image.name in names_taken:
            problem = f"image name {image.name} is also used by {names_taken[image.name]}"
        if problem is not None or image is None:
            skipped.append(f"{item.where}: {problem}")
            rejected.add(Path(item.image).stem)
            continue
        width, height = image_size(image)
        kept[str(image)] = (np.clip(item.xyxy, 0, [width, height, width, height]), item.names, item.scores)
        names_taken[image.name] = item.where
    if read.every_image or image_dir is not None:
        for image in images_in(read.image_dirs[0]) if read.image_dirs else []:
            if str(image) not in kept and image.stem not in rejected and image.name not in names_taken:
                kept[str(image)] = (np.zeros((0, 4)), [], None)
                names_taken[image.name] = image.name
    classes = list(fixed) if fixed is not None else list(read.native)
    for _, names, _ in kept.values():
        classes.extend(name for name in dict.fromkeys(names) if name not in classes)
    index = {name: class_id for class_id, name in enumerate(classes)}
    annotations = {
        image: sv.Detections(
            xyxy=xyxy.astype(np.float32).reshape(-1, 4),
            class_id=np.array([index[n] for n in names], dtype=int),
            confidence=scores.astype(np.float32) if scores is not None else None,
        )
        for image, (xyxy, names, scores) in kept.items()
    }
    return sv.DetectionDataset(classes=classes, images=list(kept), annotations=annotations), skipped


def _problem(item: _Item, image: Path | None, fixed: list[str] | None) -> str | None:
    if image is None:
        return f"image {item.image} not found"
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        return f"image {image.name} is not {'/'.join(IMAGE_SUFFIXES)}"
    try:
        width, height = image_size(image)
    except OSError:
        return f"image {image.name} cannot be read"
    if item.size is not None and item.size != (width, height):
        return f"size {item.size[0]}x{item.size[1]} differs from the image's {width}x{height}"
    if fixed is not None:
        unknown = [name for name in item.names if name not in fixed]
        if unknown:
            return f"class {unknown[0]!r} is not in the classes file"
    xyxy = np.asarray(item.xyxy, dtype=np.float64).reshape(-1, 4)
    bad = ~np.isfinite(xyxy).all(axis=1) | (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
    if bad.any():
        return f"box {_box(xyxy[bad][0])} has a negative or zero size"
    limit = np.array([width, height]) + EDGE_TOLERANCE
    outside = (xyxy[:, :2] < -EDGE_TOLERANCE).any(axis=1) | (xyxy[:, 2:] > limit).any(axis=1)
    if outside.any():
        return f"box {_box(xyxy[outside][0])} is outside the {width}x{height} image"
    return None


def _box(xyxy: np.ndarray) -> str:
    return "(" + ", ".join(f"{value:g}" for value in xyxy) + ")"


def _find(name: str, folders: Iterable[Path], allow_outside: bool = False) -> Path | None:
    """The image `name` names: as given (relative to each folder, or absolute), then by its file name
    alone, then, for a bare stem, with each image suffix; unless `allow_outside`, only inside `folders`."""
    folders = list(folders)
    relative = Path(name)
    names = [relative, Path(relative.name)]
    if relative.suffix.lower() not in IMAGE_SUFFIXES:
        names += [Path(relative.name + suffix) for suffix in (*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES))]
    for folder in folders:
        for candidate in names:
            path = folder / candidate
            if (allow_outside or _within(path, folders)) and path.is_file():
                return path
    return None


def _outside(name: str, folders: Sequence[Path]) -> bool:
    """Whether `name` (`../x.jpg`, `/elsewhere/x.jpg`), taken from one of `folders`, leads out of all."""
    return any(not _within(folder / name, folders) for folder in folders)


def _within(path: Path, folders: Sequence[Path]) -> bool:
    """Whether `path`, its `..` taken as written, is inside one of `folders`. Links are not followed: a
    link a dataset's owner put in its folder is theirs to make; a name in an annotation is not."""
    normal = Path(os.path.normpath(os.path.abspath(path)))
    return any(normal.is_relative_to(os.path.normpath(os.path.abspath(folder))) for folder in folders)


def images_in(folder: Path) -> list[Path]:
    """The `.jpg`, `.jpeg` and `.png` files of `folder`, by name."""
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def _folder_with(path: Path, pattern: str, *subfolders: str) -> Path | None:
    for folder in (*(path / name for name in subfolders), path):
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    return None


def _one_file(folder: Path, pattern: str, *preferred: str) -> Path | None:
    for name in preferred:
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob(pattern))
    return found[0] if len(found) == 1 else None


# --- writing -----------------------------------------------------------------------------------


def _prepare(
    target: Path,
    force: bool,
    owned: Sequence[str],
    dataset: sv.DetectionDataset | None,
    create: bool = True,
    own_files: dict[str, str] | None = None,
) -> None:
    """Refuse a target that is a file, or not empty without `force`, or that holds the source images;
    with `force`, clear only what this writer would write, so stale files of an earlier run (images of
    another split, say) cannot mix in, and nothing else of the folder is touched. A folder named in
    `own_files` loses only the files of its pattern (another format's files there stay)."""
    if target.exists() and not target.is_dir():
        raise EdgewatchError(f"output {target} is a file", "name a folder for the output")
    if dataset is not None:
        for image in dataset.image_paths:
            resolved = Path(image).resolve()
            if any(resolved.is_relative_to((target / name).resolve()) for name in owned):
                raise EdgewatchError(f"output {target} holds the source images", "write to another folder")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise EdgewatchError(
                f"output {target} exists and is not empty", "name a new folder, or pass --force to write into it"
            )
        if create:
            for name in owned:
                path = target / name
                pattern = (own_files or {}).get(name)
                if path.is_dir() and pattern is not None:
                    for file in path.glob(pattern):
                        if file.is_file():
                            file.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
    if create:
        target.mkdir(parents=True, exist_ok=True)


def _write(dataset: sv.DetectionDataset, format: str, images: Path, annotations: Path) -> None:
    """Copy the images to `images` and write the annotations at `annotations` (a folder, or the file of
    a one-file format)."""
    images.mkdir(parents=True, exist_ok=True)
    for image in with_progress(dataset.image_paths, len(dataset.image_paths), f"writing {format}", "image"):
        shutil.copy2(image, images / Path(image).name)
    _write_annotations(dataset, format, annotations)


def _write_annotations(dataset: sv.DetectionDataset, format: str, annotations: Path) -> None:
    """Write the annotations at `annotations` (a folder, or the file of a one-file format); boxes with a
    `confidence` keep it where the format can (all but VOC)."""
    if format == "voc":
        dataset.as_pascal_voc(annotations_directory_path=str(annotations))
    elif format == "coco":
        dataset.as_coco(annotations_path=str(annotations))
        if _has_scores(dataset):
            _add_coco_scores(dataset, annotations)
    elif format == "yolo":
        dataset.as_yolo(
            annotations_directory_path=str(annotations), data_yaml_path=str(annotations.parent / "data.yaml")
        )
        if _has_scores(dataset):
            _add_yolo_scores(dataset, annotations)
        # darknet-era tools (and our capture) read the names from classes.txt
        (annotations.parent / "classes.txt").write_text("".join(f"{name}\n" for name in dataset.classes))
    elif format == "sagemaker":
        annotations.mkdir(parents=True, exist_ok=True)
        for image in dataset.image_paths:
            detections, name = dataset.annotations[image], Path(image).name
            record = sagemaker_record(
                name, *image_size(image), detections.xyxy, detections.class_id, dataset.classes, detections.confidence
            )
            (annotations / f"{Path(image).stem}.json").write_text(json.dumps(record))
    elif format == "csv":
        scored = _has_scores(dataset)
        with annotations.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow([*CSV_COLUMNS, *([SCORE_COLUMN] if scored else [])])
            for image in dataset.image_paths:
                detections = dataset.annotations[image]
                scores = _scores_or_ones(detections) if scored else None
                rows = csv_rows(
                    Path(image).name, *image_size(image), detections.xyxy, detections.class_id, dataset.classes, scores
                )
                writer.writerows(rows)


def _has_scores(dataset: sv.DetectionDataset) -> bool:
    return any(detections.confidence is not None for detections in dataset.annotations.values())


def _scores_or_ones(detections: sv.Detections) -> np.ndarray:
    """A box without a score (drawn by a person, in a set of predictions) is as sure as can be."""
    return detections.confidence if detections.confidence is not None else np.ones(len(detections))


def _add_coco_scores(dataset: sv.DetectionDataset, file: Path) -> None:
    """supervision writes COCO without scores; add each box's, as COCO results carry them. Its
    annotations follow each image's boxes in order."""
    data = json.loads(file.read_text(encoding="utf-8"))
    by_name = {Path(image).name: _scores_or_ones(detections) for image, detections in dataset.annotations.items()}
    names = {entry["id"]: Path(entry["file_name"]).name for entry in data["images"]}
    taken: Counter[str] = Counter()
    for annotation in data["annotations"]:
        name = names[annotation["image_id"]]
        annotation["score"] = round(float(by_name[name][taken[name]]), 4)
        taken[name] += 1
    file.write_text(json.dumps(data), encoding="utf-8")


def _add_yolo_scores(dataset: sv.DetectionDataset, folder: Path) -> None:
    """supervision writes YOLO without scores; add a sixth column, as Ultralytics' `save_conf` does."""
    for image, detections in dataset.annotations.items():
        label = folder / f"{Path(image).stem}.txt"
        if not len(detections) or not label.is_file():
            continue
        lines = label.read_text(encoding="utf-8").splitlines()
        scores = _scores_or_ones(detections)
        label.write_text("".join(f"{line} {score:.4f}\n" for line, score in zip(lines, scores, strict=True)))
