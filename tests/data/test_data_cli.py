"""`edgewatch data convert` and `split` through the command: exit codes a script can rely on, and
the annotations a user's tools get wrong (reversed corners, images named outside the dataset) skipped
and named rather than taken in."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

from edgewatch.data.datasets import save
from edgewatch.sources.synthetic import LABELS, StreetScene
from labelled import plain_dataset


def yolo_dataset(folder, frames=range(0, 400, 40)):
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text("names: [person, car]\n")
    scene = StreetScene(seed=7, seconds=20)
    for index in frames:
        image, truth = scene.render(index)
        cv2.imwrite(str(folder / "images" / f"f{index:04d}.png"), image)
        rows = [
            f"{LABELS.index(t.label)} {(t.box[0] + t.box[2]) / 1280} {(t.box[1] + t.box[3]) / 720} "
            f"{(t.box[2] - t.box[0]) / 640} {(t.box[3] - t.box[1]) / 360}\n"
            for t in truth
        ]
        (folder / "labels" / f"f{index:04d}.txt").write_text("".join(rows))


def test_convert_and_split_write_their_layouts_and_exit_0(run_cli, tmp_path):
    yolo_dataset(tmp_path / "yolo")
    done = run_cli("data", "convert", "--from", "yolo", "--to", "sagemaker", "yolo", "sm")
    assert done.returncode == 0, done.stderr.decode()
    records = sorted((tmp_path / "sm" / "annotations").glob("*.json"))
    assert len(records) == 10 and "10 images" in done.stdout.decode()
    record = json.loads(records[0].read_text())
    assert record["image_size"] == [{"width": 640, "height": 360, "depth": 3}]
    done = run_cli("data", "split", "sm", "parts", "--from", "sagemaker", "--to", "sagemaker", "--ratios", "0.8,0.2")
    assert done.returncode == 0, done.stderr.decode()
    train = list((tmp_path / "parts" / "train_annotation").glob("*.json"))
    validation = list((tmp_path / "parts" / "validation_annotation").glob("*.json"))
    assert len(train) + len(validation) == 10 and len(validation) >= 1
    again = run_cli("data", "convert", "--from", "yolo", "--to", "sagemaker", "yolo", "sm")
    assert again.returncode == 2 and "--force" in again.stderr.decode()


def test_a_broken_label_is_skipped_named_and_exit_1(run_cli, tmp_path):
    yolo_dataset(tmp_path / "yolo", frames=range(0, 120, 40))
    label = sorted((tmp_path / "yolo" / "labels").glob("*.txt"))[0]
    label.write_text("0 not numbers at all\n")
    done = run_cli("data", "convert", "--from", "yolo", "--to", "coco", "yolo", "coco")
    assert done.returncode == 1
    assert label.name in done.stderr.decode() and "2 images" in done.stdout.decode()
    missing = run_cli("data", "convert", "--from", "voc", "--to", "coco", "nowhere", "out")
    assert missing.returncode == 2 and len(missing.stderr.decode().strip().splitlines()) == 1
    wrong = run_cli("data", "convert", "--from", "voc", "--to", "coco", "yolo", "out")  # a YOLO folder, named VOC
    assert wrong.returncode == 2 and "no Pascal VOC dataset" in wrong.stderr.decode()
    assert len(wrong.stderr.decode().strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def labelled(folder: Path, format: str) -> None:
    """`a.jpg` and `b.jpg` (160x120), one car each, saved in `format` under `folder`."""
    boxes = {"a.jpg": [("car", 10, 20, 60, 70)], "b.jpg": [("car", 5, 5, 40, 50)]}
    drawn = plain_dataset(folder.parent / "drawn", boxes, ["car"], (160, 120))
    save(drawn, format, folder)


def edit_json(path: Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def reverse_a(folder: Path, format: str) -> str:
    """Write a.jpg's box with its corners the wrong way round, as each format can; the file changed."""
    if format == "voc":
        path = folder / "annotations" / "a.xml"
        text = path.read_text()
        xmin, xmax = re.search(r"<xmin>(.*)</xmin>", text)[1], re.search(r"<xmax>(.*)</xmax>", text)[1]
        path.write_text(text.replace(f"<xmin>{xmin}<", f"<xmin>{xmax}<").replace(f"<xmax>{xmax}<", f"<xmax>{xmin}<"))
    elif format == "csv":
        path = folder / "annotations.csv"
        path.write_text(
            path.read_text().replace("a.jpg,160,120,car,10.0,20.0,60.0,70.0", "a.jpg,160,120,car,60,20,10,70")
        )
    elif format == "sagemaker":
        path = folder / "annotations" / "a.json"
        edit_json(path, lambda record: record["annotations"][0].update(left=60, width=-50))
    elif format == "coco":
        path = folder / "annotations.json"
        edit_json(path, lambda data: data["annotations"][0].update(bbox=[60, 20, -50, 50]))
    else:
        path = folder / "labels" / "a.txt"
        class_id, cx, cy, w, h = path.read_text().split()
        path.write_text(f"{class_id} {cx} {cy} -{w} {h}\n")
    return path.name


