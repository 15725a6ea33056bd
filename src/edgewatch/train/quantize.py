"""`edgewatch train quantize`: an FP32 ONNX model → a static INT8 one, calibrated on the user's own
frames, and measured side by side with the original.

How, and why:

* Static quantisation with ONNX Runtime (`quantize_static`), after its `quant_pre_process` (ONNX's
  shape inference, which tells the quantiser each tensor's type: one it cannot tell stays float; and
  ONNX Runtime's basic graph optimisations, such as folded constants). Static means activation ranges
  are measured once, on calibration frames, so the model call does no range-finding of its own at run
  time (dynamic quantisation does, and gains little on convolutions).
* The calibration frames go through the model's own pre-processing: `load_model(path).prepare([image])`
  is what `edgewatch run` feeds the model, so the ranges are those of the tensors it will see.
* QDQ format (QuantizeLinear / DequantizeLinear pairs around float operators): ONNX Runtime's CPU
  provider fuses each pair into its integer kernels, and any runtime that knows no INT8 still runs the
  file. Weights are QInt8 per output channel (one scale per filter keeps small filters from being
  rounded to zero by a large neighbour).
* Activations are QUInt8: on x86 ONNX Runtime's integer kernels multiply unsigned by signed bytes
  (u8s8, what AVX2's VPMADDUBSW and AVX-512 VNNI's VPDPBUSD take); signed activations take a slower
  path. On this project's AVX-512 VNNI box the street detector ran at 0.6× FP32's time with QUInt8 and
  at 2× with QInt8. `reduce_range` stays off: it trades a bit of precision for room against int16
  saturation on CPUs without VNNI, and the AP / accuracy printed before and after shows what it costs.
* A detector's decode tail stays float: the nodes after its last weighted operator (Conv, Gemm,
  MatMul) turn raw outputs into boxes in input pixels next to scores in 0..1, concatenated into one
  output, and one INT8 scale cannot hold both (the street detector's AP50 fell from 0.92 to 0 with
  it quantised, and kept 0.92 without). So the outputs stay float and in the layout `run` decodes.
* The INT8 file keeps the FP32 model's metadata (class `names`, `imgsz`, ...), so
  `edgewatch run --model MODEL.int8.onnx` needs no other flag.
* FP32 and INT8 are timed in one process, alternating frame by frame, so load on the machine falls on
  both alike; AP50 (a detector on a labelled dataset) or accuracy (a classifier on a folder per class)
  is measured on the same calibration frames, so it shows what rounding cost, not how well either
  model generalises.

Example:
    >>> report = quantize(Path("street-detector.onnx"), Path("frames/"), frames=50)  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import supervision as sv
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgewatch import evaluate as ev
from edgewatch.data.datasets import IMAGE_SUFFIXES, detect_format
from edgewatch.errors import EdgewatchError
from edgewatch.models import load_model
from edgewatch.models.model import ModelDetector
from edgewatch.sinks.files import StagedFile, refuse_outputs_over_inputs
from edgewatch.train.latency import in_turns

log = logging.getLogger(__name__)

#: operators whose weights are the model's cost; what follows the last of them (a decode) stays float
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: operators of a model quantised already: quantising again would only round twice
QUANTISED_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}
)
#: timed calls of each model at least; fewer frames are timed again in turn
MIN_TIMED_CALLS = 20
#: skipped images named in the summary at most
NAMED_SKIPS = 5
DATA_HINT = "give a folder of .jpg / .png images, a dataset (yolo, coco, voc, csv, sagemaker) or a folder per class"


@dataclass(frozen=True)
class QuantizeReport:
    """What `quantize` wrote and what it measured.

    Attributes:
        model: the FP32 model.
        out: the INT8 model written.
        frames: calibration frames used (readable images, at most `--frames`).
        fp32_bytes, int8_bytes: the two files' sizes.
        fp32_ms, int8_ms: median time of one model call on a calibration frame, on the CPU.
        metric: `AP50` (a detector on a labelled dataset), `accuracy` (a classifier on a folder per
            class), or None (unlabelled frames).
        before, after: the metric of the FP32 and of the INT8 model on the calibration frames.
        skipped: `file: reason` of each image left out.

    Example:
        >>> report = QuantizeReport(Path("m.onnx"), Path("m.int8.onnx"), 16, 4_000_000, 1_000_000, 8.0, 4.0)
        >>> report.size_ratio, report.latency_ratio
        (0.25, 0.5)
    """

    model: Path
    out: Path
    frames: int
    fp32_bytes: int
    int8_bytes: int
    fp32_ms: float
    int8_ms: float
    metric: str | None = None
    before: float | None = None
    after: float | None = None
    skipped: tuple[str, ...] = ()

    @property
    def size_ratio(self) -> float:
        """INT8 file size / FP32 file size."""
        return self.int8_bytes / self.fp32_bytes if self.fp32_bytes else float("nan")

    @property
    def latency_ratio(self) -> float:
        """INT8 time / FP32 time of one model call: below 1 is faster."""
        return self.int8_ms / self.fp32_ms if self.fp32_ms else float("nan")

    @property
    def change(self) -> float | None:
        """after - before, when both were measured."""
        return None if self.before is None or self.after is None else self.after - self.before

    def summary(self) -> str:
        """A few lines for the terminal: the file, sizes, latency, the metric before → after, skips."""
        lines = [
            f"edgewatch train quantize: {self.out} (INT8, calibrated on {self.frames} frames)",
            f"  size:     {_megabytes(self.fp32_bytes)} → {_megabytes(self.int8_bytes)} ({self.size_ratio:.2f}×)",
            f"  latency:  {self.fp32_ms:.2f} → {self.int8_ms:.2f} ms a frame ({self.latency_ratio:.2f}×; "
            f"model call on the CPU, median)",
        ]
        if self.metric == "accuracy" and self.before is not None and self.after is not None:
            lines.append(
                f"  accuracy: {self.before:.1%} → {self.after:.1%} ({_signed(100 * (self.after - self.before), 1)} points)"
            )
        elif self.metric is not None:
            lines.append(
                f"  {self.metric}:     {_score(self.before)} → {_score(self.after)}"
                + (f" ({_signed(self.change, 3)})" if self.change is not None else "")
            )
        else:
            lines.append("  quality:  not measured (the frames are unlabelled)")
        if self.skipped:
            named = ", ".join(self.skipped[:NAMED_SKIPS])
            more = f", and {len(self.skipped) - NAMED_SKIPS} more" if len(self.skipped) > NAMED_SKIPS else ""
            count = len(self.skipped)
            lines.append(f"  warning:  skipped {count} image{'s' if count > 1 else ''}: {named}{more}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report's numbers by name, paths as strings."""
        return {
            "model": str(self.model),
            "out": str(self.out),
            "frames": self.frames,
            "fp32_bytes": self.fp32_bytes,
            "int8_bytes": self.int8_bytes,
            "size_ratio": round(self.size_ratio, 4),
            "fp32_ms": round(self.fp32_ms, 3),
            "int8_ms": round(self.int8_ms, 3),
            "latency_ratio": round(self.latency_ratio, 4),
            "metric": self.metric,
            "before": _rounded(self.before),
            "after": _rounded(self.after),
            "change": _rounded(self.change),
            "skipped": list(self.skipped),
        }


