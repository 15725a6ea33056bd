"""The YAML configuration: one pydantic tree, with defaults and validation in one place.

Unknown keys are refused, and every error names the key and its line in the file.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgewatch.errors import EdgewatchError
from edgewatch.models import BUILTIN_DETECTORS, MODEL_BACKENDS

CameraName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorConfig(StrictModel):
    """A named detector that cameras refer to by its key under `detectors:`."""

    type: str = Field(description="a built-in detector (" + ", ".join(BUILTIN_DETECTORS) + "), onnx or openvino")
    min_area: float | None = Field(None, gt=0, description="motion: smallest blob in pixels, or fraction of the frame")
    path: str | None = Field(None, description="onnx: the model file")
    format: str | None = Field(None, description="onnx: output layout; omit to guess from the output shapes")
    labels: str | None = Field(None, description="onnx: labels file (txt, yaml, json); omit to use the model's")
    input_size: tuple[int, int] | None = Field(None, description="onnx: [width, height] when the model's is dynamic")
    letterbox: bool | None = Field(None, description="onnx: keep aspect ratio with grey bars (default for YOLO)")
    rgb: bool | None = Field(None, description="onnx: feed RGB rather than BGR")
    scale: float | None = Field(None, gt=0, description="onnx: multiply pixel values by this (1/255 for YOLO)")
    mean: tuple[float, float, float] | None = Field(None, description="onnx: subtracted per channel after scale")
    std: tuple[float, float, float] | None = Field(None, description="onnx: divided per channel after mean")
    nms_iou: float | None = Field(None, gt=0, le=1, description="onnx: IoU above which boxes of a class merge")
    max_detections: int | None = Field(None, ge=1, description="onnx: boxes kept per frame at most")
    softmax: bool | None = Field(None, description="model classifier: apply softmax; omit to decide from the outputs")
    device: str | None = Field(None, description="openvino: AUTO (default), CPU, GPU, NPU, ...")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in (*BUILTIN_DETECTORS, *MODEL_BACKENDS):
            raise ValueError(
                f"unknown detector type '{value}'; use one of {', '.join((*BUILTIN_DETECTORS, *MODEL_BACKENDS))}"
            )
        return value

    @model_validator(mode="after")
    def _model_has_path(self) -> DetectorConfig:
        if self.type in MODEL_BACKENDS and not self.path:
            raise ValueError(f"a detector of type {self.type} needs path: (the model file)")
        return self

    def options(self) -> dict[str, Any]:
        """Keyword options for `load_detector`, leaving out what was not set."""
        options = self.model_dump(exclude={"type"}, exclude_none=True)
        preprocess = {key: options.pop(key) for key in PREPROCESS_KEYS if key in options}
        if preprocess:
            options["preprocess"] = preprocess
        return options


PREPROCESS_KEYS = ("input_size", "letterbox", "rgb", "scale", "mean", "std")


class CameraConfig(StrictModel):
    """One input and how to process it."""

    source: str | int = Field(description="file, folder, webcam index, URL or GStreamer pipeline")
    detector: str = Field("hog", description="a key of detectors:, or a built-in detector name")
    fps: float | None = Field(None, gt=0, description="processing rate; omit to process every frame")
    stride: int = Field(1, ge=1, description="process every Nth frame")
    min_score: float | None = Field(
        None, ge=0, le=1, description="drop boxes scoring below; omit for the detector's default"
    )
    labels: list[str] | None = Field(None, description="keep only these labels")
    max_frames: int | None = Field(None, ge=1, description="stop after this many processed frames")
    realtime: bool = Field(False, description="pace a file at its own frame rate")
    loop: bool = Field(False, description="replay a file when it ends")
    open_timeout: float = Field(10.0, gt=0, description="seconds a stream may take to open")

    @model_validator(mode="after")
    def _one_rate(self) -> CameraConfig:
        if self.stride > 1 and self.fps is not None:
            raise ValueError("give fps or stride, not both")
        return self


class Config(StrictModel):
    """The whole file."""

    cameras: dict[CameraName, CameraConfig] = Field(min_length=1)
    detectors: dict[str, DetectorConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _detectors_exist(self) -> Config:
        for name, camera in self.cameras.items():
            if camera.detector not in self.detectors and camera.detector not in BUILTIN_DETECTORS:
                known = [*self.detectors, *BUILTIN_DETECTORS]
                raise _FieldError(
                    ("cameras", name, "detector"),
                    f"unknown detector '{camera.detector}'; use one of {', '.join(known)}",
                )
        return self


class _FieldError(ValueError):
    """A cross-field error that still knows which key it is about."""

    def __init__(self, location: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.location = location


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Raises:
        EdgewatchError: naming the file, the line and the key at fault.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgewatchError(f"no such config file: {path}", "check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EdgewatchError(f"cannot read config {path}: {error}", "it must be a UTF-8 YAML file") from None
    return parse_config(text, str(path))


def parse_config(text: str, origin: str = "<config>") -> Config:
    """Validate YAML text; `origin` names it in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise EdgewatchError(
            f"{origin}{line}: malformed YAML: {error.problem or error.context}", "fix the YAML syntax there"
        ) from None
    except yaml.YAMLError as error:
        raise EdgewatchError(f"{origin}: malformed YAML: {error}", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise EdgewatchError(f"{origin}: the config must be a mapping with a cameras: key", "see docs/config.md")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise _explain(error, root, origin) from None


def _explain(error: ValidationError, root: yaml.Node | None, origin: str) -> EdgewatchError:
    first = error.errors()[0]
    location = tuple(str(part) for part in first["loc"])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _FieldError):
        location, message = cause.location, str(cause)
    elif first["type"] == "extra_forbidden":
        allowed = _allowed_keys(location[:-1])
        where = ".".join(location[:-1]) or "the top level"
        return EdgewatchError(
            f"{origin}:{_line(root, location)}: unknown key '{location[-1]}' in {where}",
            f"allowed keys there: {', '.join(allowed)}" if allowed else "remove it",
        )
    else:
        message = first["msg"].removeprefix("Value error, ")
    key = ".".join(location) or "the top level"
    return EdgewatchError(f"{origin}:{_line(root, location)}: {key}: {message}", "fix that value; see docs/config.md")


def _line(root: yaml.Node | None, location: tuple[str, ...]) -> int:
    """Line (1-based) of the deepest node of `location` that exists in the file."""
    node, line = root, (root.start_mark.line + 1 if root else 1)
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _allowed_keys(location: tuple[str, ...]) -> list[str]:
    """Field names of the model found at `location`, for the hint of an unknown-key error."""
    model: Any = Config
    for part in location:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return []
            model = field.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
        else:
            return []
        model = _unwrap(model)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """The model inside `X | None` or `Annotated[X, ...]`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            models = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = models[0] if len(models) == 1 else annotation
            if len(models) != 1:
                return annotation
        else:
            return annotation
