"""`edgewatch data convert` and `split` through the command: exit codes a script can rely on."""

from __future__ import annotations

import json

import cv2

from edgewatch.sources.synthetic import LABELS, StreetScene


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
