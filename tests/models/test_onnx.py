"""Model files through the full `edgewatch run --model ... --json` path, with exact expected boxes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgewatch import EdgewatchError, load_detector
from onnx_graphs import classifier_model, constant_model, ssd_model, ssd_tf_model, yolov5_model, yolov8_model

# Frame boxes worked out by hand. YOLO letterboxes into 640×640 with one scale of 0.5 for both frame
# shapes: 1280×720 gets 140 px bars above and below, 720×1280 gets them left and right.
# A = (270, 295, 370, 345) and C = (300, 160, 340, 240) in input pixels.
YOLO_EXPECTED = {
    (1280, 720): [("person", 0.9, [540, 310, 740, 410]), ("car", 0.6, [600, 40, 680, 200])],
    (720, 1280): [("person", 0.9, [260, 590, 460, 690]), ("car", 0.6, [320, 320, 400, 480])],
}


def frame_file(tmp_path: Path, width: int, height: int) -> Path:
    path = tmp_path / f"frame-{width}x{height}.png"
    cv2.imwrite(str(path), np.full((height, width, 3), 80, np.uint8))
    return path


def run_model(run_cli, tmp_path: Path, frame: Path, model: Path, *extra: str) -> dict:
    done = run_cli("run", "--source", str(frame), "--model", str(model), "--json", "out.jsonl", "--quiet", *extra)
    assert done.returncode == 0, done.stderr.decode()
    (line,) = [json.loads(text) for text in (tmp_path / "out.jsonl").read_text().splitlines()]
    return line


def found(line: dict) -> list[tuple[str, float, list[float]]]:
    return [
        (box["label"], pytest.approx(box["score"], abs=1e-4), pytest.approx(box["box"], abs=1e-3))
        for box in line["detections"]
    ]


@pytest.mark.parametrize("size", sorted(YOLO_EXPECTED))
@pytest.mark.parametrize("build", [yolov8_model, yolov5_model], ids=["yolov8", "yolov5"])
def test_yolo_boxes_land_on_the_right_frame_pixels(run_cli, tmp_path: Path, size, build):
    labels = tmp_path / "labels.txt"
    labels.write_text("person\ncar\n")
    line = run_model(
        run_cli, tmp_path, frame_file(tmp_path, *size), build(tmp_path / "m.onnx"), "--labels", str(labels)
    )
    assert found(line) == YOLO_EXPECTED[size]
    assert [box["class_id"] for box in line["detections"]] == [0, 1]


def test_yolo_labels_come_from_the_model_metadata(run_cli, tmp_path: Path):
    model = yolov8_model(tmp_path / "m.onnx", metadata={"names": "{0: 'person', 1: 'car'}"})
    line = run_model(run_cli, tmp_path, frame_file(tmp_path, 1280, 720), model)
    assert [box["label"] for box in line["detections"]] == ["person", "car"]


def test_min_score_throws_out_low_confidence_boxes(run_cli, tmp_path: Path):
    line = run_model(
        run_cli, tmp_path, frame_file(tmp_path, 1280, 720), yolov8_model(tmp_path / "m.onnx"), "--min-score", "0.7"
    )
    assert [box["score"] for box in line["detections"]] == [pytest.approx(0.9)]


def test_a_model_that_records_its_own_min_score_drops_what_scores_below_it(run_cli, tmp_path: Path):
    model = yolov8_model(tmp_path / "m.onnx", metadata={"min_score": "0.75"})
    frame = frame_file(tmp_path, 1280, 720)
    assert [box["score"] for box in run_model(run_cli, tmp_path, frame, model)["detections"]] == [pytest.approx(0.9)]
    # the user's --min-score still wins
    line = run_model(run_cli, tmp_path, frame, model, "--min-score", "0.5")
    assert [box["score"] for box in line["detections"]] == [pytest.approx(0.9), pytest.approx(0.6)]


@pytest.mark.parametrize("recorded", ["1.5", "-0.1", "high", "nan", ""])
def test_a_recorded_min_score_that_is_no_score_is_ignored_with_a_warning(tmp_path: Path, caplog, recorded):
    detector = load_detector("onnx", path=yolov8_model(tmp_path / "m.onnx", metadata={"min_score": recorded}))
    assert detector.recorded_min_score is None and detector.default_min_score == 0.25
    assert any("min_score" in record.getMessage() and "ignored" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("build", [ssd_model, ssd_tf_model], ids=["ssd-detection-output", "ssd-tensorflow"])
@pytest.mark.parametrize("size", [(1280, 720), (720, 1280)])
def test_ssd_boxes_are_fractions_of_the_stretched_frame(run_cli, tmp_path: Path, build, size):
    width, height = size
    line = run_model(run_cli, tmp_path, frame_file(tmp_path, *size), build(tmp_path / "m.onnx"), "--min-score", "0.2")
    boxes = [box["box"] for box in line["detections"]]
    assert boxes == [
        pytest.approx([0.25 * width, 0.5 * height, 0.5 * width, 1.0 * height], abs=1e-3),
        pytest.approx([0.1 * width, 0.1 * height, 0.2 * width, 0.2 * height], abs=1e-3),
    ]
    assert len(line["detections"]) == 2  # the row after image_id -1 is padding


def test_classifier_adds_a_classification_and_no_boxes(run_cli, tmp_path: Path):
    labels = tmp_path / "door.txt"
    labels.write_text("open\nclosed\n")
    line = run_model(
        run_cli,
        tmp_path,
        frame_file(tmp_path, 640, 480),
        classifier_model(tmp_path / "c.onnx"),
        "--labels",
        str(labels),
    )
    assert line["detections"] == []
    assert line["classification"] == {"label": "open", "score": pytest.approx(0.9526, abs=1e-4)}


def test_short_labels_file_warns_and_names_the_rest_class_n(run_cli, tmp_path: Path):
    labels = tmp_path / "one.txt"
    labels.write_text("person\n")
    frame = frame_file(tmp_path, 1280, 720)
    done = run_cli(
        "run",
        "--source",
        str(frame),
        "--model",
        str(yolov8_model(tmp_path / "m.onnx")),
        "--labels",
        str(labels),
        "--json",
        "o.jsonl",
    )
    assert done.returncode == 0
    assert "names 1 classes but the model has 2" in done.stderr.decode()
    line = json.loads((tmp_path / "o.jsonl").read_text())
    assert [box["label"] for box in line["detections"]] == ["person", "class_1"]


def test_format_override_is_used(tmp_path: Path):
    detector = load_detector(
        "onnx", path=str(classifier_model(tmp_path / "c.onnx", logits=(0.1, 0.2, 0.7))), format="classifier"
    )
    result = detector.detect(np.zeros((50, 60, 3), np.uint8))
    assert result.metadata["classification"]["label"] == "class_2"
    assert result.metadata["classification"]["score"] == pytest.approx(0.7)  # already probabilities


def test_config_file_detectors_take_a_model(run_cli, tmp_path: Path):
    model = yolov8_model(tmp_path / "m.onnx")
    frame = frame_file(tmp_path, 720, 1280)
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  lobby:\n    source: {frame}\n    detector: yolo\n"
        f"detectors:\n  yolo: {{type: onnx, path: {model}, format: yolov8, nms_iou: 0.5}}\n"
    )
    done = run_cli("run", "site.yaml", "--json", "out.jsonl")
    assert done.returncode == 0, done.stderr.decode()
    line = json.loads((tmp_path / "out.jsonl").read_text())
    assert [box["box"] for box in line["detections"]] == [pytest.approx(b[2]) for b in YOLO_EXPECTED[(720, 1280)]]


def one_line(done) -> str:
    assert done.returncode == 2, done.stderr.decode()
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    return message


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda t: t / "nope.onnx", "no such model file"),
        (lambda t: _write(t / "junk.onnx", b"not a model at all"), "is not a model ONNX Runtime can load"),
        (
            lambda t: constant_model(t / "odd.onnx", {"a": np.zeros((1, 2, 3, 4, 5)), "b": np.zeros((1, 9))}),
            "outputs a [1, 2, 3, 4, 5], b [1, 9] match no known layout",
        ),
    ],
    ids=["missing", "not-a-model", "unknown-layout"],
)
def test_bad_models_are_one_line_errors(run_cli, tmp_path: Path, make, expected):
    message = one_line(run_cli("run", "--source", str(frame_file(tmp_path, 64, 48)), "--model", str(make(tmp_path))))
    assert expected in message
    if "layout" in expected:
        assert "yolov8, yolov5, ssd, ssd_tf, classifier" in message


def test_unknown_format_and_conflicting_flags(run_cli, tmp_path: Path):
    frame = str(frame_file(tmp_path, 64, 48))
    model = str(yolov8_model(tmp_path / "m.onnx"))
    assert "unknown model format 'yolov9000'" in one_line(
        run_cli("run", "--source", frame, "--model", model, "--format", "yolov9000")
    )
    assert "--detector or --model" in one_line(run_cli("run", "--source", frame, "--model", model, "--detector", "hog"))
    assert "add --model FILE" in one_line(run_cli("run", "--source", frame, "--labels", "x.txt"))


def test_labels_file_problems(tmp_path: Path):
    model = str(yolov8_model(tmp_path / "m.onnx"))
    with pytest.raises(EdgewatchError, match="no such labels file"):
        load_detector("onnx", path=model, labels=str(tmp_path / "none.txt"))
    bad = _write(tmp_path / "bad.yaml", b"names: [a, b\n")
    with pytest.raises(EdgewatchError, match="cannot parse labels file"):
        load_detector("onnx", path=model, labels=str(bad))
    names = _write(tmp_path / "data.yaml", b"names: {0: person, 1: car}\n")
    assert load_detector("onnx", path=model, labels=str(names)).labels == ["person", "car"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def openvino_ir(tmp_path: Path) -> Path:
    """The yolov8 test graph converted to OpenVINO IR (.xml + .bin), as `ovc` would."""
    import openvino

    xml = tmp_path / "ir" / "m.xml"
    openvino.save_model(openvino.convert_model(str(yolov8_model(tmp_path / "m.onnx"))), str(xml))
    return xml


@pytest.mark.parametrize("size", sorted(YOLO_EXPECTED))
def test_openvino_ir_gives_the_same_boxes(run_cli, tmp_path: Path, openvino_ir: Path, size):
    labels = tmp_path / "labels.txt"
    labels.write_text("person\ncar\n")
    line = run_model(run_cli, tmp_path, frame_file(tmp_path, *size), openvino_ir, "--labels", str(labels))
    assert found(line) == YOLO_EXPECTED[size]


def test_openvino_runs_onnx_files_on_a_named_device(tmp_path: Path):
    detector = load_detector("openvino", path=str(yolov8_model(tmp_path / "m.onnx")), device="CPU")
    assert detector.detect(np.zeros((720, 1280, 3), np.uint8)).xyxy.tolist() == [
        b[2] for b in YOLO_EXPECTED[(1280, 720)]
    ]


def test_absent_openvino_device_is_a_clear_error(run_cli, tmp_path: Path, openvino_ir: Path):
    done = run_cli("run", "--source", str(frame_file(tmp_path, 64, 48)), "--model", str(openvino_ir), "--device", "NPU")
    message = one_line(done)
    assert "OpenVINO device NPU is not present on this machine" in message and "AUTO, CPU" in message


class CountingRuntime:
    """Wraps a real runtime and counts model calls and their batch sizes."""

    def __init__(self, runtime) -> None:
        self._runtime = runtime
        self.batches: list[int] = []
        for name in ("input_shape", "input_dtype", "output_names", "metadata", "device"):
            setattr(self, name, getattr(runtime, name))

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        self.batches.append(len(batch))
        return self._runtime.run(batch)


def test_a_dynamic_batch_model_takes_waiting_frames_in_one_call(tmp_path: Path, make_video):
    from edgewatch import FrameSelection, Pipeline, open_source
    from edgewatch.models.model import ModelDetector
    from edgewatch.models.onnx import OnnxRuntime

    runtime = CountingRuntime(OnnxRuntime(yolov8_model(tmp_path / "m.onnx", dynamic_batch=True)))
    detector = ModelDetector(runtime, "m.onnx")
    assert detector.max_batch > 1
    mixed = detector.detect_batch([np.zeros((720, 1280, 3), np.uint8), np.zeros((1280, 720, 3), np.uint8)])
    assert [found.xyxy.tolist() for found in mixed] == [
        [b[2] for b in YOLO_EXPECTED[s]] for s in [(1280, 720), (720, 1280)]
    ]
    assert runtime.batches[-1] == 2
    runtime.batches.clear()
    indices = []
    with open_source(make_video("batch.mp4", frames=40)) as source:
        Pipeline(source, detector, selection=FrameSelection(), on_result=lambda r: indices.append(r.frame.index)).run()
    assert indices == list(range(40))
    assert sum(runtime.batches) == 40
    assert max(runtime.batches) > 1  # decoding runs ahead of the model, so frames wait and get batched


def test_a_fixed_batch_model_gets_frames_one_by_one(tmp_path: Path):
    runtime_model = load_detector("onnx", path=str(yolov8_model(tmp_path / "m.onnx")))
    assert runtime_model.max_batch == 1
    results = runtime_model.detect_batch([np.zeros((720, 1280, 3), np.uint8)] * 3)
    assert [len(found) for found in results] == [2, 2, 2]


def test_bench_models_measures_every_runtime_and_builtin(run_cli, tmp_path: Path):
    model = yolov8_model(tmp_path / "m.onnx", dynamic_batch=True)
    done = run_cli("bench", "models", "--model", str(model), "--detector", "motion", "--frames", "3", "--runs", "1",
                   "--size", "320x180", "--json", "bench.json", "--csv", "bench.csv")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert [(row["name"], row["runtime"]) for row in rows] == [
        ("motion", "builtin"),
        ("m.onnx", "onnx"),
        ("m.onnx", "openvino"),
    ]
    for row in rows:
        assert 0 < row["p50_ms"] <= row["p95_ms"] and row["fps_batch1"] > 0
    model_rows = [row for row in rows if row["runtime"] != "builtin"]
    assert all(row["pre_ms"] > 0 and row["model_ms"] > 0 and row["post_ms"] > 0 for row in model_rows)
    assert all(
        row["overhead"] == pytest.approx((row["pre_ms"] + row["post_ms"]) / row["model_ms"]) for row in model_rows
    )
    assert "overhead" in done.stdout.decode().splitlines()[1]
    assert len((tmp_path / "bench.csv").read_text().splitlines()) == 4


GRAPHS = {"yolov8": yolov8_model, "yolov5": yolov5_model, "ssd": ssd_model, "ssd_tf": ssd_tf_model,
          "classifier": classifier_model}  # fmt: skip


@pytest.mark.parametrize("forced", list(GRAPHS))
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_a_layout_forced_on_any_graph_runs_or_is_refused_in_one_line(tmp_path: Path, graph: str, forced: str):
    model = str(GRAPHS[graph](tmp_path / f"{graph}.onnx"))
    try:
        detector = load_detector("onnx", path=model, format=forced)
    except EdgewatchError as error:
        assert graph != forced
        assert "do not fit the " + forced in str(error) and "[" in str(error)  # names the output shapes
        assert "layouts that fit: " in str(error) and graph in str(error).split("layouts that fit: ")[1]
        return
    detector.detect(np.full((48, 64, 3), 90, np.uint8))  # whatever it reads, it does not fail


def test_a_classifier_forced_into_a_detection_layout_is_exit_2_naming_what_fits(run_cli, tmp_path: Path):
    # it used to end with "internal error: ValueError: zero-size array to reduction operation maximum"
    model = str(classifier_model(tmp_path / "c.onnx"))
    message = one_line(run_cli("run", "--source", str(frame_file(tmp_path, 64, 48)), "--model", model,
                               "--format", "yolov8"))  # fmt: skip
    assert (
        "[1, 2]" in message and "do not fit the yolov8 layout" in message and "layouts that fit: classifier" in message
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("map.yaml", "1: person\n3: car\n"),
        ("map.json", '{"1": "person", "3": "car"}'),
        ("names.yaml", "names: {1: person, 3: car}\n"),
        ("label_map.pbtxt", "item {\n  name: '/m/01g317'\n  id: 1\n  display_name: 'person'\n}\n"
                            'item { id: 3 name: "car" }\n'),
    ],
    ids=["yaml", "json", "ultralytics", "tf-label-map"],
)  # fmt: skip
def test_an_id_to_name_mapping_names_classes_by_id(tmp_path: Path, name: str, text: str):
    # TensorFlow's label maps count from 1; a list squashed from them named class 1 'car' or 'class_1'
    labels = _write(tmp_path / name, text.encode())
    model = str(ssd_tf_model(tmp_path / "m.onnx"))  # TensorFlow's layout, whose outputs do not count the classes
    detector = load_detector("onnx", path=model, labels=labels)
    assert detector.labels[1] == "person" and detector.labels[3] == "car"
    assert detector.labels[0] == "class_0" and detector.labels[2] == "class_2"


def test_names_given_in_the_config_map_by_id(run_cli, tmp_path: Path):
    model = ssd_tf_model(tmp_path / "m.onnx")
    frame = frame_file(tmp_path, 1280, 720)
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  a: {{source: {frame}, detector: ssd, min_score: 0.2}}\n"
        f"detectors:\n  ssd: {{type: onnx, path: {model}, labels: {{1: person, 3: car}}}}\n"
    )
    done = run_cli("run", "site.yaml", "--json", "out.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    line = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert [(box["class_id"], box["label"]) for box in line["detections"]] == [(1, "person"), (2, "class_2")]
