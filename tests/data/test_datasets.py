"""Dataset formats: what a user labelled in one tool survives conversion to another and back, what
cannot be read is reported and the rest converted, and a split keeps every class in train and
validation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from edgewatch.data.convert import assign_splits, convert, split
from edgewatch.data.datasets import FORMATS, detect_format, load, save, write_annotations
from edgewatch.data.formats import sagemaker_record, yolo_lines
from edgewatch.errors import EdgewatchError

CLASSES = ["car", "person", "dog"]
# name: (width, height, [(class, x1, y1, x2, y2), ...]); several classes, several boxes, one empty
TRUTH = {
    "street.jpg": (96, 64, [("car", 4, 10, 40, 30), ("person", 50, 5, 60, 40), ("car", 70, 40, 95, 63)]),
    "park.png": (80, 60, [("dog", 10, 20, 30, 50), ("person", 40, 0, 52, 45)]),
    "yard.jpeg": (64, 80, [("dog", 1, 1, 63, 79)]),
    "night.png": (72, 48, [("person", 20, 10, 30, 40)]),
    "empty.jpg": (50, 40, []),
}


def draw(path: Path, width: int, height: int, boxes: list[tuple[str, int, int, int, int]]) -> None:
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    for index, (_, x1, y1, x2, y2) in enumerate(boxes):
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (40 + 60 * index, 200, 255 - 50 * index), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def make_dataset(folder: Path, truth: dict = TRUTH, classes: list[str] = CLASSES) -> sv.DetectionDataset:
    annotations = {}
    for name, (width, height, boxes) in truth.items():
        draw(folder / name, width, height, boxes)
        annotations[str(folder / name)] = sv.Detections(
            xyxy=np.array([box[1:] for box in boxes], dtype=np.float32).reshape(-1, 4),
            class_id=np.array([classes.index(box[0]) for box in boxes], dtype=int),
        )
    return sv.DetectionDataset(classes=classes, images=list(annotations), annotations=annotations)


@pytest.fixture
def datasets(tmp_path) -> dict[str, Path]:
    """The same labelled images saved in every format."""
    source = make_dataset(tmp_path / "drawn")
    folders = {}
    for format in FORMATS:
        folders[format] = tmp_path / f"in_{format}"
        save(source, format, folders[format])
    return folders


def boxes_by_image(dataset: sv.DetectionDataset) -> dict[str, tuple[tuple[int, int], list[tuple[str, np.ndarray]]]]:
    found = {}
    for path in dataset.image_paths:
        image = cv2.imread(path)
        detections = dataset.annotations[path]
        boxes = sorted(
            (
                (dataset.classes[class_id], xyxy)
                for xyxy, class_id in zip(detections.xyxy, detections.class_id, strict=True)
            ),
            key=lambda box: (box[0], *box[1].tolist()),
        )
        found[Path(path).name] = ((image.shape[1], image.shape[0]), boxes)
    return found


def assert_matches_truth(dataset: sv.DetectionDataset, truth: dict = TRUTH) -> None:
    found = boxes_by_image(dataset)
    assert sorted(found) == sorted(truth)
    for name, (width, height, boxes) in truth.items():
        size, got = found[name]
        assert size == (width, height), name
        expected = sorted(boxes, key=lambda box: (box[0], *box[1:]))
        assert [label for label, _ in got] == [box[0] for box in expected], name
        for (_, xyxy), box in zip(got, expected, strict=True):
            np.testing.assert_allclose(xyxy, box[1:], atol=1.0, err_msg=name)


def images_option(format: str, folder: Path) -> Path | None:
    """CSV has no row for an image without objects: its images folder brings that image back."""
    return folder / "images" if format == "csv" else None


@pytest.mark.parametrize("format", FORMATS)
def test_every_format_reads_back_the_boxes_classes_and_sizes_it_was_written_with(datasets, format):
    dataset, skipped = load(format, datasets[format], images=images_option(format, datasets[format]))
    assert skipped == []
    assert_matches_truth(dataset)


@pytest.mark.parametrize("source", FORMATS)
def test_every_format_converts_to_every_other_and_back(datasets, tmp_path, source):
    for target in FORMATS:
        there, back = tmp_path / f"{source}_to_{target}", tmp_path / f"{source}_to_{target}_back"
        report = convert(source, target, datasets[source], there, images=images_option(source, datasets[source]))
        assert report.skipped == [] and report.images == 5 and report.boxes == 7
        assert report.per_class == {"car": 2, "person": 3, "dog": 2}
        assert_matches_truth(load(target, there, images=images_option(target, there))[0])
        convert(target, source, there, back, images=images_option(target, there))
        assert_matches_truth(load(source, back, images=images_option(source, back))[0])
    assert sorted(path.name for path in (datasets[source] / "images").iterdir()) == sorted(TRUTH)  # copied


def test_the_sagemaker_output_is_one_json_per_image_in_the_documented_shape(datasets, tmp_path):
    convert("voc", "sagemaker", datasets["voc"], tmp_path / "out")
    record = json.loads((tmp_path / "out" / "annotations" / "park.json").read_text())
    assert record["file"] == "park.png"
    assert record["image_size"] == [{"width": 80, "height": 60, "depth": 3}]
    assert {(box["left"], box["top"], box["width"], box["height"]) for box in record["annotations"]} == {
        (10, 20, 20, 30),
        (40, 0, 12, 45),
    }
    names = {category["class_id"]: category["name"] for category in record["categories"]}
    assert {names[box["class_id"]] for box in record["annotations"]} == {"dog", "person"}
    empty = json.loads((tmp_path / "out" / "annotations" / "empty.json").read_text())
    assert empty["annotations"] == []


def test_class_ids_are_the_same_in_every_file_and_a_classes_file_fixes_their_order(datasets, tmp_path):
    convert("voc", "yolo", datasets["voc"], tmp_path / "first_seen")
    names = (tmp_path / "first_seen" / "classes.txt").read_text().split()
    assert sorted(names) == sorted(CLASSES)
    (tmp_path / "classes.txt").write_text("person\ndog\ncar\n")
    convert("voc", "yolo", datasets["voc"], tmp_path / "fixed", classes=tmp_path / "classes.txt")
    assert (tmp_path / "fixed" / "classes.txt").read_text().split() == ["person", "dog", "car"]
    lines = (tmp_path / "fixed" / "labels" / "street.txt").read_text().split("\n")
    assert sorted(line.split()[0] for line in lines if line) == ["0", "2", "2"]  # person 0, car 2 in every file
    assert (tmp_path / "fixed" / "labels" / "yard.txt").read_text().split()[0] == "1"


def test_csv_without_images_option_leaves_out_images_that_have_no_rows(datasets, tmp_path):
    dataset, skipped = load("csv", datasets["csv"] / "annotations.csv")
    assert "empty.jpg" not in {Path(path).name for path in dataset.image_paths}
    assert len(dataset) == 4 and skipped == []


# --- bad input -------------------------------------------------------------------------------------


def converted_names(report_target: Path) -> set[str]:
    return {path.name for path in (report_target / "images").iterdir()}


def test_a_malformed_xml_file_is_reported_and_the_rest_converted(datasets, tmp_path):
    (datasets["voc"] / "annotations" / "park.xml").write_text("<annotation><object><name>dog</name>")
    report = convert("voc", "sagemaker", datasets["voc"], tmp_path / "out")
    assert len(report.skipped) == 1 and report.skipped[0].startswith("park.xml: not valid XML")
    assert converted_names(tmp_path / "out") == set(TRUTH) - {"park.png"}


def test_a_malformed_json_file_is_reported_and_the_rest_converted(datasets, tmp_path):
    (datasets["sagemaker"] / "annotations" / "street.json").write_text('{"file": "street.jpg", ')
    (datasets["sagemaker"] / "annotations" / "yard.json").write_text('{"file": "yard.jpeg"}')
    report = convert("sagemaker", "coco", datasets["sagemaker"], tmp_path / "out")
    assert report.skipped[0].startswith("street.json: not valid JSON")
    assert report.skipped[1] == "yard.json: missing 'image_size'"
    assert converted_names(tmp_path / "out") == set(TRUTH) - {"street.jpg", "yard.jpeg"}


def test_a_malformed_csv_row_costs_its_image_only(datasets, tmp_path):
    path = datasets["csv"] / "annotations.csv"
    rows = path.read_text().splitlines()
    broken = next(index for index, row in enumerate(rows) if row.startswith("park.png"))
    rows[broken] = "park.png,80,60,dog,ten,20,30,50"
    rows.append("night.png,72,48,person")
    path.write_text("\n".join(rows) + "\n")
    report = convert("csv", "voc", path, tmp_path / "out", images=datasets["csv"] / "images")
    assert report.skipped == [
        f"annotations.csv:{broken + 1}: not a number in 80,60,ten,20,30,50 (image park.png skipped)",
        f"annotations.csv:{len(rows)}: 4 fields, expected 8 (image night.png skipped)",
    ]
    # the images folder does not bring a rejected image back as one without objects
    assert converted_names(tmp_path / "out") == {"street.jpg", "yard.jpeg", "empty.jpg"}


def edit_sagemaker(folder: Path, name: str, change) -> None:
    path = folder / "annotations" / name
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_box_outside_the_image_or_of_negative_size_is_reported(datasets, tmp_path):
    edit_sagemaker(datasets["sagemaker"], "street.json", lambda r: r["annotations"][0].update(left=90, width=30))
    edit_sagemaker(datasets["sagemaker"], "park.json", lambda r: r["annotations"][1].update(height=-5))
    report = convert("sagemaker", "yolo", datasets["sagemaker"], tmp_path / "out")
    assert report.skipped == [
        "park.json: box (40, 0, 52, -5) has a negative or zero size",
        "street.json: box (90, 10, 120, 30) is outside the 96x64 image",
    ]
    assert converted_names(tmp_path / "out") == {"yard.jpeg", "night.png", "empty.jpg"}
    assert report.summary() == "3 images, 2 boxes (car 0, person 1, dog 1); 2 skipped"


def test_a_class_not_in_the_classes_file_is_reported(datasets, tmp_path):
    (tmp_path / "classes.txt").write_text("car\nperson\n")
    report = convert("coco", "voc", datasets["coco"], tmp_path / "out", classes=tmp_path / "classes.txt")
    assert sorted(report.skipped) == [
        "annotations.json (park.png): class 'dog' is not in the classes file",
        "annotations.json (yard.jpeg): class 'dog' is not in the classes file",
    ]
    assert report.per_class == {"car": 2, "person": 2}


def test_an_annotation_whose_image_is_missing_is_reported(datasets, tmp_path):
    (datasets["yolo"] / "images" / "night.png").unlink()
    (datasets["sagemaker"] / "images" / "night.png").unlink()
    report = convert("yolo", "csv", datasets["yolo"], tmp_path / "from_yolo")
    assert report.skipped == ["night.txt: no image night.jpg/.jpeg/.png"]
    report = convert("sagemaker", "csv", datasets["sagemaker"], tmp_path / "from_sagemaker")
    assert report.skipped == ["night.json: image night.png not found"]
    assert report.images == 4


def test_a_non_empty_output_folder_is_only_written_into_with_force(datasets, tmp_path):
    target = tmp_path / "out"
    (target / "train").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(EdgewatchError, match="exists and is not empty") as error:
        convert("voc", "coco", datasets["voc"], target)
    assert "--force" in error.value.hint
    convert("voc", "coco", datasets["voc"], target, force=True)
    assert (target / "notes.txt").read_text() == "mine"  # force replaces only what the format writes
    assert converted_names(target) == set(TRUTH)


@pytest.mark.parametrize(
    ("format", "make"),
    [
        ("voc", lambda folder: (folder / "a.txt").write_text("1 0.5 0.5 0.1 0.1")),
        ("coco", lambda folder: (folder / "annotations.json").write_text('{"file": "a.jpg"}')),
        ("coco", lambda folder: (folder / "annotations.json").write_text("{")),
        ("csv", lambda folder: (folder / "labels.csv").write_text("image,label\na.jpg,car\n")),
        ("yolo", lambda folder: (folder / "a.xml").write_text("<annotation/>")),
        ("sagemaker", lambda folder: None),
    ],
)
def test_a_path_that_is_no_dataset_of_the_format_is_one_error_line(tmp_path, format, make):
    folder = tmp_path / "not_a_dataset"
    folder.mkdir()
    make(folder)
    with pytest.raises(EdgewatchError, match="is no ") as error:
        convert(format, "voc", folder, tmp_path / "out")
    assert "\n" not in str(error.value)
    with pytest.raises(EdgewatchError, match="no such dataset"):
        convert(format, "voc", tmp_path / "missing", tmp_path / "out")


# --- split ---------------------------------------------------------------------------------------


def many(count: int = 20) -> dict:
    """`count` small images: car in most, person in 6, dog in 2 (one alone, one with a car), 2 empty."""
    truth = {}
    for index in range(count):
        boxes = []
        if index < count - 4:
            boxes.append(("car", 2, 2, 12, 10))
        if index % 3 == 0:
            boxes.append(("person", 14, 4, 20, 18))
        if index in (5, count - 3):
            boxes.append(("dog", 3, 12, 15, 20))
        truth[f"img{index:02d}.{'png' if index % 2 else 'jpg'}"] = (24, 22, boxes)
    return truth


@pytest.fixture
def large(tmp_path) -> Path:
    save(make_dataset(tmp_path / "drawn_many", many()), "voc", tmp_path / "voc")
    return tmp_path / "voc"


def test_split_writes_the_sagemaker_channels_with_every_class_in_train_and_validation(large, tmp_path):
    report = split(large, tmp_path / "out", ratios=(0.8, 0.2), seed=1)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "train",
        "train_annotation",
        "validation",
        "validation_annotation",
    ]
    assert report.splits == {"train": 16, "validation": 4} and report.images == 20
    for part in ("train", "validation"):
        images = sorted(path.stem for path in (tmp_path / "out" / part).iterdir())
        assert images == sorted(path.stem for path in (tmp_path / "out" / f"{part}_annotation").iterdir())
        dataset, skipped = load("sagemaker", tmp_path / "out" / f"{part}_annotation", images=tmp_path / "out" / part)
        assert skipped == [] and set(dataset.classes) == {"car", "person", "dog"}, part
        assert all(report.per_class[name] > 0 for name in dataset.classes)
        in_part = {dataset.classes[c] for detections in dataset.annotations.values() for c in detections.class_id}
        assert in_part == {"car", "person", "dog"}, part
    assert len(list((large / "images").iterdir())) == 20  # copied, not moved


def test_split_with_a_test_share_and_other_layouts(large, tmp_path):
    report = split(large, tmp_path / "sm", ratios=(0.7, 0.15, 0.15), seed=3)
    assert sum(report.splits.values()) == 20 and report.splits["test"] >= 2
    assert (tmp_path / "sm" / "test_annotation").is_dir()
    report = split(large, tmp_path / "yolo", ratios=(0.8, 0.2), target_format="yolo")
    data = (tmp_path / "yolo" / "data.yaml").read_text()
    assert "train: train/images" in data and "val: validation/images" in data
    assert len(load("yolo", tmp_path / "yolo" / "validation")[0]) == report.splits["validation"]
    report = split(large, tmp_path / "coco", ratios=(0.8, 0.2), target_format="coco")
    coco = json.loads((tmp_path / "coco" / "train" / "annotations.json").read_text())
    assert len(coco["images"]) == report.splits["train"]


def test_the_same_seed_gives_the_same_split_and_another_seed_another(large):
    dataset, _ = load("voc", large)
    first = assign_splits(dataset, (0.8, 0.2), seed=7)
    assert assign_splits(dataset, (0.8, 0.2), seed=7) == first
    assert any(assign_splits(dataset, (0.8, 0.2), seed=seed) != first for seed in range(8, 12))


def test_bad_ratios_are_an_error(large, tmp_path):
    with pytest.raises(EdgewatchError, match="do not add up to 1"):
        split(large, tmp_path / "out", ratios=(0.8, 0.3))


def scored(dataset: sv.DetectionDataset) -> sv.DetectionDataset:
    """The dataset as a model's predictions: every box with a different score."""
    annotations = {}
    for k, (image, detections) in enumerate(dataset.annotations.items()):
        scores = np.round(0.31 + 0.1 * k + 0.05 * np.arange(len(detections)), 4).astype(np.float32)
        annotations[image] = sv.Detections(xyxy=detections.xyxy, class_id=detections.class_id, confidence=scores)
    return sv.DetectionDataset(classes=dataset.classes, images=list(annotations), annotations=annotations)


