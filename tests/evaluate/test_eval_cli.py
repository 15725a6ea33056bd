"""`edgewatch eval` end to end: the trained street model scored against the scene's own labels, from
its `edgewatch run --json` lines, from a model run by eval itself, and from predictions saved as a
dataset; the door classifier scored against a folder per class; and the bad inputs, each one line that
names the file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from edgewatch.data.datasets import load, save
from edgewatch.sources.door import DoorScene
from edgewatch.sources.synthetic import LABELS, StreetScene
from edgewatch.sources.synthetic_dataset import write_dataset
from labelled import plain_dataset


@pytest.fixture(scope="module")
def street_truth(tmp_path_factory) -> tuple[Path, int]:
    """A YOLO validation split of unseen street frames (Ultralytics' layout: data.yaml above it), and
    how many boxes it holds."""
    dataset = tmp_path_factory.mktemp("street") / "valid"
    (dataset / "images").mkdir(parents=True)
    (dataset / "labels").mkdir()
    (dataset.parent / "data.yaml").write_text("names: [person, car]\n")
    scene = StreetScene(seed=100_010, seconds=30, cars=10, people=12)
    boxes = 0
    for index in range(0, scene.frame_count, 50):
        image, truth = scene.render(index)
        name = f"street_{index:04d}"
        cv2.imwrite(str(dataset / "images" / f"{name}.png"), image)
        rows = []
        for item in truth:
            if item.hidden:
                continue
            x1, y1, x2, y2 = item.box
            rows.append(
                f"{LABELS.index(item.label)} {(x1 + x2) / 1280} {(y1 + y2) / 720} {(x2 - x1) / 640} {(y2 - y1) / 360}"
            )
        boxes += len(rows)
        (dataset / "labels" / f"{name}.txt").write_text("".join(row + "\n" for row in rows))
    return dataset, boxes


def test_eval_scores_a_run_against_yolo_labels(run_cli, tmp_path, street_truth):
    dataset, boxes = street_truth
    ran = run_cli("run", "--source", str(dataset / "images"), "--detector", "street", "--json", "pred.jsonl", "--quiet")
    assert ran.returncode == 0, ran.stderr.decode()
    done = run_cli("eval", "--truth", str(dataset), "--pred", "pred.jsonl", "--from", "yolo", "--results", "v1.json",
                   "--pr-curve", "pr.png")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    table = done.stdout.decode()
    assert "| all" in table and "expected" in table
    result = json.loads((tmp_path / "v1.json").read_text())
    assert result["overall"]["expected"] == boxes
    assert result["overall"]["ap50"] >= 0.9  # the model's own held-out figure is 0.965
    assert set(result["per_class"]) == {"person", "car"}
    assert cv2.imread(str(tmp_path / "pr.png")) is not None
    compared = run_cli("eval", "--compare", "v1.json", "v1.json")
    assert compared.returncode == 0 and compared.stdout.decode().count("v1") == 2


def test_eval_runs_the_model_itself_on_truth_in_any_format(run_cli, tmp_path, street_truth):
    dataset, boxes = street_truth
    done = run_cli("eval", "--truth", str(dataset), "--model", "street", "--results", "yolo.json")
    assert done.returncode == 0, done.stderr.decode()
    from_yolo = json.loads((tmp_path / "yolo.json").read_text())["overall"]
    assert from_yolo["expected"] == boxes and from_yolo["ap50"] >= 0.9
    converted = run_cli("data", "convert", "--from", "yolo", "--to", "sagemaker", str(dataset), "truth-sm")
    assert converted.returncode == 0, converted.stderr.decode()
    done = run_cli("eval", "--truth", "truth-sm", "--model", "street", "--results", "sagemaker.json")  # format guessed
    assert done.returncode == 0, done.stderr.decode()
    from_sagemaker = json.loads((tmp_path / "sagemaker.json").read_text())["overall"]
    assert from_sagemaker["expected"] == boxes
    assert from_sagemaker["ap50"] == pytest.approx(from_yolo["ap50"], abs=0.01)  # SageMaker rounds to 0.1 px


def shifted(dataset: sv.DetectionDataset, by: float) -> sv.DetectionDataset:
    """The labels as a model that is right but for `by` pixels, sure of every box at 0.9."""
    annotations = {
        image: sv.Detections(xyxy=d.xyxy + by, class_id=d.class_id, confidence=np.full(len(d), 0.9, np.float32))
        for image, d in dataset.annotations.items()
    }
    return sv.DetectionDataset(classes=dataset.classes, images=list(annotations), annotations=annotations)


@pytest.mark.parametrize("format", ["coco", "csv", "yolo"])
def test_predictions_saved_as_a_dataset_with_scores_are_scored(run_cli, tmp_path, street_truth, format):
    dataset, boxes = street_truth
    truth, _ = load("yolo", dataset)
    save(shifted(truth, 0.0), format, tmp_path / "pred")
    done = run_cli("eval", "--truth", str(dataset), "--pred", "pred", "--results", "result.json")
    assert done.returncode == 0, done.stderr.decode()
    overall = json.loads((tmp_path / "result.json").read_text())["overall"]
    assert (overall["true"], overall["false"], overall["missed"]) == (boxes, 0, 0)
    assert overall["mean_confidence_true"] == pytest.approx(0.9)  # the scores were read, not taken as 1
    assert overall["map"] > 0.99


def test_an_ultralytics_labels_folder_without_images_reads_against_the_truth_images(run_cli, tmp_path, street_truth):
    dataset, boxes = street_truth
    truth, _ = load("yolo", dataset)
    save(shifted(truth, 0.0), "yolo", tmp_path / "predict")
    shutil.rmtree(tmp_path / "predict" / "images")  # `save_txt` writes labels/ alone
    done = run_cli("eval", "--truth", str(dataset), "--pred", "predict", "--results", "result.json")
    assert done.returncode == 0, done.stderr.decode()
    overall = json.loads((tmp_path / "result.json").read_text())["overall"]
    assert (overall["true"], overall["ap50"]) == (boxes, 1.0)


@pytest.fixture(scope="module")
def door_truth(tmp_path_factory) -> Path:
    """Unseen door frames in a folder per state (ImageFolder's layout), 3 s apart."""
    root = tmp_path_factory.mktemp("door") / "truth"
    scene = DoorScene(seed=100_020, seconds=150)
    for index in range(0, scene.frame_count, 75):
        image, state = scene.render(index)
        (root / state).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / state / f"door_{index:05d}.jpg"), image)
    return root


