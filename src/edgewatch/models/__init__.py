"""Detectors: the built-in OpenCV ones now; model-file backends plug in behind the same interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgewatch.errors import EdgewatchError
from edgewatch.models.base import Detector, make_detections
from edgewatch.models.builtin import HAAR_CASCADES, HaarDetector, HogPeopleDetector, MotionDetector
from edgewatch.models.runtimes import SAVED_MODEL, model_kind, runtime_for
from edgewatch.offload.address import is_remote

BUILTIN_DETECTORS = ("hog", *HAAR_CASCADES, "motion", "street", "door")
MODEL_BACKENDS = ("onnx", "openvino")
#: the detector type whose model runs on an `edgewatch serve` server (docs/offload.md)
REMOTE = "remote"
#: the project's own person / car detector, trained on synthetic street scenes (tools/build_street_model.py)
STREET_DETECTOR = Path(__file__).resolve().parent.parent / "assets" / "street-detector.onnx"
#: the project's own open / closed door classifier, trained on synthetic door scenes (tools/build_door_model.py)
DOOR_CLASSIFIER = Path(__file__).resolve().parent.parent / "assets" / "door-classifier.onnx"

__all__ = [
    "BUILTIN_DETECTORS",
    "DOOR_CLASSIFIER",
    "MODEL_BACKENDS",
    "REMOTE",
    "STREET_DETECTOR",
    "Detector",
    "check_model_file",
    "load_detector",
    "load_model",
    "make_detections",
    "model_kind",
    "runtime_for",
]


def load_detector(name: str, frame_size: tuple[int, int] | None = None, **options: Any) -> Detector:
    """A new detector instance (detectors keep state, such as a background model: one per camera).

    Args:
        name: a built-in detector: `hog`, `haar:face`, `haar:catface`, `haar:fullbody`, `haar:plate`,
            `motion`, `street` (the project's person / car model for synthetic street scenes), or `door`
            (its open / closed classifier for synthetic door scenes); or a model runtime, `onnx` or
            `openvino` (`runtime_for(path, device)` says which a file needs), with `path=`, `device=`
            (models/runtimes.py: `cpu`, `cuda`, `openvino:GPU`, `AUTO`, ...) and the options of
            `ModelDetector` (format, labels, preprocess, nms_iou, max_detections, softmax); or an
            `edgewatch serve` server: `remote://HOST:PORT`, `ws://...`, or `remote` with `url=` and the
            options of `RemoteDetector` (fallback, timeout, quality, token).
        frame_size: (width, height) of the frames it will see: a model file with a dynamic input size
            and no size of its own is fed that (see `ModelDetector`); other detectors ignore it.
        **options: the detector's own settings, e.g. `min_area` for `motion`.

    Raises:
        EdgewatchError: for an unknown name or option.

    Example:
        >>> detector = load_detector("motion", min_area=400)
        >>> detector.labels
        ['motion']
    """
    try:
        if name == "hog":
            return HogPeopleDetector(**options)
        if name in HAAR_CASCADES:
            return HaarDetector(name, **options)
        if name == "motion":
            return MotionDetector(**options)
        if name == "street":
            return _load_model("onnx", path=str(STREET_DETECTOR), **options)
        if name == "door":
            return _load_model("onnx", path=str(DOOR_CLASSIFIER), **options)
        if name in MODEL_BACKENDS:
            return _load_model(name, frame_size=frame_size, **options)
        if name == REMOTE or is_remote(name):
            return _load_remote(name, **options)
    except TypeError as error:
        raise EdgewatchError(f"bad option for detector {name}: {error}", "see docs/detectors.md") from None
    raise EdgewatchError(
        f"unknown detector '{name}'",
        f"use one of {', '.join(BUILTIN_DETECTORS)}, remote://HOST:PORT (an edgewatch serve server), or a name "
        "defined under detectors: in the config",
    )


def load_model(spec: str | Path, device: str | None = None) -> Detector:
    """A built-in detector by name (`street`, `door`, `hog`, ...) or a model file, on the runtime
    `runtime_for` names (`.onnx` on ONNX Runtime; `.xml`, `.pb`, `.tflite`, `.pdmodel` and SavedModel
    folders on OpenVINO), as `--detector` / `--model` name them.

    Raises:
        EdgewatchError: neither a built-in nor an existing model.

    Example:
        >>> load_model("door").labels
        ['closed', 'open']
    """
    spec = str(spec)
    if spec in BUILTIN_DETECTORS or is_remote(spec):
        return load_detector(spec)
    check_model_file(spec)
    return load_detector(runtime_for(spec, device), path=spec, device=device)


def check_model_file(path: str | Path) -> None:
    """Raises EdgewatchError unless `path` is a model file or a SavedModel folder (said before any
    slow start, such as binding a port and loading the model)."""
    if not (Path(path).is_file() or model_kind(str(path)) == SAVED_MODEL):
        raise EdgewatchError(
            f"no such model: {path}",
            f"give a model file (.onnx, .xml, .pb, .tflite, .pdmodel), a SavedModel folder, or one of "
            f"{', '.join(BUILTIN_DETECTORS)}",
        )


def _load_model(
    runtime: str, path: str, device: str | None = None, frame_size: tuple[int, int] | None = None, **options: Any
) -> Detector:
    from edgewatch.models.model import ModelDetector

    if runtime == "openvino":
        from edgewatch.models.openvino import OpenVinoRuntime

        backend = OpenVinoRuntime(path, device)
    else:
        from edgewatch.models.onnx import OnnxRuntime

        backend = OnnxRuntime(path, device)
    return ModelDetector(backend, Path(path).name, frame_size=frame_size, **options)


def _load_remote(name: str, url: str | None = None, fallback: Detector | None = None, **options: Any) -> Detector:
    from edgewatch.offload.remote import RemoteDetector

    if name == REMOTE and url is None:
        raise EdgewatchError("a remote detector needs url: (its server's address)", "e.g. url: ws://10.0.0.5:8765")
    try:
        return RemoteDetector(url if name == REMOTE else name, fallback=fallback, **options)
    except BaseException:
        if fallback is not None:
            fallback.close()
        raise