@pytest.mark.parametrize("format", [format for format in FORMATS if format != "voc"])
def test_predictions_keep_each_box_score_in_every_format_but_voc(tmp_path, format):
    predictions = scored(make_dataset(tmp_path / "drawn"))
    save(predictions, format, tmp_path / format)
    found, skipped = load(format, tmp_path / format, images=images_option(format, tmp_path / format))
    assert skipped == []
    assert_matches_truth(found)
    expected = {Path(image).name: d for image, d in predictions.annotations.items()}
    for image, detections in found.annotations.items():
        want = expected[Path(image).name]
        if len(want) == 0:
            continue
        order = [int(np.argmin(np.abs(want.xyxy - box).sum(axis=1))) for box in detections.xyxy]
        np.testing.assert_allclose(detections.confidence, want.confidence[order], atol=1e-4)


def test_labels_without_scores_read_back_without_scores(datasets):
    for format in FORMATS:
        found, _ = load(format, datasets[format], images=images_option(format, datasets[format]))
        assert all(detections.confidence is None for detections in found.annotations.values()), format


def test_write_annotations_replaces_only_that_format_beside_the_images(tmp_path):
    source = make_dataset(tmp_path / "drawn")
    folder = tmp_path / "sampled"
    save(source, "yolo", folder)
    in_place = load("yolo", folder)[0]
    write_annotations(in_place, "coco", folder)
    edited = sv.DetectionDataset(
        classes=in_place.classes,
        images=in_place.image_paths,
        annotations={image: detections[:1] for image, detections in in_place.annotations.items()},
    )
    write_annotations(edited, "yolo", folder)
    assert sum(len(d) for d in load("yolo", folder)[0].annotations.values()) == 4  # one box per labelled image
    assert_matches_truth(load("coco", folder)[0])  # the other format is left alone
    assert sorted(path.name for path in folder.iterdir()) == [
        "annotations.json", "classes.txt", "data.yaml", "images", "labels",
    ]  # fmt: skip


