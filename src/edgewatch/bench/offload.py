"""`edgewatch bench offload`: a small model on the device against a big one on a server, over links.

The source's frames are a camera's, at the source's frame rate. A detector works on the newest frame
whenever it is free, as a live pipeline does, and frame i shows the last answer ready by the end of its
frame interval. A slow model or a slow link so costs twice: fewer frames answered, and boxes that lag
behind what is in the picture. That is the "live" F1; the "answered" F1 is that of the answers on the
frames they answered, the model's own accuracy.

Both are against the server model's answers to every frame, sent one at a time with no link between
(the big model's own output, as the issue asks). Links are emulated on loopback by `LinkRelay`
(docs/links.md); `--remote remote://HOST:PORT` measures a real server over the real network instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from edgewatch.errors import EdgewatchError
from edgewatch.evaluate.detection import evaluate
from edgewatch.models import Detector
from edgewatch.sinks.files import write_whole

#: `--profiles` name of the link as it is: the loopback, or the real network to a `remote://` server
NO_LINK = "none"
#: what `--send-less` turns off
OFF = "off"
#: the frame rate of a source that states none (a folder of images)
DEFAULT_FPS = 25.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A detector's answer to one camera frame."""

    frame: int
    ready_s: float  # since the first frame was captured
    latency_ms: float  # from the frame's capture to its answer
    boxes: sv.Detections


@dataclass(frozen=True, slots=True)
class OffloadResult:
    """One row of the table: a model, where it ran, over which link, with or without sending less."""

    where: str  # device or server
    model: str
    link: str
    send_less: str  # off, auto, or the min_change threshold
    frames: int  # camera frames in the run
    answered: int  # frames a detector answered (with send-less, some on the edge from the last boxes)
    sent: int  # frames sent to the server
    p50_ms: float | None  # capture to answer, over the answered frames
    p95_ms: float | None
    fps: float  # answered frames per second
    up_bytes_per_frame: float  # uplink bytes (frames, framing, hello) per camera frame
    up_mb_per_min: float
    down_mb_per_min: float
    f1_answered: float | None
    f1_live: float | None

    @property
    def label(self) -> str:
        if self.where == "device":
            return f"{self.model} on the device"
        return f"{self.model} over {self.link}" + ("" if self.send_less == OFF else f", send less {self.send_less}")


