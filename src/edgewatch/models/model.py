"""Model files as detectors: pre-processing, the model call (a runtime) and decoding, as three steps.

The runtime (ONNX Runtime, OpenVINO) only runs tensors; everything around the call is shared."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import supervision as sv

from edgewatch.errors import EdgewatchError
from edgewatch.models.base import Detector
from edgewatch.models.decoders import (
    DECODERS,
    FORMATS,
    DecodeOptions,
    check_format,
    class_count,
    describe_outputs,
    fits,
    guess_format,
)
from edgewatch.models.geometry import InputGeometry
from edgewatch.models.labels import complete_labels, labels_from_metadata, names_from, read_labels
from edgewatch.models.preprocess import Preprocess

log = logging.getLogger(__name__)

DEFAULT_INPUT_SIZE = 640
#: frames one model call takes at most, when the model's batch axis is dynamic and frames are waiting
BATCH_SIZE = 8
#: per layout: letterbox, RGB and 0..1 scaling for YOLO; OpenVINO/DeepLens SSDs take BGR 0..255 stretched
PREPROCESS_DEFAULTS: dict[str, dict[str, Any]] = {
    "yolov8": {"letterbox": True, "rgb": True, "scale": 1 / 255},
    "yolov5": {"letterbox": True, "rgb": True, "scale": 1 / 255},
    "ssd": {"letterbox": False, "rgb": False, "scale": 1.0},
    "ssd_tf": {"letterbox": False, "rgb": True, "scale": 1.0},
    "classifier": {"letterbox": False, "rgb": True, "scale": 1 / 255},
}


class Runtime(Protocol):
    """What a model backend offers: one call from an input batch to the output arrays."""

    #: input shape, with a non-int for each dynamic axis
    input_shape: list[Any]
    #: float32, float16 or uint8
    input_dtype: str
    output_names: list[str]
    #: the model file's metadata (Ultralytics stores its class names there)
    metadata: dict[str, str]
    #: what runs it, for logs: an execution provider or an OpenVINO device
    device: str

    def run(self, batch: np.ndarray) -> list[np.ndarray]: ...


class ModelDetector(Detector):
    """A detector or classifier in a model file, run by a `Runtime`.

    Args:
        runtime: the backend that runs the file (see `load_detector("onnx" | "openvino", path=...)`).
        name: the model's name in logs and stats.
        format: output layout (`yolov8`, `yolov5`, `ssd`, `ssd_tf`, `classifier`); guessed from the
            output shapes when None.
        labels: a labels file, or the names (a list, or {id: name}); else the model's metadata `names`;
            else `class_N`.
        preprocess: overrides of `Preprocess` fields (input_size, letterbox, rgb, scale, mean, std).
        nms_iou, max_detections, softmax: see `DecodeOptions`.

    Example:
        >>> detector = load_detector("onnx", path="yolov8n.onnx", labels="coco.txt")  # doctest: +SKIP
        >>> detector.detect(frame).xyxy  # boxes in frame pixels  # doctest: +SKIP
    """

    default_min_score = 0.25
    default_threshold = 0.7  # Frigate's default: a track of weak boxes is not an object

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        format: str | None = None,
        labels: str | Path | dict[int, str] | list[str] | None = None,
        preprocess: dict[str, Any] | None = None,
        nms_iou: float = 0.45,
        max_detections: int = 300,
        softmax: bool | None = None,
    ) -> None:
        self._runtime = runtime
        self.name = name
        layout, size = _input_layout(runtime.input_shape, preprocess or {})
        probe = Preprocess(input_size=size, layout=layout, dtype=runtime.input_dtype)
        shapes = [output.shape for output in runtime.run(probe.tensor([np.zeros((size[1], size[0], 3), np.uint8)])[0])]
        output_names = runtime.output_names
        self.format = check_format(format) if format else guess_format(shapes)
        if format and not fits(format, shapes):
            fitting = [layout for layout in FORMATS if fits(layout, shapes)]
            raise EdgewatchError(
                f"{name}: outputs {describe_outputs(output_names, shapes)} do not fit the {format} layout",
                f"layouts that fit: {', '.join(fitting)}" if fitting else "no known layout fits these outputs",
            )
        if self.format is None:
            raise EdgewatchError(
                f"{name}: outputs {describe_outputs(output_names, shapes)} match no known layout",
                f"name one with format: ({', '.join(FORMATS)})",
            )
        overrides = {
            key: tuple(value) if isinstance(value, list) else value for key, value in (preprocess or {}).items()
        }
        self.preprocess = replace(probe, **{**PREPROCESS_DEFAULTS[self.format], **overrides, "input_size": size})
        self.options = DecodeOptions(nms_iou=nms_iou, max_detections=max_detections, softmax=softmax)
        if isinstance(labels, dict | list):
            named = names_from(labels)
        else:
            named = read_labels(labels) if labels else labels_from_metadata(runtime.metadata)
        classes = class_count(self.format, shapes)
        self.labels = complete_labels(named, classes, str(labels or name)) if classes else list(named or [])
        self._decode = DECODERS[self.format]
        self.max_batch = BATCH_SIZE if self._batch_dynamic else 1
        log.info("%s: %s, input %dx%d %s, on %s", name, self.format, *size, layout, runtime.device)

    def detect(self, image: np.ndarray) -> sv.Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """Detections for each image; one model call when the batch axis is dynamic."""
        if len(images) > 1 and not self._batch_dynamic:
            return [self.detect(image) for image in images]
        batch, geometries = self.prepare(images)
        return self.decode(self.infer(batch), geometries)

    # The three steps, apart so that `edgewatch bench models` can time each.

    def prepare(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[InputGeometry]]:
        """Pre-processing: the input tensor, and each image's geometry for mapping boxes back."""
        return self.preprocess.tensor(images)

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        """The model call."""
        return self._runtime.run(batch)

    def decode(self, outputs: list[np.ndarray], geometries: list[InputGeometry]) -> list[sv.Detections]:
        """Post-processing: outputs → detections in frame pixels, one per image."""
        return [
            self._decode([output[index] for output in outputs], geometry, self.labels, self.options)
            for index, geometry in enumerate(geometries)
        ]

    @property
    def _batch_dynamic(self) -> bool:
        return not isinstance(self._runtime.input_shape[0], int)


def _input_layout(shape: list[Any], overrides: dict[str, Any]) -> tuple[str, tuple[int, int]]:
    """NCHW or NHWC, and (width, height), from the model's input shape; dynamic sides take the override
    or 640."""
    if len(shape) != 4:
        raise EdgewatchError(
            f"model input has shape {shape}, not an image batch", "use a model that takes N×3×H×W or N×H×W×3"
        )
    layout = "NHWC" if shape[3] == 3 and shape[1] != 3 else "NCHW"
    height, width = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    wanted = overrides.get("input_size")
    if isinstance(height, int) and isinstance(width, int):
        return layout, (width, height)
    if wanted:
        return layout, tuple(wanted)
    return layout, (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