def test_a_classifier_is_scored_with_accuracy_and_a_confusion_matrix(run_cli, tmp_path, door_truth):
    done = run_cli("eval", "--truth", str(door_truth), "--model", "door", "--results", "door.json")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads((tmp_path / "door.json").read_text())
    assert result["images"] == 50
    assert result["accuracy"] >= 0.95  # the model's held-out figure is 0.996
    assert set(result["per_class"]) == {"closed", "open"}
    assert all(row["support"] > 0 for row in result["per_class"].values())
    assert np.array(result["confusion_matrix"]).sum() == 50
    assert "truth \\ predicted" in done.stdout.decode() and "accuracy" in done.stdout.decode()


def test_a_classifier_run_is_scored_from_its_json_lines(run_cli, tmp_path, door_truth):
    for state in ("closed", "open"):
        ran = run_cli("run", "--source", str(door_truth / state), "--detector", "door", "--json", f"{state}.jsonl")
        assert ran.returncode == 0, ran.stderr.decode()
    lines = [(tmp_path / f"{state}.jsonl").read_text() for state in ("closed", "open")]
    (tmp_path / "pred.jsonl").write_text("".join(lines))
    done = run_cli("eval", "--truth", str(door_truth), "--pred", "pred.jsonl", "--results", "door.json")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads((tmp_path / "door.json").read_text())["accuracy"] >= 0.95


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--truth", "missing", "--model", "street"], "no such truth dataset"),
        (["--truth", "TRUTH", "--model", "nosuch.onnx"], "no such model"),
        (["--truth", "TRUTH", "--model", "street", "--pred", "p.jsonl"], "--pred or --model"),
        (["--truth", "TRUTH", "--pred", "missing.jsonl"], "no such"),
        (["--truth", "TRUTH", "--pred", "empty-folder"], "no dataset"),
    ],
)
def test_bad_eval_input_is_one_line_and_exit_2(run_cli, tmp_path, street_truth, args, message):
    (tmp_path / "empty-folder").mkdir()
    args = [str(street_truth[0]) if arg == "TRUTH" else arg for arg in args]
    done = run_cli("eval", *args)
    assert done.returncode == 2
    error = done.stderr.decode().strip()
    assert message in error and "Traceback" not in error and len(error.splitlines()) == 1