def replay(
    detect: Callable[[np.ndarray], sv.Detections],
    frames: Sequence[np.ndarray],
    fps: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[Answer]:
    """Feed `detect` the newest frame of a camera showing `frames` at `fps`, whenever it is free."""
    answers: list[Answer] = []
    start, last = clock(), -1
    while True:
        now = clock() - start
        newest = int(now * fps)
        if newest >= len(frames):
            return answers
        if newest == last:
            time.sleep(max(0.0, (last + 1) / fps - now))
            continue
        boxes = detect(frames[newest])
        ready = clock() - start
        answers.append(Answer(newest, ready, (ready - newest / fps) * 1000.0, boxes))
        last = newest


def shown(answers: Sequence[Answer], frames: int, fps: float) -> list[sv.Detections | None]:
    """What each camera frame shows: the last answer ready by the end of its interval (None before any)."""
    boxes: list[sv.Detections | None] = []
    ready = iter(sorted(answers, key=lambda answer: answer.ready_s))
    upcoming = next(ready, None)
    current: sv.Detections | None = None
    for frame in range(frames):
        while upcoming is not None and upcoming.ready_s <= (frame + 1) / fps:
            current, upcoming = upcoming.boxes, next(ready, None)
        boxes.append(current)
    return boxes


class Scorer:
    """F1 at IoU 0.5 against the reference boxes of every frame, labels matched by name."""

    def __init__(self, reference: Sequence[sv.Detections]) -> None:
        self.classes = sorted({str(name) for boxes in reference for name in _names(boxes)})
        self.reference = {f"{index}.jpg": self._indexed(boxes) for index, boxes in enumerate(reference)}

    def f1(self, predicted: dict[int, sv.Detections | None]) -> float | None:
        """F1 over the frames in `predicted` (a frame with None predicted nothing)."""
        truth = {f"{frame}.jpg": self.reference[f"{frame}.jpg"] for frame in predicted}
        boxes = {f"{frame}.jpg": self._indexed(found) for frame, found in predicted.items() if found is not None}
        scores = evaluate(truth, boxes, self.classes or ["object"], score=0.0).overall
        return None if scores.expected == 0 else scores.f1

    def _indexed(self, boxes: sv.Detections) -> sv.Detections:
        """`boxes` with `class_id` indexing `self.classes`; labels the reference never has are left out."""
        names = _names(boxes)
        keep = np.array([name in self.classes for name in names], dtype=bool)
        ids = np.array([self.classes.index(name) for name in names[keep]], dtype=np.int64)
        confidence = boxes.confidence[keep] if boxes.confidence is not None else np.ones(int(keep.sum()))
        return sv.Detections(xyxy=boxes.xyxy[keep].reshape(-1, 4), class_id=ids, confidence=confidence)


def _names(boxes: sv.Detections) -> np.ndarray:
    names = boxes.data.get("class_name")
    if names is None:
        return np.array([f"class_{index}" for index in boxes.class_id], dtype=str)
    return np.asarray(names, dtype=str)


def confident(detector: Detector) -> Callable[[np.ndarray], sv.Detections]:
    """`detector.detect` keeping the boxes scoring at least its own min_score, as `run` would."""

    def detect(image: np.ndarray) -> sv.Detections:
        boxes = detector.detect(image)
        if boxes.confidence is None or not len(boxes):
            return boxes
        return boxes[boxes.confidence >= detector.default_min_score]

    return detect


def result(
    where: str,
    model: str,
    link: str,
    send_less: str,
    answers: list[Answer],
    scorer: Scorer,
    fps: float,
    sent: int,
    up_bytes: int,
    down_bytes: int,
) -> OffloadResult:
    frames = len(scorer.reference)
    minutes = frames / fps / 60.0
    latencies = [answer.latency_ms for answer in answers]
    live = shown(answers, frames, fps)
    return OffloadResult(
        where=where,
        model=model,
        link=link,
        send_less=send_less,
        frames=frames,
        answered=len(answers),
        sent=sent,
        p50_ms=statistics.median(latencies) if latencies else None,
        p95_ms=float(np.percentile(latencies, 95)) if latencies else None,
        fps=len(answers) / (frames / fps),
        up_bytes_per_frame=up_bytes / frames,
        up_mb_per_min=up_bytes / 1e6 / minutes,
        down_mb_per_min=down_bytes / 1e6 / minutes,
        f1_answered=scorer.f1({answer.frame: answer.boxes for answer in answers}),
        f1_live=scorer.f1(dict(enumerate(live))),
    )


def verdicts(results: Sequence[OffloadResult]) -> dict[str, str]:
    """For each link: `server` where a row over it shows more of the scene (live F1) than the device's
    model does, else `device`. Live F1 weighs both sides' costs at once: a model's misses, and the
    frames and lag that its latency costs."""
    local = [row.f1_live or 0.0 for row in results if row.where == "device"]
    best_local = max(local, default=0.0)
    links: dict[str, str] = {}
    for row in results:
        if row.where == "server":
            wins = (row.f1_live or 0.0) > best_local
            links[row.link] = "server" if wins or links.get(row.link) == "server" else "device"
    return links


COLUMNS: list[tuple[str, Callable[[OffloadResult], str]]] = [
    ("where", lambda r: r.where),
    ("model", lambda r: r.model),
    ("link", lambda r: r.link),
    ("send less", lambda r: r.send_less),
    ("p50 ms", lambda r: "-" if r.p50_ms is None else f"{r.p50_ms:.0f}"),
    ("p95 ms", lambda r: "-" if r.p95_ms is None else f"{r.p95_ms:.0f}"),
    ("fps", lambda r: f"{r.fps:.1f}"),
    ("sent", lambda r: f"{r.sent}/{r.frames}"),
    ("up kB/frame", lambda r: f"{r.up_bytes_per_frame / 1000:.1f}"),
    ("up MB/min", lambda r: f"{r.up_mb_per_min:.1f}"),
    ("F1 answered", lambda r: "-" if r.f1_answered is None else f"{r.f1_answered:.3f}"),
    ("F1 live", lambda r: "-" if r.f1_live is None else f"{r.f1_live:.3f}"),
]


def table(results: Sequence[OffloadResult], markdown: bool = False) -> str:
    rows = [[cell(row) for _, cell in COLUMNS] for row in results]
    header = [name for name, _ in COLUMNS]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(item) for item in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(item.rjust(width) for item, width in zip(row, widths, strict=True)) for row in [header, *rows]
    )


