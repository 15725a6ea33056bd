"""Running a whole configuration: every camera's pipeline side by side, their outputs, and shutdown."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from edgewatch.analytics.camera import CameraAnalytics
from edgewatch.config import CameraConfig, Config
from edgewatch.data.capture import RetrainingCapture
from edgewatch.errors import EdgewatchError
from edgewatch.models import Detector, load_detector
from edgewatch.pipeline import Pipeline, PipelineStats, Sink
from edgewatch.shutdown import Interrupted, Shutdown
from edgewatch.sinks import EventLogWriter, JsonLinesWriter, RawVideoPipe, WindowDisplay, open_media_writer
from edgewatch.sinks.broker import EmbeddedBroker
from edgewatch.sinks.files import refuse_outputs_over_inputs
from edgewatch.sinks.mqtt import MqttPublisher
from edgewatch.sinks.objectstore import open_object_store
from edgewatch.sinks.outbox import Outbox
from edgewatch.sinks.recorder import Recorder
from edgewatch.sinks.store import EventStore
from edgewatch.sinks.webhook import WebhookSender
from edgewatch.sources import Source, open_source
from edgewatch.sources.frames import FrameSelection
from edgewatch.web.hub import LiveHub
from edgewatch.web.server import bind, dashboard_token, serve_dashboard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outputs:
    """What to write, for every camera of a run.

    Attributes:
        video: annotated video or image path (`--out`); with several cameras each gets `<stem>-<camera>`.
        json: per-frame JSON lines (`--json`), shared by all cameras.
        events: event JSON lines (`--events`), shared by all cameras.
        store: keep events and per-minute counts in `<storage.path>/events.sqlite` (config-file runs).
        pipe: raw bgr24 frames on stdout (`--pipe`, one camera only).
        show: a local window per camera (`--show`).
        progress: a progress bar on stderr for files.
        max_frames: overrides each camera's max_frames when set.
    """

    video: str | Path | None = None
    json: Path | None = None
    events: Path | None = None
    store: bool = False
    pipe: bool = False
    show: bool = False
    progress: bool = True
    max_frames: int | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int
    stats: list[PipelineStats]


def camera_detector(config: Config, camera: CameraConfig, frame_size: tuple[int, int] | None = None) -> Detector:
    """The camera's detector; a model of dynamic input size is sized for frames of `frame_size`."""
    return named_detector(config, camera.detector, frame_size)


def named_detector(config: Config, name: str, frame_size: tuple[int, int] | None = None) -> Detector:
    """A detector by its key under `detectors:` (a remote one with its fallback, made first), a built-in
    name, or a server's address."""
    named = config.detectors.get(name)
    if named is None:
        return load_detector(name)
    options = named.options()
    if named.fallback is not None:
        options["fallback"] = named_detector(config, named.fallback, frame_size)
        options["fallback_name"] = named.fallback
    return load_detector(named.type, frame_size=frame_size, **options)


def check_labels(name: str, camera: CameraConfig, detector: Detector) -> None:
    """Refuse labels the camera's config names that its detector never reports (`--only persn`, a line
    for `cars` when the model says `car`): nothing would ever be found. Unchecked when the model's
    names are unknown (all `class_N`)."""
    known = list(detector.labels)
    if not known or all(label == f"class_{index}" for index, label in enumerate(known)):
        return
    named: list[tuple[str, list[str] | None]] = [("labels (--only)", camera.labels), ("filters", list(camera.filters))]
    named += [(f"lines.{line}.labels", config.labels) for line, config in camera.lines.items()]
    named += [(f"zones.{zone}.labels", config.labels) for zone, config in camera.zones.items()]
    for rule in camera.rules:
        named += [(f"rules.{rule.name}.{key}", getattr(rule, key)) for key in ("all_present", "any_present", "labels")]
    for where, labels in named:
        unknown = [label for label in labels or [] if label not in known]
        if unknown:
            raise EdgewatchError(
                f"cameras.{name}.{where}: {', '.join(map(repr, unknown))} is no label of detector {camera.detector}",
                f"its labels: {', '.join(known[:40])}{' ...' if len(known) > 40 else ''}",
            )


#: event types that only some configs can raise, and the key that makes them possible
EVENTS_NEED = {"incident": "rules", "line_crossing": "lines", "zone": "zones", "state": "state"}


def warn_of_records_that_never_start(name: str, camera: CameraConfig) -> None:
    """A `record:` whose events cannot happen records nothing, silently: say so at start, with the fix."""
    if camera.record is None:
        return
    events = camera.record.events
    missing = [
        EVENTS_NEED[event] for event in events if event in EVENTS_NEED and not getattr(camera, EVENTS_NEED[event])
    ]
    if len(missing) == len(events):
        log.warning(
            "cameras.%s.record records %s events, and the camera has no %s: nothing will be recorded (add %s, "
            "or record objects: record: {events: [object]})",
            name, " or ".join(events), " or ".join(missing), " or ".join(f"{key}:" for key in missing),
        )  # fmt: skip