GOOD = b'{"file": "a.jpg", "detections": [{"label": "car", "score": 0.9, "box": [10, 20, 60, 70]}]}\n'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"file": "b.jpg", "detections": [{"label": "car", "score": 0.9, "box": [10, 20]}]}', "4 numbers"),
        (b'{"file": "b.jpg", "detections": [{"label": "car", "score": "high", "box": [10, 20, 60, 70]}]}', "score"),
        (b'{"file": "b.jpg", "detections": [{"label": "car", "score": NaN, "box": [10, 20, 60, 70]}]}', "score"),
        (b'{"file": "b.jpg", "detections": [{"label": "car", "score": 0.5, "box": [10, NaN, 60, 70]}]}', "4 numbers"),
        (b'{"file": "b.jpg", "detections": [{"label": "car", "score": 0.5, "box": [60, 20, 10, 70]}]}', "reversed"),
        (b'{"file": "b.jpg", "detections": {"label": "car"}}', "detections"),
        (b'{"file": "b\xff.jpg", "detections": []}', "UTF-8"),
    ],
    ids=["two-number-box", "string-score", "nan-score", "nan-corner", "reversed-box", "no-list", "not-utf-8"],
)
def test_a_bad_prediction_line_is_one_line_naming_it_and_exit_2(run_cli, tmp_path, line, reason):
    truth = plain_dataset(tmp_path / "drawn", {"a.jpg": [("car", 10, 20, 60, 70)], "b.jpg": []}, ["car"], (160, 120))
    save(truth, "yolo", tmp_path / "truth")
    (tmp_path / "pred.jsonl").write_bytes(GOOD + line + b"\n")
    done = run_cli("eval", "--truth", "truth", "--pred", "pred.jsonl", "--results", "result.json")
    error = done.stderr.decode(errors="replace").strip()
    assert done.returncode == 2, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "pred.jsonl line 2" in error and reason in error, error
    assert not (tmp_path / "result.json").exists()  # no figures from predictions that could not be read


@pytest.mark.parametrize(
    ("results", "reason"),
    [
        (b'[{"image_id": 1, "category_id": 1, "bbox": [10, 20, 50, 50], "score": NaN}]', "result 1"),
        (b'[{"image_id": 1, "category_id": 1, "bbox": [10, 20], "score": 0.9}]', "result 1"),
        (b'[{"image_id": 1, "category_id": 1, "bbox": [10, 20, 50, 50], "score": "\xff"}]', "UTF-8"),
    ],
    ids=["nan-score", "two-number-bbox", "not-utf-8"],
)
def test_bad_coco_results_are_one_line_and_exit_2(run_cli, tmp_path, results, reason):
    truth = plain_dataset(tmp_path / "drawn", {"a.jpg": [("car", 10, 20, 60, 70)]}, ["car"], (160, 120))
    save(truth, "coco", tmp_path / "truth")
    (tmp_path / "results.json").write_bytes(results)
    done = run_cli("eval", "--truth", "truth/annotations.json", "--pred", "results.json")
    error = done.stderr.decode(errors="replace").strip()
    assert done.returncode == 2 and len(error.splitlines()) == 1 and reason in error, error


@pytest.mark.parametrize("where", ["read-only", "a-folder"])
def test_a_results_file_that_cannot_be_written_is_said_before_the_model_runs(run_cli, tmp_path, street_truth, where):
    # it used to be an internal error after the whole run
    from disks import make_read_only, tmpfs

    with tmpfs(tmp_path / "disk", 64) as disk:
        target = disk / "results.json"
        if where == "a-folder":
            target.mkdir()
        else:
            make_read_only(disk)
        done = run_cli("eval", "--truth", str(street_truth[0]), "--model", "street", "--results", str(target))
    error = done.stderr.decode().strip()
    assert done.returncode == 2 and len(error.splitlines()) == 1 and "Traceback" not in error, error
    assert "--results" in error and ("cannot write" in error or "is a folder" in error)
    assert done.stdout == b""  # nothing was scored: the table would have been printed


def test_a_coco_dataset_with_its_images_in_images_is_read_as_truth(run_cli, tmp_path):
    write_dataset("street", tmp_path / "coco", seed=100_020, scenes=1, frames=6, format="coco")  # images/ + JSON
    done = run_cli("eval", "--truth", "coco", "--model", "street", "--results", "r.json", "--quiet")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["images"] == 6 and result["overall"]["expected"] > 0
