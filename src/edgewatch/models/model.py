"""Model files as detectors: pre-processing, the model call (a runtime) and decoding, as three steps.

The runtime (ONNX Runtime, OpenVINO) only runs tensors; everything around the call is shared."""

from __future__ import annotations

import ast
import logging
import math
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

#: a dynamic-input model fed the frame's size gets at most this longest side, in multiples of the stride
MAX_INPUT_SIDE = 1280
INPUT_STRIDE = 32
#: what a model sized by its first frame is probed at before that frame comes
PROBE_SIZE = (640, 640)
#: the metadata key of the score threshold a model records for itself (`edgewatch train` writes it)
MIN_SCORE_KEY = "min_score"
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
    #: (width, height) the graph itself resizes a dynamic input to, when the runtime can tell
    own_input_size: tuple[int, int] | None

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
        frame_size: (width, height) of the camera's frames, for a model whose input size is dynamic and
            that says no size of its own (see `input_size_for`); else the first frame decides.

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
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        self._runtime = runtime
        self.name = name
        layout = _input_layout(runtime.input_shape)
        size, reason = input_size_for(runtime, layout, (preprocess or {}).get("input_size"), frame_size)
        # the layout does not depend on the input size, so a model that waits for its first frame is
        # probed at the size models are most often exported at
        self._sized_by_first_frame = size is None
        size = size or PROBE_SIZE
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
        self.recorded_min_score = recorded_min_score(runtime.metadata, name)
        if self.recorded_min_score is not None:
            # a score calibrated for this model decides both which boxes count and which tracks do
            self.default_min_score = self.default_threshold = self.recorded_min_score
        self._decode = DECODERS[self.format]
        self.max_batch = BATCH_SIZE if self._batch_dynamic else 1
        if self._sized_by_first_frame:
            log.info("%s: %s, input %s sized from the first frame, on %s", name, self.format, layout, runtime.device)
        else:
            log.info("%s: %s, input %dx%d %s (%s), on %s", name, self.format, *size, layout, reason, runtime.device)

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
        if self._sized_by_first_frame:
            self._sized_by_first_frame = False
            height, width = images[0].shape[:2]
            size, reason = input_size_for(self._runtime, self.preprocess.layout, None, (width, height))
            self.preprocess = replace(self.preprocess, input_size=size)
            log.info("%s: input %dx%d %s (%s)", self.name, *size, self.preprocess.layout, reason)
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


def recorded_min_score(metadata: dict[str, str], name: str) -> float | None:
    """The model's own score threshold, metadata key `min_score` (a number in 0..1), or None; a value
    that is not one is ignored with a warning, as a model without it.

    Example:
        >>> recorded_min_score({"min_score": "0.42"}, "m.onnx"), recorded_min_score({}, "m.onnx")
        (0.42, None)
    """
    raw = metadata.get(MIN_SCORE_KEY)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        log.warning("%s: metadata %s=%r is no score in 0..1; ignored", name, MIN_SCORE_KEY, raw)
        return None
    return value


def _input_layout(shape: list[Any]) -> str:
    """NCHW or NHWC, from the model's input shape."""
    if len(shape) != 4:
        raise EdgewatchError(
            f"model input has shape {shape}, not an image batch", "use a model that takes N×3×H×W or N×H×W×3"
        )
    return "NHWC" if shape[3] == 3 and shape[1] != 3 else "NCHW"


def input_size_for(
    runtime: Runtime, layout: str, wanted: Any, frame_size: tuple[int, int] | None
) -> tuple[tuple[int, int] | None, str]:
    """The (width, height) a model is fed, and why (for the startup line); None while the rule needs a
    frame it has not seen.

    A model's own fixed size wins; a dynamic one takes, in this order: `input_size:` from the config,
    the size in the model's metadata (Ultralytics' `imgsz`), the size its own graph resizes pictures to
    (TensorFlow's exports), else the frame's size rounded up to multiples of 32 with the longest side
    at most 1280 (docs/models.md)."""
    shape = runtime.input_shape
    height, width = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    if isinstance(height, int) and isinstance(width, int):
        return (width, height), "fixed by the model"
    if wanted:
        return (int(wanted[0]), int(wanted[1])), "input_size: in the config"
    from_metadata = _imgsz(runtime.metadata.get("imgsz"))
    if from_metadata:
        return from_metadata, "the model's imgsz metadata"
    own = getattr(runtime, "own_input_size", None)
    if own:
        return tuple(own), "the size the model resizes to itself"
    if frame_size is None:
        return None, "the first frame's size"
    scale = min(1.0, MAX_INPUT_SIDE / max(frame_size))
    size = tuple(max(INPUT_STRIDE, math.ceil(side * scale / INPUT_STRIDE) * INPUT_STRIDE) for side in frame_size)
    capped = f", longest side at most {MAX_INPUT_SIDE}" if scale < 1 else ""
    return size, f"the frame's {frame_size[0]}x{frame_size[1]} to multiples of {INPUT_STRIDE}{capped}"


def _imgsz(raw: str | None) -> tuple[int, int] | None:
    """Ultralytics' `imgsz`, "[640, 640]" (height, width) or "640", as (width, height)."""
    if not raw:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    sides = [value, value] if isinstance(value, int) else list(value) if isinstance(value, list | tuple) else []
    if len(sides) != 2 or not all(isinstance(side, int) and side > 0 for side in sides):
        return None
    return sides[1], sides[0]