def quantize(model: str | Path, calib: str | Path, out: str | Path | None = None, frames: int = 100) -> QuantizeReport:
    """Quantise an FP32 ONNX model to static INT8, calibrated on `calib`, and measure both.

    Args:
        model: the FP32 `.onnx` model.
        calib: calibration frames: a folder of images (searched recursively), a detection dataset in
            any format `edgewatch data` reads (AP50 before and after), or a folder per class (a
            classifier's accuracy before and after, when the folders are named after its classes).
        out: the INT8 model to write; `MODEL.int8.onnx` beside the model when None. It is written
            whole or not at all: a failed run leaves what was there as it was.
        frames: calibration frames to use at most, spread evenly over the images.

    Returns:
        The report: sizes, latency, the metric before and after, skipped images.

    Raises:
        EdgewatchError: `out` is the model or the data, the model is not an FP32 ONNX model, or no
            calibration image can be read.
    """
    model, calib = Path(model), Path(calib)
    out = Path(out) if out is not None else model.with_name(f"{model.stem}.int8.onnx")
    refuse_outputs_over_inputs([("--out", out)], [model, calib])
    if out.is_dir():
        raise EdgewatchError(f"--out {out} is a folder", "name the .onnx file to write")
    fp32 = _read_onnx(model)
    if not calib.exists():
        raise EdgewatchError(f"no such calibration data: {calib}", DATA_HINT)
    detector = _model_detector(model)
    data = _calibration_data(calib, frames, detector)
    log.info("quantising %s on %d calibration frames", model.name, len(data.images))
    tensors = [detector.prepare([image])[0] for image in data.images]
    with tempfile.TemporaryDirectory(prefix="edgewatch-quantize-") as work:
        int8 = _quantized(model, fp32, tensors, Path(work), out.name)
        int8_detector = _model_detector(int8)
        fp32_ms, int8_ms = _side_by_side(detector, int8_detector, tensors)
        metric, before, after = _scores(data, detector, int8_detector)
        staged = StagedFile(out, "--out")
        try:
            staged.write(int8.read_bytes())
            staged.commit()
        finally:
            staged.discard()  # a no-op once committed
    return QuantizeReport(
        model=model,
        out=out,
        frames=len(data.images),
        fp32_bytes=model.stat().st_size,
        int8_bytes=out.stat().st_size,
        fp32_ms=fp32_ms,
        int8_ms=int8_ms,
        metric=metric,
        before=before,
        after=after,
        skipped=tuple(data.skipped),
    )


