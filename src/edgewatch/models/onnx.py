"""ONNX Runtime as a model runtime: CPU always, CUDA / TensorRT when the installed build has them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.models.runtimes import INSTALL_OPENVINO, model_kind, onnx_providers

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}


class OnnxRuntime:
    """Runs an `.onnx` file (see `Runtime` in models/model.py).

    Args:
        path: the `.onnx` file.
        device: `cpu`, `cuda`, `tensorrt`, ... (see models/runtimes.py); the best present when None.
    """

    #: ONNX Runtime does not say what its graph makes of a dynamic input
    own_input_size = None

    def __init__(self, path: str | Path, device: str | None = None) -> None:
        import onnxruntime

        path = Path(path)
        kind = model_kind(path)
        if kind == "folder":
            raise EdgewatchError(
                f"{path} is a folder, not a model", "give a model file, or a TensorFlow SavedModel folder"
            )
        if kind != "ONNX model" and path.exists():
            raise EdgewatchError(
                f"{path.name} is a {kind}, which ONNX Runtime cannot read; edgewatch runs it with OpenVINO",
                f"use type: openvino ({INSTALL_OPENVINO}), or give an .onnx file",
            )
        if not path.is_file():
            raise EdgewatchError(f"no such model file: {path}", "check the path given to --model")
        available = onnxruntime.get_available_providers()
        chosen = onnx_providers(device, available)
        options = onnxruntime.SessionOptions()
        # Its worker threads otherwise spin between calls: at 15 fps that burned 0.75 of a core for
        # nothing on a 2-core box (benchmarks/stream.py), at no gain in latency (9.6 vs 9.7 ms a call).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=chosen)
        except Exception as error:
            raise EdgewatchError(
                f"{path} is not a model ONNX Runtime can load: {_first_line(error)}", "export the model to ONNX again"
            ) from None
        self.device = self._session.get_providers()[0]
        if device not in (None, "auto") and self.device != chosen[0]:
            # ONNX Runtime falls back to the CPU with only a log line when CUDA's libraries are missing
            raise EdgewatchError(
                f"ONNX Runtime could not start {chosen[0]} for {path.name}, and would run it on {self.device}",
                "check the CUDA / TensorRT libraries onnxruntime-gpu needs, or use --device cpu",
            )
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        self.input_shape = list(model_input.shape)
        self.input_dtype = _DTYPES.get(model_input.type, "float32")
        self.output_names = [output.name for output in self._session.get_outputs()]
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {self._input_name: batch})


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
