"""OpenVINO as a model runtime: its IR (`.xml` + `.bin`), `.onnx`, and what OpenVINO reads with no
framework installed (TensorFlow `.pb` and SavedModel folders, `.tflite`, PaddlePaddle `.pdmodel`), on
device AUTO unless one is named.

Installed with `pip install edgewatch[openvino]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgewatch.errors import EdgewatchError
from edgewatch.models.runtimes import INSTALL_OPENVINO, SAVED_MODEL, model_kind, openvino_device

_DTYPES = {"f32": "float32", "f16": "float16", "u8": "uint8"}


class OpenVinoRuntime:
    """Runs a model with OpenVINO (see `Runtime` in models/model.py).

    Args:
        path: `.xml` (its `.bin` beside it), `.onnx`, `.pb`, `.tflite`, `.pdmodel`, or a SavedModel folder.
        device: `AUTO` (OpenVINO picks), `CPU`, `GPU`, `NPU`, `openvino:GPU`, `cpu`, ... (models/runtimes.py).
    """

    def __init__(self, path: str | Path, device: str | None = "AUTO") -> None:
        path = Path(path)
        kind = model_kind(path)
        try:
            import openvino
        except ImportError:
            raise EdgewatchError(
                f"{path.name} is a {kind}, which edgewatch runs with OpenVINO: OpenVINO is not installed"
                if kind != "ONNX model"
                else "OpenVINO is not installed",
                INSTALL_OPENVINO,
            ) from None
        if not (path.is_file() or kind == SAVED_MODEL):
            raise EdgewatchError(
                f"no such model file: {path}",
                "check the path given to --model"
                if not path.is_dir()
                else "a TensorFlow SavedModel folder holds saved_model.pb; give that folder, or a model file",
            )
        device = openvino_device(device)
        core = openvino.Core()
        if device != "AUTO" and device.split(".")[0] not in {name.split(".")[0] for name in core.available_devices}:
            raise EdgewatchError(
                f"OpenVINO device {device} is not present on this machine",
                f"use one of AUTO, {', '.join(core.available_devices)}",
            )
        try:
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, device)
        except RuntimeError as error:
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise EdgewatchError(
                f"{path} is not a {kind} OpenVINO can load: {first[:200]}",
                "convert it again (ovc or Ultralytics' export)",
            ) from None
        model_input = model.inputs[0]
        self.input_shape = [dim.get_length() if dim.is_static else None for dim in model_input.get_partial_shape()]
        self.input_dtype = _DTYPES.get(model_input.get_element_type().get_type_name(), "float32")
        self.output_names = [_output_name(output.get_names()) for output in model.outputs]
        self.metadata = {**_metadata_file(path), **_ultralytics_metadata(model)}
        self.own_input_size = own_input_size(model) if None in self.input_shape[1:] else None
        self.device = f"OpenVINO {device} ({', '.join(core.available_devices)})"

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        results = self._compiled(batch)
        return [results[output] for output in self._compiled.outputs]


def own_input_size(model: Any) -> tuple[int, int] | None:
    """(width, height) a model with a dynamic input resizes its pictures to, when its graph does so.

    That is the first 4-D tensor with static height and width and the input's 3 channels that the graph
    computes from its input: TensorFlow Object Detection API exports resize inside a `Loop`
    ([?, 300, 300, 3] for SSDLite MobileNet), TFLite and ONNX exports with an `Interpolate` / `Resize`.
    Feeding it that size spares the work and gives what it was trained on."""
    parameter = model.inputs[0].get_node()
    shape = model.inputs[0].get_partial_shape()
    nhwc = shape[3].is_static and shape[3].get_length() == 3
    fed = {parameter.get_name()}
    for op in model.get_ordered_ops():
        if not any(value.get_node().get_name() in fed for value in op.input_values()):
            continue
        fed.add(op.get_name())
        for output in op.outputs():
            made = output.get_partial_shape()
            if made.rank.is_dynamic or made.rank.get_length() != 4:
                continue
            channels, height, width = (made[3], made[1], made[2]) if nhwc else (made[1], made[2], made[3])
            sides = (channels, height, width)
            if all(side.is_static for side in sides) and channels.get_length() == 3 and height.get_length() > 1:
                return width.get_length(), height.get_length()
    return None


def _output_name(names: set[str]) -> str:
    """The name a user knows an output by: TensorFlow graphs give each several, such as `detection_boxes:0`
    and `Postprocessor/BatchMultiClassNonMaxSuppression/map/TensorArrayStack/TensorArrayGatherV3:0`."""
    return max(sorted(names), key=lambda name: ("/" not in name, len(name)), default="?")


def _ultralytics_metadata(model: Any) -> dict[str, str]:
    """Ultralytics' OpenVINO export keeps its class names in the IR's rt_info under model_info."""
    try:
        return {"names": str(model.get_rt_info(["model_info", "names"]).astype(str))}
    except (RuntimeError, KeyError, AttributeError):
        return {}


def _metadata_file(path: Path) -> dict[str, str]:
    """Ultralytics writes `metadata.yaml` (names, imgsz) beside the `.xml` of its OpenVINO export."""
    beside = path.parent / "metadata.yaml" if path.is_file() else path / "metadata.yaml"
    try:
        data = yaml.safe_load(beside.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: str(data[key]) for key in ("names", "imgsz") if key in data}
