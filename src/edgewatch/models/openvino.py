"""OpenVINO as a model runtime: IR (`.xml` + `.bin`) or `.onnx`, on device AUTO unless one is named.

Installed with `pip install edgewatch[openvino]`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgewatch.errors import EdgewatchError

_DTYPES = {"f32": "float32", "f16": "float16", "u8": "uint8"}


class OpenVinoRuntime:
    """Runs a model with OpenVINO (see `Runtime` in models/model.py).

    Args:
        path: `.xml` (its `.bin` beside it) or `.onnx`.
        device: `AUTO` (OpenVINO picks), `CPU`, `GPU`, `NPU`, ...
    """

    def __init__(self, path: str | Path, device: str = "AUTO") -> None:
        try:
            import openvino
        except ImportError:
            raise EdgewatchError("OpenVINO is not installed", "pip install 'edgewatch[openvino]'") from None
        path = Path(path)
        if not path.is_file():
            raise EdgewatchError(f"no such model file: {path}", "check the path given to --model")
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
                f"{path} is not a model OpenVINO can load: {first[:200]}",
                "convert it again (ovc or Ultralytics' export)",
            ) from None
        model_input = model.inputs[0]
        self.input_shape = [dim.get_length() if dim.is_static else None for dim in model_input.get_partial_shape()]
        self.input_dtype = _DTYPES.get(model_input.get_element_type().get_type_name(), "float32")
        self.output_names = [output.get_any_name() for output in model.outputs]
        self.metadata = _ultralytics_metadata(model)
        self.device = f"OpenVINO {device} ({', '.join(core.available_devices)})"

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        results = self._compiled(batch)
        return [results[output] for output in self._compiled.outputs]


def _ultralytics_metadata(model) -> dict[str, str]:
    """Ultralytics' OpenVINO export keeps its class names in the IR's rt_info under model_info."""
    try:
        return {"names": str(model.get_rt_info(["model_info", "names"]).astype(str))}
    except (RuntimeError, KeyError, AttributeError):
        return {}
