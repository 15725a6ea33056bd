"""Detectors: the built-in OpenCV ones now; model-file backends plug in behind the same interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgewatch.errors import EdgewatchError
from edgewatch.models.base import Detector, make_detections
from edgewatch.models.builtin import HAAR_CASCADES, HaarDetector, HogPeopleDetector, MotionDetector

BUILTIN_DETECTORS = ("hog", *HAAR_CASCADES, "motion", "street", "door")
MODEL_BACKENDS = ("onnx", "openvino")
#: the project's own person / car detector, trained on synthetic street scenes (tools/build_street_model.py)
STREET_DETECTOR = Path(__file__).resolve().parent.parent / "assets" / "street-detector.onnx"
#: the project's own open / closed door classifier, trained on synthetic door scenes (tools/build_door_model.py)
DOOR_CLASSIFIER = Path(__file__).resolve().parent.parent / "assets" / "door-classifier.onnx"

__all__ = [
    "BUILTIN_DETECTORS",
    "DOOR_CLASSIFIER",
    "MODEL_BACKENDS",
    "STREET_DETECTOR",
    "Detector",
    "load_detector",
    "load_model",
    "make_detections",
]


def load_detector(name: str, **options: Any) -> Detector:
    """A new detector instance (detectors keep state, such as a background model: one per camera).

    Args:
        name: a built-in detector: `hog`, `haar:face`, `haar:catface`, `haar:fullbody`, `haar:plate`,
            `motion`, `street` (the project's person / car model for synthetic street scenes), or `door`
            (its open / closed classifier for synthetic door scenes); or a model runtime, `onnx` or
            `openvino`, with `path=` and the options of `ModelDetector` (format, labels, preprocess,
            nms_iou, max_detections, softmax; `device` for openvino).
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
            return _load_model(name, **options)
    except TypeError as error:
        raise EdgewatchError(f"bad option for detector {name}: {error}", "see docs/detectors.md") from None
    raise EdgewatchError(
        f"unknown detector '{name}'",
        f"use one of {', '.join(BUILTIN_DETECTORS)}, or a name defined under detectors: in the config",
    )


def load_model(spec: str | Path) -> Detector:
    """A built-in detector by name (`street`, `door`, `hog`, ...) or a model file (`.onnx`; `.xml`
    runs on OpenVINO), as `--detector` / `--model` name them.

    Raises:
        EdgewatchError: neither a built-in nor an existing file.

    Example:
        >>> load_model("door").labels
        ['closed', 'open']
    """
    spec = str(spec)
    if spec in BUILTIN_DETECTORS:
        return load_detector(spec)
    if not Path(spec).is_file():
        raise EdgewatchError(f"no such model: {spec}", f"give an .onnx file or one of {', '.join(BUILTIN_DETECTORS)}")
    return load_detector("openvino" if spec.lower().endswith(".xml") else "onnx", path=spec)


def _load_model(runtime: str, path: str, device: str | None = None, **options: Any) -> Detector:
    from edgewatch.models.model import ModelDetector

    if runtime == "openvino":
        from edgewatch.models.openvino import OpenVinoRuntime

        backend = OpenVinoRuntime(path, device or "AUTO")
    else:
        if device is not None:
            raise EdgewatchError("device: is an OpenVINO option", "use type: openvino, or drop device:")
        from edgewatch.models.onnx import OnnxRuntime

        backend = OnnxRuntime(path)
    return ModelDetector(backend, Path(path).name, **options)