def detector_files(config: Config) -> list[str]:
    """The model and label files the config's detectors read."""
    files = []
    for detector in config.detectors.values():
        for key in ("path", "labels"):
            value = detector.options().get(key)
            if isinstance(value, str | Path):
                files.append(str(value))
    return files


def _start_mqtt(config: Config, resources: ExitStack, page: str | None = None) -> MqttPublisher:
    """The publisher, and the embedded broker first when asked for; both closed by `resources`."""
    mqtt = config.mqtt
    assert mqtt is not None
    host, port = mqtt.host, mqtt.port
    if host == "embedded":
        broker = resources.enter_context(EmbeddedBroker("127.0.0.1", port))
        host, port = broker.host, broker.port
    outbox = Outbox(Path(config.storage.path) / "mqtt-outbox.sqlite")
    rules = {name: [rule.name for rule in camera.rules] for name, camera in config.cameras.items()}
    publisher = MqttPublisher(mqtt, outbox, rules, host=host, port=port, instance=config.instance, page=page).start()
    resources.callback(publisher.close)
    return publisher


def camera_analytics(name: str, camera: CameraConfig, source: Source, detector: Detector) -> CameraAnalytics | None:
    """Tracking and counting for a video, webcam or stream; separate pictures have no motion to follow."""
    if source.info.stills:
        return None
    min_score = detector.default_min_score if camera.min_score is None else camera.min_score
    return CameraAnalytics(
        name, camera, min_score=min_score, fps=source.info.fps, threshold=max(min_score, detector.default_threshold)
    )


def _video_path(base: str | Path, camera: str, cameras: int) -> str | Path:
    """`--out` for one camera of several: `out.mp4` becomes `out-<camera>.mp4`; a folder stays."""
    path = Path(base)
    if cameras == 1 or path.is_dir() or str(base).endswith("/"):
        return base
    return path.with_name(f"{path.stem}-{camera}{path.suffix}")


@dataclass(slots=True)
class _Camera:
    """One camera's opened input, before its outputs exist."""

    name: str
    config: CameraConfig
    source: Source
    detector: Detector
    selection: FrameSelection


def run_config(
    config: Config,
    outputs: Outputs,
    inputs: tuple[str | Path, ...] = (),
    port_option: str = "--serve",
    on_serving: Callable[[str], None] | None = None,
) -> RunResult:
    """Open every camera, run them side by side until their inputs end or a signal arrives.

    Everything that can be wrong with the input (sources, models, the page's address) is found before any
    output is opened, and no output may be an input (`inputs` names more, such as the config file), so a
    bad run leaves the user's files as they were. Outputs are closed, and so finished, on every way out,
    errors included. A signal while starting ends the run with its exit code and nothing written.

    Args:
        port_option: the option that set the page's port, for the message when it cannot be had.
        on_serving: called with the page's URL once it answers (the demo prints it then).
    """
    if outputs.pipe and len(config.cameras) > 1:
        raise EdgewatchError("--pipe takes one camera, and the config has several", "use --out per camera instead")
    with Shutdown() as shutdown, ExitStack() as resources:
        try:
            return _run(config, outputs, inputs, shutdown, resources, port_option, on_serving)
        except Interrupted:
            log.info("stopped while starting; nothing was written")
            return RunResult(shutdown.exit_code, [])