def test_write_annotations_refuses_images_that_are_not_in_the_folder(tmp_path):
    source = make_dataset(tmp_path / "drawn")
    (tmp_path / "other" / "images").mkdir(parents=True)
    with pytest.raises(EdgewatchError, match="not in"):
        write_annotations(source, "voc", tmp_path / "other")


def test_detect_format_names_each_layout(datasets, tmp_path):
    assert {format: detect_format(folder) for format, folder in datasets.items()} == {f: f for f in FORMATS}
    capture = tmp_path / "capture"
    (capture / "images").mkdir(parents=True)
    (capture / "coco.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert detect_format(capture) == "coco"
    with pytest.raises(EdgewatchError, match="no dataset"):
        detect_format(tmp_path / "drawn")


def test_the_chain_voc_csv_sagemaker_coco_yolo_voc_keeps_every_box_and_label(datasets, tmp_path):
    chain = ["voc", "csv", "sagemaker", "coco", "yolo", "voc"]
    here = datasets["voc"]
    for source, target in itertools.pairwise(chain):
        there = tmp_path / f"chain_{chain.index(source)}_{target}"
        report = convert(source, target, here, there, images=images_option(source, here))
        assert report.skipped == []
        here = there
    assert_matches_truth(load("voc", here)[0])  # within 1 px of the drawn boxes, every label


@pytest.mark.parametrize("format", ["yolo", "sagemaker"])
def test_a_capture_folder_of_one_per_image_format_reads_as_it_is(tmp_path, format):
    """The retraining capture's `yolo/` or `sagemaker/` beside `images/` (its `formats: [yolo]` or
    `[sagemaker]`), as the review page opens it."""
    capture = tmp_path / "capture"
    draw(capture / "images" / "door_00000010.jpg", 96, 64, [])
    xyxy, class_ids = np.array([[4.0, 10.0, 40.0, 30.0]]), [1]
    if format == "yolo":
        (capture / "yolo").mkdir()
        (capture / "yolo" / "door_00000010.txt").write_text(yolo_lines(96, 64, xyxy, class_ids, [0.42]))
        (capture / "yolo" / "classes.txt").write_text("closed\nopen\n")
    else:
        (capture / "sagemaker").mkdir()
        record = sagemaker_record("door_00000010.jpg", 96, 64, xyxy, class_ids, ["closed", "open"], [0.42])
        (capture / "sagemaker" / "door_00000010.json").write_text(json.dumps(record))
    assert detect_format(capture) == format
    found, skipped = load(format, capture)
    assert skipped == []
    (detections,) = found.annotations.values()
    assert found.classes[int(detections.class_id[0])] == "open"
    np.testing.assert_allclose(detections.xyxy, xyxy, atol=0.5)
    assert detections.confidence.tolist() == pytest.approx([0.42])
