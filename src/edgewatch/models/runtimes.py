"""Which runtime runs a model file, and on what: the one place that reads `--model` / `--device`.

ONNX Runtime reads `.onnx` only. OpenVINO reads `.onnx` too, and the formats ONNX Runtime cannot:
its IR (`.xml` + `.bin`), TensorFlow frozen graphs (`.pb`) and SavedModel folders, TensorFlow Lite
(`.tflite`) and PaddlePaddle (`.pdmodel`), with no TensorFlow or Paddle installed.

`--device` speaks one vocabulary for both (docs/models.md):

* `cpu`, `gpu`, `auto`: that hardware on the runtime the file needs (`gpu` is CUDA on ONNX Runtime);
* `cuda`, `tensorrt`, `rocm`, `directml`, `coreml`: ONNX Runtime execution providers, when the installed
  onnxruntime build has them;
* `openvino`, `openvino:GPU`, `openvino:CPU`, ...: OpenVINO on that device (AUTO when none is named);
* `AUTO`, `CPU`, `GPU`, `NPU`, `GPU.1`, `HETERO:GPU,CPU`, ...: OpenVINO's own device names, as OpenVINO
  spells them (upper case).
"""

from __future__ import annotations

from pathlib import Path

from edgewatch.errors import EdgewatchError

ONNX, OPENVINO = "onnx", "openvino"
#: model files only OpenVINO reads, by suffix, with the name users know each by
OPENVINO_FORMATS = {
    ".xml": "OpenVINO IR",
    ".pb": "TensorFlow frozen graph",
    ".tflite": "TensorFlow Lite model",
    ".pdmodel": "PaddlePaddle model",
}
SAVED_MODEL = "TensorFlow SavedModel"
#: ONNX Runtime's execution providers by the short names users type
EXECUTION_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
#: an accelerator provider falls back to these for the operators it does not run
PROVIDER_FALLBACKS = {"TensorrtExecutionProvider": ("CUDAExecutionProvider", "CPUExecutionProvider")}
#: ONNX Runtime's order of preference when no device is named
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
#: the words that name hardware on whichever runtime the file needs
GENERIC_DEVICES = {"cpu": ("cpu", "CPU"), "gpu": ("cuda", "GPU"), "auto": (None, "AUTO")}
DEVICE_WORDS = "cpu, gpu, cuda, tensorrt (ONNX Runtime), openvino, openvino:GPU, AUTO, CPU, GPU, NPU (OpenVINO)"
INSTALL_OPENVINO = "pip install 'edgewatch[openvino]'"


def model_kind(path: str | Path) -> str:
    """What a model file is, in the words its users know: `ONNX model`, `TensorFlow frozen graph`, ..."""
    path = Path(path)
    if path.is_dir():
        return SAVED_MODEL if (path / "saved_model.pb").is_file() else "folder"
    return OPENVINO_FORMATS.get(path.suffix.lower(), "ONNX model")


def runtime_for(path: str | Path, device: str | None = None) -> str:
    """`onnx` or `openvino`: the runtime that runs the model at `path` on `device` (`--device`).

    A file only OpenVINO reads runs on OpenVINO whatever the device; an `.onnx` file runs on ONNX
    Runtime unless the device is OpenVINO's (`openvino[:X]`, or an upper-case OpenVINO device).

    Raises:
        EdgewatchError: an unknown device, or an ONNX Runtime one for a file only OpenVINO reads.

    Example:
        >>> runtime_for("frozen_inference_graph.pb"), runtime_for("yolov8n.onnx", "cuda")
        ('openvino', 'onnx')
        >>> runtime_for("yolov8n.onnx", "openvino:GPU"), runtime_for("yolov8n.onnx", "CPU")
        ('openvino', 'openvino')
    """
    asked = _runtime_of_device(device)
    kind = model_kind(path)
    if kind == "ONNX model":
        return asked or ONNX
    if asked == ONNX:
        raise EdgewatchError(
            f"{Path(path).name} is a {kind}, which edgewatch runs with OpenVINO: ONNX Runtime's {device} cannot run it",
            "use --device openvino:GPU or cpu, or export the model to ONNX to run it on CUDA / TensorRT",
        )
    return OPENVINO


def onnx_providers(device: str | None, available: list[str]) -> list[str]:
    """ONNX Runtime's execution providers for `device`, in order, from those `available`."""
    if device is None or device == "auto":
        return [name for name in PREFERRED_PROVIDERS if name in available]
    if _runtime_of_device(device) == OPENVINO:
        raise EdgewatchError(
            f"device {device} is OpenVINO's, and this detector runs on ONNX Runtime",
            "use type: openvino for OpenVINO, or one of cpu, cuda, tensorrt",
        )
    word = device.lower()
    provider = EXECUTION_PROVIDERS.get(GENERIC_DEVICES[device][0] if device in GENERIC_DEVICES else word, device)
    if provider not in available:
        raise EdgewatchError(
            f"this onnxruntime cannot run on {device}: its execution providers are {', '.join(available)}",
            "install onnxruntime-gpu in place of onnxruntime for cuda / tensorrt, or use --device cpu"
            if provider in PROVIDER_FALLBACKS or provider == "CUDAExecutionProvider"
            else "use --device cpu",
        )
    fallbacks = PROVIDER_FALLBACKS.get(provider, ("CPUExecutionProvider",))
    return [provider, *(name for name in fallbacks if name in available and name != provider)]


def openvino_device(device: str | None) -> str:
    """OpenVINO's name for `device`: `openvino:GPU` → `GPU`, `cpu` → `CPU`, none → `AUTO`."""
    if device is None:
        return "AUTO"
    word = device.lower()
    if word == OPENVINO:
        return "AUTO"
    if word.startswith(OPENVINO + ":"):
        return device.split(":", 1)[1].upper() or "AUTO"
    if word in GENERIC_DEVICES:
        return GENERIC_DEVICES[word][1]
    if _runtime_of_device(device) == ONNX:
        raise EdgewatchError(
            f"{device} is an ONNX Runtime execution provider, and this model runs on OpenVINO",
            "use --device openvino:GPU, openvino:CPU or AUTO (or an .onnx file for CUDA / TensorRT)",
        )
    return device.upper()


def _runtime_of_device(device: str | None) -> str | None:
    """The runtime a device name belongs to; None for words every runtime has (cpu, gpu, auto)."""
    if device is None or device in GENERIC_DEVICES:  # upper-case CPU, GPU, AUTO are OpenVINO's own
        return None
    word = device.lower()
    if (word in EXECUTION_PROVIDERS and word not in GENERIC_DEVICES) or device in EXECUTION_PROVIDERS.values():
        return ONNX
    if word == OPENVINO or word.startswith(OPENVINO + ":") or word == "npu" or device.upper() == device:
        return OPENVINO
    raise EdgewatchError(f"unknown device '{device}'", f"use one of {DEVICE_WORDS}")