def _run(
    config: Config,
    outputs: Outputs,
    inputs: tuple[str | Path, ...],
    shutdown: Shutdown,
    resources: ExitStack,
    port_option: str,
    on_serving: Callable[[str], None] | None,
) -> RunResult:
    cameras = []
    for name, camera in config.cameras.items():
        source: Source = resources.enter_context(open_source(camera.source, open_timeout=camera.open_timeout))
        shutdown.check()
        detector = camera_detector(config, camera, (source.info.width, source.info.height))
        resources.callback(detector.close)
        check_labels(name, camera, detector)
        warn_of_records_that_never_start(name, camera)
        shutdown.check()
        selection = FrameSelection(
            stride=camera.stride, fps=camera.fps, realtime=camera.realtime, loop=camera.loop,
            max_frames=outputs.max_frames or camera.max_frames,
        )  # fmt: skip
        cameras.append(_Camera(name, camera, source, detector, selection))
    videos = (
        {item.name: _video_path(outputs.video, item.name, len(cameras)) for item in cameras} if outputs.video else {}
    )
    refuse_outputs_over_inputs(
        [("--json", outputs.json), ("--events", outputs.events), *(("--out", video) for video in videos.values())],
        [*inputs, *(camera.source for camera in config.cameras.values()), *detector_files(config)],
    )

    if config.dashboard is not None:  # a missing or weak token, or a taken port, is said before the store is made
        token = dashboard_token(config.dashboard)
        page_socket = resources.enter_context(bind(config.dashboard.host, config.dashboard.port, port_option))
    shared: list[Sink] = []
    store = None
    if outputs.store:
        store = EventStore(Path(config.storage.path) / "events.sqlite", max_days=config.storage.max_days)
        resources.callback(store.close)
        shared.append(store)
    hub = server = None
    if config.dashboard is not None:
        hub = LiveHub(config.cameras)
        shared.append(hub)
        server = serve_dashboard(config, hub, store, token, page_socket)
        resources.callback(server.close)
        if on_serving is not None:
            on_serving(server.url)
        shutdown.check()
    if config.mqtt is not None:
        shared.append(_start_mqtt(config, resources, page=server.url if server is not None else None))
    uploads = open_object_store(config.storage)
    if uploads is not None:
        resources.callback(uploads.close)
    for hook in config.webhooks:
        sender = WebhookSender(hook)
        resources.callback(sender.close)
        shared.append(sender)
    display = WindowDisplay() if outputs.show else None
    if display is not None:
        resources.callback(display.close)
        shared.append(display)
    shutdown.check()

    # Files last, once nothing else can fail: each is written beside its name and renamed when done.
    if outputs.json is not None:
        shared.append(resources.enter_context(contextlib.closing(JsonLinesWriter(outputs.json))))
    if outputs.events is not None:
        shared.append(resources.enter_context(contextlib.closing(EventLogWriter(outputs.events))))
    pipelines = []
    recorders: list[Recorder] = []
    for item in cameras:
        camera, source, detector = item.config, item.source, item.detector
        fps = item.selection.output_fps(source.info.fps)
        sinks = list(shared)
        if item.name in videos:
            writer = open_media_writer(videos[item.name], fps, source.info.frame_count == 1)
            sinks.append(resources.enter_context(contextlib.closing(writer)))
        if outputs.pipe:
            sinks.append(resources.enter_context(contextlib.closing(RawVideoPipe())))
        if camera.capture is not None:
            preprocess = getattr(detector, "preprocess", None)  # model files know their input size
            input_size = preprocess.input_size if preprocess is not None else None
            capture = RetrainingCapture(item.name, camera.capture, config.storage, detector.labels, input_size)
            sinks.append(resources.enter_context(contextlib.closing(capture)))
        if camera.record is not None and not source.info.stills:
            recorder = Recorder(
                item.name, camera.record, config.storage, fps, on_saved=uploads.enqueue if uploads is not None else None
            )
            sinks.append(resources.enter_context(contextlib.closing(recorder)))
            recorders.append(recorder)
        pipeline = Pipeline(
            source, detector, camera=item.name, selection=item.selection, min_score=camera.min_score,
            labels=camera.labels, sinks=sinks, analytics=camera_analytics(item.name, camera, source, detector),
            progress=outputs.progress,
        )  # fmt: skip
        pipelines.append(pipeline)
        if hub is not None:
            hub.attach(item.name, pipeline)
    if hub is not None:
        for sink in shared:
            if isinstance(sink, MqttPublisher):
                hub.watch_queue("mqtt", sink.pending)

    for pipeline in pipelines:
        pipeline.start()
    try:
        _wait_all(pipelines, display, shutdown)
    finally:
        # Every stage must have ended before the outputs close, on errors too.
        for pipeline in pipelines:
            pipeline.stop()
        for pipeline in pipelines:
            pipeline.join()
    stats = [pipeline.wait() for pipeline in pipelines]
    if server is not None and not shutdown.requested:
        for recorder in recorders:
            recorder.close()  # the last clips, so the page can show them while it serves on
        log.info("input ended; still serving %s until Ctrl-C", server.url)
        while not shutdown.requested:
            time.sleep(0.1)
    if shutdown.requested:
        log.info("stopping on a signal")
    for item in stats:
        log.info(
            "%s: %d frames in %.1f s (%.1f fps, detector %.1f ms/frame, %d dropped, %d reconnects)",
            *(item.camera, item.frames, item.seconds, item.fps),
            *(item.mean_inference_ms, item.dropped, item.reconnects),
        )
    for pipeline in pipelines:
        if pipeline.final_stats is not None:
            log.info("%s: %s", pipeline.camera, summary(pipeline.final_stats))
    return RunResult(shutdown.exit_code, stats)


def _wait_all(pipelines: list[Pipeline], display: WindowDisplay | None, shutdown: Shutdown) -> None:
    """Wait on the main thread, where signals arrive and windows must be drawn; raise the first error
    as soon as its pipeline ends rather than after the others; stop them all on a signal."""
    while not all(pipeline.finished for pipeline in pipelines):
        if shutdown.requested:
            for pipeline in pipelines:
                pipeline.stop()
        for pipeline in pipelines:
            if pipeline.finished:
                pipeline.wait()
        if display is not None and not display.pump():
            return
        time.sleep(0.01 if display is not None else 0.05)


def summary(stats: dict) -> str:
    """One line of what a camera saw: unique objects, line counts, routes."""
    parts = [", ".join(f"{count} {label}" for label, count in stats["unique"].items()) or "no objects"]
    parts += [f"line {name} in {line['in']} out {line['out']}" for name, line in stats["lines"].items()]
    parts += [f"zone {name} peak {zone['max_occupancy']}" for name, zone in stats["zones"].items()]
    return "; ".join(parts)