def measure_side_by_side(fp32: Path, int8: Path, images: list[np.ndarray], device: str = "cpu") -> tuple[float, float]:
    """Median milliseconds of one model call (`detector.infer`) of each model on `images`, timed in one
    process, the two taking turns frame by frame (after a warm-up of each), so machine load falls on
    both alike. Both models must take the same input: the first one's pre-processing feeds both.

    Example:
        >>> measure_side_by_side(Path("m.onnx"), Path("m.int8.onnx"), [frame])  # doctest: +SKIP
        (8.1, 4.2)
    """
    if not images:
        raise EdgewatchError("no images to time the models on", "give at least one image")
    first, second = _model_detector(Path(fp32), device), _model_detector(Path(int8), device)
    return _side_by_side(first, second, [first.prepare([image])[0] for image in images])


# --- the calibration frames ------------------------------------------------------------------------


@dataclass
class _Calibration:
    """The chosen frames, decoded, with what labels them (if anything) and what was left out."""

    paths: list[Path]
    images: list[np.ndarray]
    skipped: list[str]
    classes: list[str] | None = None
    boxes: dict[str, sv.Detections] | None = None  # a detection dataset's truth, by file name
    labels: dict[str, str] | None = None  # a folder per class: file name -> class


def _calibration_data(calib: Path, frames: int, detector: ModelDetector) -> _Calibration:
    """At most `frames` images of `calib`, evenly spread, the unreadable ones left out and named."""
    classes: list[str] | None = None
    boxes: dict[str, sv.Detections] | None = None
    labels: dict[str, str] | None = None
    classifier = detector.format == "classifier"
    if classifier and ev.is_class_folders(calib) and _folder_names(calib) <= set(detector.labels):
        classes, labels, by_name = ev.load_class_folders(calib)
        paths = list(by_name.values())
    elif _is_dataset(calib):
        dataset = ev.load_truth_dataset(calib)
        paths = [Path(image) for image in dataset.image_paths]
        if not classifier:
            classes, boxes = list(dataset.classes), ev.by_file_name(dataset)
    elif calib.is_dir():
        paths = sorted(path for path in calib.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    else:
        raise EdgewatchError(f"{calib} is neither a folder of images nor a dataset", DATA_HINT)
    if not paths:
        raise EdgewatchError(f"no images in {calib}", DATA_HINT)
    chosen, images, skipped = [], [], []
    for path in _spread(paths, frames):
        image = cv2.imread(str(path)) if path.is_file() else None
        if image is None:
            skipped.append(f"{path.name} ({'cannot be read' if path.is_file() else 'not found'})")
            continue
        chosen.append(path)
        images.append(image)
    if not images:
        raise EdgewatchError(
            f"none of the {len(skipped)} images chosen in {calib} can be read", "give whole .jpg / .png images"
        )
    names = {path.name for path in chosen}
    if boxes is not None:
        boxes = {name: truth for name, truth in boxes.items() if name in names}
    if labels is not None:
        labels = {name: label for name, label in labels.items() if name in names}
    return _Calibration(chosen, images, skipped, classes, boxes, labels)


def _is_dataset(path: Path) -> bool:
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return True
    try:
        detect_format(path)
    except EdgewatchError:
        return False
    return True


def _folder_names(path: Path) -> set[str]:
    return {folder.name for folder in path.iterdir() if folder.is_dir() and not folder.name.startswith(".")}


def _spread(items: list[Path], count: int) -> list[Path]:
    """`count` of `items` evenly spread from the first to the last (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[index] for index in np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]


# --- quantising ------------------------------------------------------------------------------------


class _Frames(CalibrationDataReader):
    """ONNX Runtime's `CalibrationDataReader`: the model's input tensors, one frame at a time."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]) -> None:
        self._input_name = input_name
        self._tensors = tensors
        self._next: Iterator[np.ndarray] = iter(tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tensor = next(self._next, None)
        return None if tensor is None else {self._input_name: tensor}

    def __len__(self) -> int:
        return len(self._tensors)


def _read_onnx(path: Path) -> onnx.ModelProto:
    """The model file, checked to be an FP32 ONNX model ONNX Runtime can quantise."""
    if not path.is_file():
        raise EdgewatchError(f"no such model file: {path}", "give the FP32 .onnx model")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf's DecodeError, or a missing external-data file
        raise EdgewatchError(
            f"{path} is not an ONNX model: {_first_line(error)}", "give an .onnx file (train detector exports one)"
        ) from None
    if not model.graph.node:
        raise EdgewatchError(f"{path} is not an ONNX model: it holds no graph", "give an .onnx file")
    quantised = sorted({node.op_type for node in model.graph.node} & QUANTISED_OPS)
    if quantised:
        raise EdgewatchError(
            f"{path} is quantised already (it has {', '.join(quantised)})", "give the FP32 model it was made from"
        )
    return model


def _model_detector(path: Path, device: str = "cpu") -> ModelDetector:
    detector = load_model(path, device=device)  # INT8 QDQ targets the CPU: time both where INT8 runs
    assert isinstance(detector, ModelDetector)  # a model file always loads as one
    return detector


def _quantized(path: Path, fp32: onnx.ModelProto, tensors: list[np.ndarray], work: Path, name: str) -> Path:
    """The INT8 model, with the FP32 model's metadata, written in `work` as `name`."""
    prepared, quantised = work / "prepared.onnx", work / "quantised.onnx"
    try:
        # ONNX's shape inference gives every activation of a convolutional model its shape; ONNX
        # Runtime's symbolic one (for transformers' dynamic dims) fails on the street detector's Shape →
        # Reshape decode, leaving a copy of the model in the working folder, and its module imports torch
        # when that is installed (seconds, for nothing here)
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    except Exception as error:
        raise EdgewatchError(
            f"ONNX Runtime cannot prepare {path.name} for quantising: {_first_line(error)}",
            "check that `edgewatch run --model` runs it",
        ) from None
    graph = onnx.load(str(prepared))
    try:
        quantize_static(
            str(prepared),
            str(quantised),
            _Frames(_input_name(graph), tensors),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,  # x86's u8s8 kernels: see the module docstring
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_decode_tail(graph),
        )
    except Exception as error:
        raise EdgewatchError(
            f"ONNX Runtime cannot quantise {path.name}: {_first_line(error)}", "the FP32 model is left as it was"
        ) from None
    int8 = onnx.load(str(quantised))
    kept = {entry.key: entry.value for entry in int8.metadata_props}  # ONNX Runtime's own marks among them
    kept.update({entry.key: entry.value for entry in fp32.metadata_props})
    onnx.helper.set_model_props(int8, kept)
    final = work / "int8" / name  # its own folder: `name` may be one of the files above
    final.parent.mkdir()
    onnx.save(int8, str(final))
    return final


def _input_name(model: onnx.ModelProto) -> str:
    weights = {initializer.name for initializer in model.graph.initializer}
    return next(item.name for item in model.graph.input if item.name not in weights)


def _decode_tail(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes no weighted operator depends on: what turns the last layer's raw outputs into
    the model's outputs (a detector's boxes and scores), kept float (see the module docstring)."""
    producer = {output: node for node in model.graph.node for output in node.output}
    feeding: set[int] = set()  # ids of the nodes a weighted operator needs, themselves included
    stack = [node for node in model.graph.node if node.op_type in WEIGHTED_OPS]
    while stack:
        node = stack.pop()
        if id(node) in feeding:
            continue
        feeding.add(id(node))
        stack.extend(producer[name] for name in node.input if name in producer)
    return [node.name for node in model.graph.node if id(node) not in feeding and node.name]


# --- measuring -------------------------------------------------------------------------------------


def _side_by_side(first: ModelDetector, second: ModelDetector, tensors: list[np.ndarray]) -> tuple[float, float]:
    """Median ms of one `infer` of each on `tensors`, taking turns (see `measure_side_by_side`)."""
    fp32_ms, int8_ms = in_turns([first.infer, second.infer], tensors, timed=max(len(tensors), MIN_TIMED_CALLS))
    return fp32_ms, int8_ms


def _scores(
    data: _Calibration, fp32: ModelDetector, int8: ModelDetector
) -> tuple[str | None, float | None, float | None]:
    """(metric, FP32's, INT8's) on the calibration frames, when they are labelled for this model."""
    if data.boxes is not None and data.classes is not None:
        ap = [
            ev.evaluate(data.boxes, ev.predict_boxes(detector, data.paths, data.classes), data.classes).overall.ap50
            for detector in (fp32, int8)
        ]
        return "AP50", ap[0], ap[1]
    if data.labels is not None and data.classes is not None:
        accuracy = [
            _accuracy(data.labels, ev.predict_labels(detector, data.paths), data.classes) for detector in (fp32, int8)
        ]
        return "accuracy", accuracy[0], accuracy[1]
    return None, None, None


def _accuracy(truth: Mapping[str, str], predicted: Mapping[str, str], classes: list[str]) -> float | None:
    return ev.evaluate_classifier(truth, predicted, classes)["accuracy"]


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _signed(value: float, digits: int) -> str:
    """`value` with its sign, and no `-0.000` for a change that rounds to nothing."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
