"""`edgewatch train quantize` end to end: the street detector and the door classifier quantised on
synthetic frames keep their AP50 / accuracy, shrink, and run with `edgewatch run` as they are; a
corrupt image is named and skipped; bad inputs are one line and leave what was there untouched."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import pytest

from edgewatch.models import DOOR_CLASSIFIER, STREET_DETECTOR
from edgewatch.sources.door import STATES, DoorScene
from edgewatch.sources.synthetic import LABELS, StreetScene
from edgewatch.train.quantize import measure_side_by_side


@pytest.fixture(scope="module")
def street_frames(tmp_path_factory) -> Path:
    """A YOLO dataset of 16 unseen street frames, one from each of 16 scenes (Ultralytics' layout)."""
    dataset = tmp_path_factory.mktemp("street") / "frames"
    (dataset / "images").mkdir(parents=True)
    (dataset / "labels").mkdir()
    (dataset / "data.yaml").write_text("names: [person, car]\n")
    for k in range(16):
        scene = StreetScene(seed=100_000 + k, seconds=4, cars=4, people=4)
        image, truth = scene.render(scene.frame_count // 2)
        cv2.imwrite(str(dataset / "images" / f"street_{k:02d}.png"), image)
        rows = [
            f"{LABELS.index(item.label)} {(x1 + x2) / 1280} {(y1 + y2) / 720} {(x2 - x1) / 640} {(y2 - y1) / 360}\n"
            for item in truth
            if not item.hidden
            for x1, y1, x2, y2 in [item.box]
        ]
        (dataset / "labels" / f"street_{k:02d}.txt").write_text("".join(rows))
    return dataset


@pytest.fixture(scope="module")
def door_folders(tmp_path_factory) -> Path:
    """Door frames in a folder per state, five from each of eight scenes."""
    root = tmp_path_factory.mktemp("door") / "doors"
    for k in range(8):
        scene = DoorScene(seed=100_000 + k, seconds=20)
        for index in range(0, scene.frame_count, scene.frame_count // 5):
            image, state = scene.render(index)
            (root / state).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / state / f"door_{k}_{index:04d}.jpg"), image)
    assert {folder.name for folder in root.iterdir()} == set(STATES)
    return root


def before_after(summary: str, metric: str) -> tuple[float, float]:
    found = re.search(rf"{metric}:\s+([\d.]+)%? → ([\d.]+)%?", summary)
    assert found, summary
    return float(found[1]), float(found[2])


def test_the_street_detector_shrinks_keeps_its_ap_and_runs_as_it_is(run_cli, tmp_path, street_frames):
    done = run_cli(
        "train", "quantize", str(STREET_DETECTOR), "--calib", str(street_frames), "--out", "street.int8.onnx",
        "--frames", "12", "--quiet",
    )  # fmt: skip
    summary = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    out = tmp_path / "street.int8.onnx"
    assert out.stat().st_size < STREET_DETECTOR.stat().st_size / 2
    assert "calibrated on 12 frames" in summary and "latency:" in summary
    fp32, int8 = before_after(summary, "AP50")
    assert fp32 >= 0.8 and abs(int8 - fp32) <= 0.1, summary

    ran = run_cli("run", "--source", str(street_frames / "images"), "--model", "street.int8.onnx", "--json", "x.jsonl",
                  "--quiet")  # fmt: skip
    assert ran.returncode == 0, ran.stderr.decode()
    records = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    labels = {detection["label"] for record in records for detection in record["detections"]}
    assert len(records) == 16 and labels == {"person", "car"}  # class names from the model's own metadata


def test_the_door_classifier_keeps_its_accuracy(run_cli, tmp_path, door_folders):
    model = tmp_path / "door.onnx"
    shutil.copy(DOOR_CLASSIFIER, model)
    done = run_cli("train", "quantize", "door.onnx", "--calib", str(door_folders), "--quiet")
    summary = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "door.int8.onnx").stat().st_size < model.stat().st_size / 2  # MODEL.int8.onnx beside it
    fp32, int8 = before_after(summary, "accuracy")
    assert fp32 >= 90 and abs(int8 - fp32) <= 5, summary


def test_a_corrupt_image_among_good_ones_is_named_and_skipped(run_cli, tmp_path, door_folders):
    frames = tmp_path / "frames"  # cameras' folders, not classes: plain calibration frames, searched through
    for camera, state in (("cam1", "open"), ("cam2", "closed")):
        (frames / camera).mkdir(parents=True)
        for image in sorted((door_folders / state).iterdir())[:3]:
            shutil.copy(image, frames / camera / image.name)
    (frames / "cam2" / "broken.jpg").write_bytes(b"\xff\xd8 not a whole jpeg")
    done = run_cli("train", "quantize", str(DOOR_CLASSIFIER), "--calib", "frames", "--out", "door.int8.onnx", "--quiet")
    summary = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "calibrated on 6 frames" in summary and "not measured (the frames are unlabelled)" in summary, summary
    assert re.search(r"warning: +skipped 1 image: broken\.jpg", summary), summary
    assert (tmp_path / "door.int8.onnx").is_file()


@pytest.mark.parametrize(
    ("make", "args", "reason"),
    [
        (lambda folder: None, ["model.onnx", "--calib", "doors", "--out", "model.onnx"], "would overwrite the input"),
        (lambda folder: (folder / "link.onnx").symlink_to(folder / "model.onnx"),
         ["model.onnx", "--calib", "doors", "--out", "link.onnx"], "would overwrite the input"),
        (lambda folder: (folder / "model.txt").write_text("person\ncar\n"),
         ["model.txt", "--calib", "doors", "--out", "kept.onnx"], "model.txt is not an ONNX model"),
        (lambda folder: (folder / "empty").mkdir(), ["model.onnx", "--calib", "empty", "--out", "kept.onnx"],
         "no images in empty"),
    ],
    ids=["out-is-the-model", "out-links-to-the-model", "not-onnx", "empty-calib"],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_every_file_as_it_was(run_cli, tmp_path, door_folders, make, args, reason):
    shutil.copy(DOOR_CLASSIFIER, tmp_path / "model.onnx")
    (tmp_path / "doors").symlink_to(door_folders)
    (tmp_path / "kept.onnx").write_bytes(b"an INT8 model from before")
    make(tmp_path)
    done = run_cli("train", "quantize", *args, "--quiet")
    error = done.stderr.decode().strip()
    assert done.returncode == 2 and len(error.splitlines()) == 1 and reason in error, error
    assert (tmp_path / "model.onnx").read_bytes() == DOOR_CLASSIFIER.read_bytes()
    assert (tmp_path / "kept.onnx").read_bytes() == b"an INT8 model from before"
    assert not list(tmp_path.glob("*.part"))


def test_side_by_side_timing_gives_each_models_median_call():
    frame, _ = StreetScene(seed=100_000, seconds=1).render(0)
    fp32_ms, int8_ms = measure_side_by_side(STREET_DETECTOR, STREET_DETECTOR, [frame])
    assert 0 < fp32_ms < 1000 and 0 < int8_ms < 1000