def write_json(results: Sequence[OffloadResult], about: dict[str, Any], path: Path) -> None:
    rows = [{**asdict(row), "label": row.label} for row in results]
    data = {**about, "verdicts": verdicts(results), "results": rows}
    write_whole(path, (json.dumps(data, indent=1) + "\n").encode())


def write_png(results: Sequence[OffloadResult], title: str, path: Path) -> None:
    """Live F1 against p95 latency (left) and uplink per minute (right), a point and a bar per row."""
    import matplotlib

    matplotlib.use("Agg")  # no screen
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    for row in results:
        marker = "*" if row.where == "device" else ("o" if row.send_less == OFF else "^")
        left.scatter([row.p95_ms or 0.0], [row.f1_live or 0.0], marker=marker, s=80 if marker == "*" else 40)
        left.annotate(row.link if row.where == "server" else "device", (row.p95_ms or 0.0, row.f1_live or 0.0),
                      textcoords="offset points", xytext=(4, 4), fontsize=8)  # fmt: skip
    left.set(xlabel="p95 capture-to-answer latency (ms)", ylabel="live F1 vs the big model", ylim=(0, 1.02),
             title="accuracy of what is shown (o every frame sent, ^ send less, * device)")  # fmt: skip
    names = [row.label.replace(", send less", "\nsend less") for row in results]
    right.barh(names, [row.up_mb_per_min for row in results], color="tab:blue")
    right.set(xlabel="uplink MB per minute", title="what the link carries")
    right.invert_yaxis()
    right.tick_params(axis="y", labelsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    staging = path.with_name(f".{path.name}.tmp.png")
    try:
        figure.savefig(staging, dpi=90)
        staging.replace(path)
    finally:
        pyplot.close(figure)
        staging.unlink(missing_ok=True)


@contextlib.contextmanager
def served(detector: Detector, model: str) -> Iterator[tuple[str, int]]:
    """`detector` served on a free loopback port for the length of the block: its (host, port)."""
    from edgewatch.offload.server import OffloadServer
    from edgewatch.web.security import Hosts
    from edgewatch.web.server import bind

    server = OffloadServer(detector, model, Hosts.bound_to("127.0.0.1"), None)
    with bind("127.0.0.1", 0, "--port") as bound:
        address = bound.getsockname()[:2]
        server.start(bound)
        try:
            yield address
        finally:
            server.close()


def send_less_options(value: str) -> dict[str, Any]:
    """RemoteDetector's options for a `--send-less` value: `auto` or a min_change threshold."""
    if value == "auto":
        return {"min_change": "auto"}
    try:
        threshold = float(value)
    except ValueError:
        raise EdgewatchError(f"--send-less {value}: not auto, off or a number", "e.g. --send-less auto") from None
    if not 0 < threshold <= 255:
        raise EdgewatchError(f"--send-less {value}: a threshold is above 0 and at most 255", "e.g. --send-less 2")
    return {"min_change": threshold}


#: seconds a benchmark's remote detector waits for an answer: a poor link's queue may hold several frames
ANSWER_TIMEOUT_S = 10.0


def check_named(spec: str) -> None:
    """Raises EdgewatchError unless `spec` names a built-in detector or a model file (said before the
    frames are read and the models load)."""
    from edgewatch.models import BUILTIN_DETECTORS, check_model_file

    if spec not in BUILTIN_DETECTORS:
        check_model_file(spec)


def load_named(spec: str, labels: str | None = None) -> Detector:
    """A detector named as `run --detector` names a built-in one, or a model file's path (with its
    `labels` file, where the model holds no names).

    Raises:
        EdgewatchError: neither.
    """
    from edgewatch.models import BUILTIN_DETECTORS, load_detector
    from edgewatch.models.runtimes import runtime_for

    check_named(spec)
    if spec in BUILTIN_DETECTORS:
        return load_detector(spec)
    return load_detector(runtime_for(spec), path=spec, labels=labels)


def measure(
    frames: Sequence[np.ndarray],
    fps: float,
    local: Sequence[tuple[str, Detector]],
    remote_url: str,
    profiles: Sequence[Any],
    send_less: Sequence[str],
    seed: int = 0,
    say: Callable[[str], None] = lambda _: None,
) -> list[OffloadResult]:
    """A device row per model of `local`, then a row per link profile (None: no emulated link) and per
    `send_less` value (`off`, `auto` or a threshold) of the server at `remote_url`.

    Raises:
        EdgewatchError: the server cannot be reached.
    """
    from urllib.parse import urlsplit

    from edgewatch.offload.address import endpoint
    from edgewatch.offload.link import LinkRelay
    from edgewatch.offload.remote import RemoteDetector

    url, token = endpoint(remote_url)
    target = urlsplit(url)
    say("the server's answers to every frame, the reference")
    remote_log = logging.getLogger(RemoteDetector.__module__)
    remote_log.disabled = True  # a server it cannot reach is this function's one line, not a warning too
    try:
        reference_detector = RemoteDetector(url, timeout=ANSWER_TIMEOUT_S, token=token)
    finally:
        remote_log.disabled = False
    try:
        if reference_detector.in_use != "remote":
            raise EdgewatchError(f"cannot reach the server {remote_url}: {reference_detector.reason}",
                                 "start it with edgewatch serve, or give --remote a model to serve here")  # fmt: skip
        detect = confident(reference_detector)
        reference = [detect(frame) for frame in frames]
        model = reference_detector.model or remote_url
    finally:
        reference_detector.close()
    scorer = Scorer(reference)
    rows = []
    for name, detector in local:
        say(f"{name} on the device")
        rows.append(result("device", name, "-", OFF, replay(confident(detector), frames, fps), scorer, fps, 0, 0, 0))
    for profile in profiles:
        for less in send_less:
            link = NO_LINK if profile is None else profile.name
            say(f"{model} over {link}" + ("" if less == OFF else f", send less {less}"))
            options = {} if less == OFF else send_less_options(less)
            with contextlib.ExitStack() as stack:
                relay = None
                address = url
                if profile is not None:
                    relay = LinkRelay(profile, (target.hostname or "127.0.0.1", target.port or 80), seed=seed)
                    stack.enter_context(relay)
                    address = f"ws://{relay.host}:{relay.port}{target.path}"
                remote = RemoteDetector(address, timeout=ANSWER_TIMEOUT_S, token=token, **options)
                stack.callback(remote.close)
                answers = replay(confident(remote), frames, fps)
                up = relay.up_bytes if relay is not None else remote.sent_bytes
                down = relay.down_bytes if relay is not None else 0
                rows.append(result("server", model, link, less, answers, scorer, fps, remote.sent_frames, up, down))
    return rows
