"""The YAML configuration: one pydantic tree, with defaults and validation in one place.

Unknown keys are refused, and every error names the key and its line in the file.
"""

from __future__ import annotations

import socket
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgewatch.errors import EdgewatchError
from edgewatch.models import BUILTIN_DETECTORS, MODEL_BACKENDS, REMOTE
from edgewatch.offload.address import endpoint, is_remote

CameraName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorConfig(StrictModel):
    """A named detector that cameras refer to by its key under `detectors:`."""

    type: str = Field(
        description="a built-in detector (" + ", ".join(BUILTIN_DETECTORS) + "), onnx, openvino, or remote (a model "
        "served by edgewatch serve: docs/offload.md)"
    )
    min_area: float | None = Field(None, gt=0, description="motion: smallest blob in pixels, or fraction of the frame")
    path: str | None = Field(
        None,
        description="the model file (.onnx; for openvino also .xml, .pb, .tflite, .pdmodel or a SavedModel folder)",
    )
    format: str | None = Field(None, description="onnx: output layout; omit to guess from the output shapes")
    labels: str | dict[int, str] | list[str] | None = Field(
        None,
        description="onnx: labels file (txt, yaml, json, a TF .pbtxt label map), or the names here: a list, or "
        "{id: name} (by id: TensorFlow's count from 1); omit to use the model's",
    )
    input_size: tuple[int, int] | None = Field(None, description="onnx: [width, height] when the model's is dynamic")
    letterbox: bool | None = Field(None, description="onnx: keep aspect ratio with grey bars (default for YOLO)")
    rgb: bool | None = Field(None, description="onnx: feed RGB rather than BGR")
    scale: float | None = Field(None, gt=0, description="onnx: multiply pixel values by this (1/255 for YOLO)")
    mean: tuple[float, float, float] | None = Field(None, description="onnx: subtracted per channel after scale")
    std: tuple[float, float, float] | None = Field(None, description="onnx: divided per channel after mean")
    nms_iou: float | None = Field(None, gt=0, le=1, description="onnx: IoU above which boxes of a class merge")
    max_detections: int | None = Field(None, ge=1, description="onnx: boxes kept per frame at most")
    softmax: bool | None = Field(None, description="model classifier: apply softmax; omit to decide from the outputs")
    device: str | None = Field(
        None,
        description="cpu, gpu, cuda, tensorrt (onnx); openvino:GPU, AUTO, CPU, GPU, NPU (openvino); docs/models.md",
    )
    url: str | None = Field(None, description="remote: the server, ws://HOST:PORT or remote://HOST:PORT")
    fallback: str | None = Field(
        None, description="remote: a key of detectors: or a built-in name that answers while the server is away"
    )
    timeout: float | None = Field(None, gt=0, description="remote: seconds to connect and to wait for each answer (2)")
    quality: int | None = Field(None, ge=1, le=100, description="remote: JPEG quality of the frames sent (90)")
    token: str | None = Field(None, description="remote: the server's token, when it has one")
    min_change: float | Literal["auto"] | None = Field(
        None, description="remote: send a frame only when it changed by this much (0-255; 0: all), or auto"
    )
    max_skip: int | None = Field(None, ge=1, description="remote: with min_change, send at least every N frames (10)")
    target_f1: float | None = Field(
        None, gt=0, le=1, description="remote: with min_change: auto, the F1 against sending all to keep (0.9)"
    )
    max_kbps: float | None = Field(None, gt=0, description="remote: kilobits per second to send at most")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        types = (*BUILTIN_DETECTORS, *MODEL_BACKENDS, REMOTE)
        if value not in types:
            raise ValueError(f"unknown detector type '{value}'; use one of {', '.join(types)}")
        return value

    @field_validator("min_change", mode="before")
    @classmethod
    def _change_or_auto(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Input should be a number from 0 to 255, or auto")
        if value < 0:
            raise ValueError("Input should be greater than or equal to 0")
        if value > 255:
            raise ValueError("Input should be less than or equal to 255")
        return float(value)

    @model_validator(mode="after")
    def _model_has_path(self) -> DetectorConfig:
        if self.type in MODEL_BACKENDS and not self.path:
            raise ValueError(f"a detector of type {self.type} needs path: (the model file)")
        return self

    @model_validator(mode="after")
    def _remote_has_url(self) -> DetectorConfig:
        remote_only = [key for key in REMOTE_KEYS if getattr(self, key) is not None]
        if self.type != REMOTE:
            if remote_only:
                raise ValueError(f"{', '.join(remote_only)}: only for a detector of type remote")
            return self
        if not self.url:
            raise _FieldError(("url",), "a detector of type remote needs url: (its server, e.g. ws://10.0.0.5:8765)")
        if self.target_f1 is not None and self.min_change != "auto":
            raise _FieldError(("target_f1",), "only with min_change: auto (a fixed min_change keeps no F1)")
        try:
            endpoint(self.url)
        except EdgewatchError as error:
            raise _FieldError(("url",), error.message) from None
        return self

    def options(self) -> dict[str, Any]:
        """Keyword options for `load_detector`, leaving out what was not set."""
        options = self.model_dump(exclude={"type"}, exclude_none=True)
        preprocess = {key: options.pop(key) for key in PREPROCESS_KEYS if key in options}
        if preprocess:
            options["preprocess"] = preprocess
        return options


# the default detector of each synthetic scene: the project's trained models, and motion for pets (no
# pets model is trained yet)
SYNTHETIC_DETECTORS = {"street": "street", "door": "door", "pets": "motion"}
PREPROCESS_KEYS = ("input_size", "letterbox", "rgb", "scale", "mean", "std")
REMOTE_KEYS = ("url", "fallback", "timeout", "quality", "token", "min_change", "max_skip", "target_f1", "max_kbps")


Point = tuple[float, float]
ANCHORS = ("bottom_center", "center", "top_center", "center_left", "center_right", "bottom_left", "bottom_right")
Anchor = typing.Literal[ANCHORS]


class FilterConfig(StrictModel):
    """Which detections of a label are believed, before tracking (per box) and after (per track)."""

    min_score: float | None = Field(None, ge=0, le=1, description="drop boxes scoring below; overrides the camera's")
    min_area: float | None = Field(None, ge=0, description="smallest box: pixels, or a fraction of the frame if ≤ 1")
    max_area: float | None = Field(None, gt=0, description="largest box: pixels, or a fraction of the frame if ≤ 1")
    min_ratio: float | None = Field(None, gt=0, description="smallest width / height")
    max_ratio: float | None = Field(None, gt=0, description="largest width / height")
    threshold: float | None = Field(
        None, ge=0, le=1, description="a track counts once the median of its recent scores reaches this"
    )


class TrackingConfig(StrictModel):
    """The track lifecycle: confirmed after `confirm_frames`, lost when unseen, gone after `gone_after`."""

    confirm_frames: int = Field(3, ge=1, description="frames in a row before a track is an object")
    lost_after: float = Field(1.0, gt=0, description="seconds ByteTrack keeps an unseen track")
    gone_after: float = Field(2.0, gt=0, description="seconds unseen before an object has left; until then a "
                              "new track where it was heading continues it")  # fmt: skip
    high_score: float | None = Field(
        None, ge=0, le=1, description="ByteTrack's first-pass score; omit to use the camera's min_score"
    )
    min_iou: float = Field(0.1, gt=0, le=1, description="overlap a box needs with a track's prediction to join it")


class LineConfig(StrictModel):
    """A counting line; 'in' is the side to the left of the line walked from its first point to its second."""

    points: tuple[Point, Point] = Field(description="two points: pixels, or fractions of width/height if all ≤ 1")
    labels: list[str] | None = Field(None, description="count only these labels")
    anchor: Anchor = Field("bottom_center", description="the point of a box that must cross")
    margin: float = Field(2.0, ge=0, description="pixels the anchor must get past the line (no jitter counts)")


class ZoneConfig(StrictModel):
    """A polygon whose occupancy, visits and dwell times are kept."""

    polygon: list[Point] = Field(min_length=3, description="corners: pixels, or fractions if all ≤ 1")
    labels: list[str] | None = Field(None, description="watch only these labels")
    anchor: Anchor = Field("bottom_center", description="the point of a box that must be inside")
    inertia: int = Field(3, ge=1, description="frames in a row inside (or outside) before it counts")


class RuleConfig(StrictModel):
    """An incident: a condition on the objects present that starts once, may re-alert, and ends once."""

    name: CameraName
    all_present: list[str] | None = Field(None, description="every one of these labels is present")
    any_present: list[str] | None = Field(None, description="at least one of these labels is present")
    count_above: int | None = Field(None, ge=0, description="more than this many objects (of `labels`) present")
    labels: list[str] | None = Field(None, description="count_above: the labels counted; omit for all")
    zone: str | None = Field(None, description="look only inside this zone")
    min_duration: float = Field(0.0, ge=0, description="seconds the condition holds before the incident starts")
    end_after: float = Field(1.0, ge=0, description="seconds the condition is false before the incident ends")
    repeat_after: float | None = Field(None, gt=0, description="re-alert (an update event) every so many seconds")

    @model_validator(mode="after")
    def _one_condition(self) -> RuleConfig:
        given = [key for key in ("all_present", "any_present", "count_above") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of all_present, any_present or count_above")
        return self


class StateConfig(StrictModel):
    """A classifier's label as a state that changes only when the new label holds."""

    min_duration: float = Field(1.0, ge=0, description="seconds the new label must hold before the state changes")
    min_score: float = Field(0.5, ge=0, le=1, description="classifications scoring below do not count")


EVENT_TYPES = ("object", "line_crossing", "zone", "incident", "state", "detector")


class RecordConfig(StrictModel):
    """Clips and snapshots of what mattered: the seconds before an event (kept encoded in memory)
    and after it."""

    pre_seconds: float = Field(5.0, ge=0, le=60, description="seconds kept before the event")
    post_seconds: float = Field(5.0, ge=0, le=300, description="seconds recorded after the event ends")
    events: list[typing.Literal[EVENT_TYPES]] = Field(
        default_factory=lambda: ["incident"], description="event types that start a clip"
    )
    snapshots: bool = Field(True, description="also save a JPEG of the best frame, with and without boxes")


class CaptureConfig(StrictModel):
    """Retraining capture: frames worth labelling, saved raw with the model's predictions."""

    interval: float = Field(10.0, gt=0, description="seconds between two saved frames at least")
    min_score: float | None = Field(None, ge=0, le=1, description="save only frames with a box scoring in "
                                    "[min_score, max_score] (uncertain ones); omit for any box")  # fmt: skip
    max_score: float | None = Field(None, ge=0, le=1, description="upper end of that band")
    size: typing.Literal["full", "model"] = Field("full", description="keep the frame whole, or resized to the "
                                                  "model input")  # fmt: skip
    formats: list[typing.Literal["sagemaker", "yolo", "coco"]] = Field(
        default_factory=lambda: ["sagemaker", "yolo", "coco"], description="annotation formats written"
    )


class CameraConfig(StrictModel):
    """One input and how to process it."""

    source: str | int = Field(description="file, folder, webcam index, URL or GStreamer pipeline")
    detector: str = Field(
        None,  # type: ignore[assignment]  # filled in by _default_detector
        description="a key of detectors:, or a built-in detector name; default: hog, or street for synthetic: sources",
    )
    fps: float | None = Field(None, gt=0, description="processing rate; omit to process every frame")
    stride: int = Field(1, ge=1, description="process every Nth frame")
    min_score: float | None = Field(
        None, ge=0, le=1, description="drop boxes scoring below; omit for the detector's default"
    )
    labels: list[str] | None = Field(None, description="keep only these labels")
    threshold: float | None = Field(
        None, ge=0, le=1, description="a track counts once the median of its recent scores reaches this; "
        "omit for the detector's default (0.7 for model files)"
    )  # fmt: skip
    max_frames: int | None = Field(None, ge=1, description="stop after this many processed frames")
    realtime: bool = Field(False, description="pace a file at its own frame rate")
    loop: bool = Field(False, description="replay a file when it ends")
    open_timeout: float = Field(10.0, gt=0, description="seconds a stream may take to open")
    filters: dict[str, FilterConfig] = Field(default_factory=dict, description="per label")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    lines: dict[CameraName, LineConfig] = Field(default_factory=dict)
    zones: dict[CameraName, ZoneConfig] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)
    state: StateConfig | None = Field(None, description="classifier models: turn the label into a state")
    stats_interval: float = Field(10.0, gt=0, description="seconds of video between two stats messages")
    record: RecordConfig | None = Field(None, description="save clips and snapshots of events (storage.path)")
    capture: CaptureConfig | None = Field(None, description="save frames for retraining (storage.path)")

    @model_validator(mode="before")
    @classmethod
    def _default_detector(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("detector") is None:
            scene = str(data.get("source", "")).removeprefix("synthetic:").partition("?")[0]
            data = {**data, "detector": SYNTHETIC_DETECTORS.get(scene, "hog")}
        return data

    @model_validator(mode="after")
    def _one_rate(self) -> CameraConfig:
        if self.stride > 1 and self.fps is not None:
            raise ValueError("give fps or stride, not both")
        return self

    @model_validator(mode="after")
    def _rule_zones_exist(self) -> CameraConfig:
        for index, rule in enumerate(self.rules):
            if rule.zone is not None and rule.zone not in self.zones:
                known = ", ".join(self.zones) or "none defined"
                raise _FieldError(("rules", str(index), "zone"), f"unknown zone '{rule.zone}'; zones: {known}")
        return self


class MqttConfig(StrictModel):
    """Where stats and events are published (docs/mqtt.md)."""

    host: str = Field("embedded", description="broker host, or 'embedded' to start one in-process on 127.0.0.1")
    port: int = Field(1883, ge=0, le=65535, description="0 with host: embedded picks a free port")
    prefix: str = Field("edgewatch", pattern=r"^[^#+]+$", description="first level of every topic")
    client_id: str | None = Field(
        None, description="omit for edgewatch-<instance>-<random>, made once and kept in <storage.path>/mqtt-client-id"
    )
    username: str | None = None
    password: str | None = None
    tls: bool = Field(False, description="connect with TLS (port 8883 usually)")
    ca: str | None = Field(None, description="CA certificate file for TLS; omit for the system's")
    cert: str | None = Field(None, description="client certificate file for TLS")
    key: str | None = Field(None, description="client key file for TLS")
    keepalive: int = Field(60, ge=5, description="seconds")
    discovery: bool = Field(False, description="publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix")


class S3Config(StrictModel):
    """An S3-compatible bucket that receives media and event records, as well as the local folder."""

    endpoint: str | None = Field(None, description="e.g. http://127.0.0.1:8333; omit for AWS")
    bucket: str
    prefix: str = Field("", description="objects go to <prefix><camera>/<YYYY-MM-DD>/<event id>.{json,jpg,mp4}")
    region: str | None = None
    access_key: str | None = Field(None, description="omit to use AWS_ACCESS_KEY_ID and friends")
    secret_key: str | None = None


class StorageConfig(StrictModel):
    """The local folder for media, event records, the event store and the outgoing queues."""

    path: str = Field("./edgewatch-data", description="folder; created when missing")
    max_days: float | None = Field(None, gt=0, description="delete media and stored events older than this")
    max_gb: float | None = Field(None, gt=0, description="delete the oldest media beyond this total size")
    s3: S3Config | None = None


class WebhookConfig(StrictModel):
    """An HTTP endpoint that receives each event as a JSON POST."""

    url: str = Field(pattern=r"^https?://")
    timeout: float = Field(5.0, gt=0, description="seconds per attempt")
    retries: int = Field(3, ge=0, description="attempts after the first, with backoff")
    events: list[typing.Literal[EVENT_TYPES]] | None = Field(None, description="event types sent; omit for all")


class DashboardConfig(StrictModel):
    """The live page and its API (docs/dashboard.md)."""

    host: str = Field("127.0.0.1", description="address to bind; any but loopback needs a token")
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
    token: str | None = Field(None, description="access token; omit to use EDGEWATCH_TOKEN from the environment")
    hosts: list[str] = Field(
        default_factory=list,
        description="other names the page is reached by (a reverse proxy's, a DNS name); its own address and "
        "loopback's are always answered",
    )


def default_instance() -> str:
    """The host name: two machines on one broker differ by it without being told."""
    return socket.gethostname() or "edgewatch"


class Config(StrictModel):
    """The whole file."""

    cameras: dict[CameraName, CameraConfig] = Field(min_length=1)
    instance: str = Field(
        default_factory=default_instance,
        min_length=1,
        description="this edgewatch's name on a shared MQTT broker, in its topics and Home Assistant ids "
        "(docs/mqtt.md); default: the host name",
    )
    detectors: dict[str, DetectorConfig] = Field(default_factory=dict)
    mqtt: MqttConfig | None = Field(None, description="publish stats and events over MQTT")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    dashboard: DashboardConfig | None = Field(None, description="serve the live page")

    @field_validator("instance")
    @classmethod
    def _instance_has_a_slug(cls, value: str) -> str:
        if not any(character.isascii() and character.isalnum() for character in value):
            raise ValueError("an instance name needs a letter or digit (A-Z, a-z, 0-9) for its MQTT topics")
        return value

    @model_validator(mode="after")
    def _detectors_exist(self) -> Config:
        for name, camera in self.cameras.items():
            if is_remote(camera.detector):
                try:
                    endpoint(camera.detector)
                except EdgewatchError as error:
                    raise _FieldError(("cameras", name, "detector"), error.message) from None
            elif camera.detector not in self.detectors and camera.detector not in BUILTIN_DETECTORS:
                known = [*self.detectors, *BUILTIN_DETECTORS, "remote://HOST:PORT"]
                raise _FieldError(
                    ("cameras", name, "detector"),
                    f"unknown detector '{camera.detector}'; use one of {', '.join(known)}",
                )
        return self

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> Config:
        """A remote detector's fallback is a local detector: one of detectors:, or a built-in."""
        for name, detector in self.detectors.items():
            fallback = detector.fallback
            if fallback is None:
                continue
            named = self.detectors.get(fallback)
            if named is None and fallback not in BUILTIN_DETECTORS:
                known = [key for key, other in self.detectors.items() if other.type != REMOTE] + list(BUILTIN_DETECTORS)
                raise _FieldError(
                    ("detectors", name, "fallback"), f"unknown detector '{fallback}'; use one of {', '.join(known)}"
                )
            if named is not None and named.type == REMOTE:
                raise _FieldError(
                    ("detectors", name, "fallback"),
                    f"'{fallback}' is remote too; a fallback must run here, when the network may be down",
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
        location, message = location + cause.location, str(cause)  # the cause's path is relative to its model
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