@pytest.mark.parametrize("format", ["voc", "csv", "sagemaker", "coco", "yolo"])
def test_a_box_with_its_corners_reversed_is_skipped_and_named_in_every_format(run_cli, tmp_path, format):
    labelled(tmp_path / "in", format)
    changed = reverse_a(tmp_path / "in", format)
    done = run_cli("data", "convert", "--from", format, "--to", "coco", "in", "out")
    assert done.returncode == 1, done.stderr.decode()
    (line,) = [line for line in done.stderr.decode().splitlines() if line.startswith("skipped: ")]
    assert changed in line and ("negative" in line or "size" in line), line
    assert sorted(path.name for path in (tmp_path / "out" / "images").iterdir()) == ["b.jpg"]  # not swapped in


def name_images_elsewhere(folder: Path, format: str, names: dict[str, str]) -> None:
    """Make the annotation of each image of `names` name the path given for it instead."""
    if format == "voc":
        for image, name in names.items():
            path = folder / "annotations" / f"{Path(image).stem}.xml"
            path.write_text(path.read_text().replace(f"<filename>{image}</filename>", f"<filename>{name}</filename>"))
    elif format == "csv":
        path = folder / "annotations.csv"
        text = path.read_text()
        for image, name in names.items():
            text = text.replace(f"\n{image},", f"\n{name},")
        path.write_text(text)
    elif format == "sagemaker":
        for image, name in names.items():
            edit_json(folder / "annotations" / f"{Path(image).stem}.json", lambda record, n=name: record.update(file=n))
    else:

        def rename(data: Any) -> None:
            for entry in data["images"]:
                entry["file_name"] = names.get(entry["file_name"], entry["file_name"])

        edit_json(folder / "annotations.json", rename)


@pytest.mark.parametrize("format", ["coco", "csv", "sagemaker", "voc"])
def test_an_image_named_outside_the_dataset_is_not_read_into_the_output(run_cli, tmp_path, format):
    labelled(tmp_path / "in", format)
    for secret in ("secret.jpg", "other.jpg"):  # pictures of the same size, outside the dataset
        shutil.copy(tmp_path / "drawn" / "a.jpg", tmp_path / secret)
    elsewhere = {"a.jpg": "../secret.jpg" if format == "coco" else "../../secret.jpg",
                 "b.jpg": str(tmp_path / "other.jpg")}  # fmt: skip
    name_images_elsewhere(tmp_path / "in", format, elsewhere)
    done = run_cli("data", "convert", "--from", format, "--to", "yolo", "in", "out")
    assert done.returncode == 1, done.stderr.decode()
    skipped = [line for line in done.stderr.decode().splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2 and all("outside the dataset" in line for line in skipped), skipped
    assert all(any(name in line for line in skipped) for name in elsewhere.values()), skipped
    assert list((tmp_path / "out" / "images").iterdir()) == []  # neither picture was copied in


def test_convert_with_force_into_a_voc_folder_leaves_its_xml_files(run_cli, tmp_path):
    labelled(tmp_path / "out", "voc")  # VOC and SageMaker both keep their files in annotations/
    voc = {path.name: path.read_bytes() for path in (tmp_path / "out" / "annotations").iterdir()}
    labelled(tmp_path / "in", "yolo")
    done = run_cli("data", "convert", "--from", "yolo", "--to", "sagemaker", "in", "out", "--force")
    assert done.returncode == 0, done.stderr.decode()
    annotations = tmp_path / "out" / "annotations"
    assert {name: (annotations / name).read_bytes() for name in voc} == voc
    assert sorted(path.name for path in annotations.glob("*.json")) == ["a.json", "b.json"]
