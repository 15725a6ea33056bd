"""Live video: how late the live page's MJPEG stream shows a frame, and what 0, 1 or 5 viewers cost.

One process serves a real pipeline with the real web server, as `edgewatch run --serve` would: a
synthetic 1280x720 street scene at 15 fps (`SyntheticSource(StreetScene(...))`, `FrameSelection(realtime=
True, loop=True)`), a detector (`street` unless `--detector` names another), and a `LiveHub` sink served
by `WebServer(create_app(hub), "127.0.0.1", 0)`. Viewers are separate processes that read
`/api/cameras/bench/stream.mjpeg` with httpx, so their CPU is not the server's.

* Latency (glass to glass, on loopback). The source hands out frame n at t0 + n/15 s, as a camera would,
  and at that moment draws the wall-clock time in milliseconds into the picture, before the detector
  sees it: 32 bits as 32 black or white blocks of 40x24 pixels along the top edge, with the complement
  underneath (a block pair that does not read clearly black over white, or white over black, makes the
  frame unreadable instead of wrong; JPEG cannot blur blocks this big into the other colour). One viewer
  decodes every JPEG with OpenCV, reads the stamp and subtracts it from the clock. Also shown, from
  two sinks on either side of the hub in the server: the age of the frame when the delivery thread gets
  it (source, queues, detector) and once the hub has drawn and encoded it. Target: <= 300 ms.
* CPU of serving. With 0, 1 and 5 viewers connected (viewers only read the bytes, they do not decode),
  the server process's CPU time (`time.process_time()`) over equal windows, the JPEGs the hub encoded
  per second (`CameraFeed.encoded`: once per frame whatever the number of viewers) and the frames each
  viewer received. Windows run in the order 0, 1, 5 then 5, 1, 0, and so on for `--rounds`, so a drift
  in the machine's load hits every count alike; the ratios compare windows of one run. A breakdown by
  thread (from /proc/self/task) shows where serving spends: the delivery thread, which draws and
  encodes, and the web threads (uvicorn's event loop, and the AnyIO worker threads in which Starlette
  runs each stream's generator). After each window the viewers close their streams, and the benchmark
  checks that the hub counts them gone within `--release-wait` seconds; where it does not, it runs
  `gc.collect()` (and says so) so that the next window has the viewers it should.

`--live` marks the source live, as a camera or RTSP stream is: the detector then always takes the newest
frame and older ones are dropped, where a file played in realtime queues them (up to 4, and the
`street` detector takes up to 8 at once when behind). `--rounds 0` measures the latency only.

Run it from the repository root (about 2 minutes with the defaults):

    .venv/bin/python benchmarks/stream.py
    .venv/bin/python benchmarks/stream.py --live --rounds 0        # latency only, as a live camera
    .venv/bin/python benchmarks/stream.py --detector motion --window 15 --rounds 3

edgewatch itself is imported inside the server's functions only: viewer processes start by re-importing
this file (multiprocessing's spawn), and should not pay edgewatch's import (about 2 s of CPU each).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.util
import math
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import httpx
import numpy as np
import starlette
import uvicorn

from cpu import machine_busy_seconds

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from edgewatch.pipeline.result import FrameResult
    from edgewatch.sources.base import Picture, SourceInfo
    from edgewatch.web.hub import CameraFeed

CAMERA = "bench"
WIDTH, HEIGHT, FPS = 1280, 720, 15.0
TARGET_MS = 300.0
VIEWER_COUNTS = (0, 1, 5)

# --------------------------------------------------------------------------------------------------
# The stamp: wall-clock milliseconds (mod 2**32) drawn as big blocks, readable through JPEG.

STAMP_BITS = 32
STAMP_BLOCK_H = 24
STAMP_CONTRAST = 96  # grey levels a block pair must differ by to count as read


def wall_ms() -> float:
    return time.time() * 1000.0


def draw_stamp(image: np.ndarray, ms: int) -> None:
    """Bit i of `ms` as block i of the top row (white for 1), its complement in the row below."""
    block_w = image.shape[1] // STAMP_BITS
    bits = (ms >> np.arange(STAMP_BITS - 1, -1, -1)) & 1
    row = np.repeat(np.where(bits == 1, 255, 0).astype(np.uint8), block_w)
    image[:STAMP_BLOCK_H, : row.size] = row[None, :, None]
    image[STAMP_BLOCK_H : 2 * STAMP_BLOCK_H, : row.size] = (255 - row)[None, :, None]


def read_stamp(image: np.ndarray) -> int | None:
    """The milliseconds `draw_stamp` drew, or None when a block pair is unclear (drawn over, say)."""
    block_w = image.shape[1] // STAMP_BITS
    strip = image[: 2 * STAMP_BLOCK_H, : block_w * STAMP_BITS].mean(axis=2)
    # the middle half of every block, away from the edges JPEG smears
    blocks = strip.reshape(2, STAMP_BLOCK_H, STAMP_BITS, block_w)
    quarter_h, quarter_w = STAMP_BLOCK_H // 4, block_w // 4
    middles = blocks[:, quarter_h:-quarter_h, :, quarter_w:-quarter_w].mean(axis=(1, 3))
    difference = middles[0] - middles[1]
    if np.abs(difference).min() < STAMP_CONTRAST:
        return None
    return int(((difference > 0).astype(np.int64) << np.arange(STAMP_BITS - 1, -1, -1)).sum())


def age_ms(stamp: int, now_ms: float) -> float:
    return (now_ms - stamp) % 2**STAMP_BITS


# --------------------------------------------------------------------------------------------------
# Viewers: each in its own process, so the server's CPU time is the server's alone.


def take_parts(buffer: bytearray) -> Iterator[bytes]:
    """The whole JPEGs at the start of `buffer`, a multipart/x-mixed-replace body as the app writes it
    (a Content-Length per part), each removed from the buffer as it is taken."""
    while (end := buffer.find(b"\r\n\r\n")) >= 0:
        headers = bytes(buffer[:end]).decode("latin-1").lower().split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in headers if line.startswith("content-length:"))
        start = end + 4
        if len(buffer) < start + length:
            return
        yield bytes(buffer[start : start + length])
        del buffer[: start + length + 2]  # the part and the CRLF after it


def mjpeg_parts(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The JPEGs of an MJPEG body, as its chunks arrive."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        yield from take_parts(buffer)


@dataclass(slots=True)
class Watched:
    """What one viewer saw."""

    frames: int = 0
    bytes: int = 0
    received_at: list[float] = field(default_factory=list)  # wall-clock seconds of each picture's arrival
    seconds: float = 0.0
    unreadable: int = 0
    #: per readable picture: (time since the first picture, age when received, age when decoded), in ms
    ages: list[tuple[float, float, float]] = field(default_factory=list)
    readable_at: list[float] = field(default_factory=list)  # when each of those arrived, wall-clock seconds
    cpu_seconds: float = 0.0  # the viewer process's CPU time, start-up included
    error: str | None = None


def watch(url: str, decode: bool, seconds: float | None, stop: Event, results: Any) -> None:
    """Read the stream until `stop` is set or `seconds` have passed; put a `Watched` on `results`."""
    seen = Watched()
    started = time.monotonic()
    first: float | None = None
    try:
        with httpx.Client(timeout=httpx.Timeout(10.0)) as client, client.stream("GET", url) as response:
            response.raise_for_status()
            for jpeg in mjpeg_parts(response.iter_raw()):
                received = wall_ms()
                first = received if first is None else first
                seen.received_at.append(received / 1000)
                seen.frames += 1
                seen.bytes += len(jpeg)
                if decode:
                    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    stamp = read_stamp(image)
                    decoded = wall_ms()
                    if stamp is None:
                        seen.unreadable += 1
                    else:
                        seen.ages.append((received - first, age_ms(stamp, received), age_ms(stamp, decoded)))
                        seen.readable_at.append(received / 1000)
                if stop.is_set() or (seconds is not None and time.monotonic() - started >= seconds):
                    break
    except Exception as error:  # reported by the server side, which decides
        seen.error = f"{type(error).__name__}: {error}"
    seen.seconds = time.monotonic() - started
    seen.cpu_seconds = time.process_time()
    results.put(seen)


class Viewers:
    """Starts `count` viewer processes on one stream (decoding each picture with `decode`, for `seconds`
    or until stopped); `stop()` ends them and returns what each saw, `collect()` waits for them to end."""

    def __init__(self, url: str, count: int, decode: bool = False, seconds: float | None = None) -> None:
        self.count = count
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results = context.Queue()
        self._processes = [
            context.Process(target=watch, args=(url, decode, seconds, self._stop, self._results), daemon=True)
            for _ in range(count)
        ]
        for process in self._processes:
            process.start()

    def cpu_seconds(self) -> float:
        """CPU time the viewer processes have used so far (from /proc; NaN where unreadable)."""
        return sum(process_cpu_seconds(process.pid) for process in self._processes if process.pid is not None)

    def stop(self, timeout: float = 30.0) -> list[Watched]:
        self._stop.set()
        return self.collect(timeout)

    def collect(self, timeout: float) -> list[Watched]:
        """What each saw, once they have ended (by themselves after `seconds`, or by `stop()`)."""
        deadline = time.monotonic() + timeout
        seen = []
        for _ in self._processes:
            with contextlib.suppress(queue.Empty):
                seen.append(self._results.get(timeout=max(0.1, deadline - time.monotonic())))
        for process in self._processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        if len(seen) < self.count or any(watched.error for watched in seen):
            errors = [watched.error for watched in seen if watched.error]
            raise SystemExit(f"{self.count - len(seen)} viewer(s) never reported; errors: {errors}")
        return seen


# --------------------------------------------------------------------------------------------------
# The server side: a stamping camera, probes in the sink list, CPU by thread.


class StampedSource:
    """A source (the `Source` interface) that hands out `inner`'s pictures at `fps`, as a camera
    would, and draws the wall-clock time into each at the moment it leaves."""

    def __init__(self, inner: Any, fps: float, live: bool = False) -> None:
        self.inner = inner
        self.info: SourceInfo = dataclasses.replace(inner.info, live=live)
        self.reconnects = 0
        self._period = 1.0 / fps
        self._first: float | None = None
        self._sent = 0

    def read(self) -> Picture | None:
        picture = self.inner.read()
        if picture is None:
            return None
        now = time.monotonic()
        if self._first is None:
            self._first = now
        due = self._first + self._sent * self._period
        if due > now:
            time.sleep(due - now)
        elif self.info.live:  # a camera that was not read in time has moved on: no burst to catch up
            self._sent = math.floor((now - self._first) / self._period)
        # For a file, `FrameSelection(realtime=True)` paces by the same clock, started just before the
        # first read, so it adds no wait after this one; like it, a late reader gets the frames it
        # missed at once.
        draw_stamp(picture.image, int(wall_ms()) % 2**STAMP_BITS)
        self._sent += 1
        return picture

    def skip(self) -> bool:
        return self.read() is not None

    def rewind(self) -> bool:
        return bool(self.inner.rewind())

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        self.inner.close()


class AgeProbe:
    """A sink that notes how old each frame's stamp is when the delivery thread reaches it: (wall-clock
    seconds, age in ms)."""

    def __init__(self) -> None:
        self.ages: list[tuple[float, float]] = []
        self.recording = False

    def write(self, result: FrameResult) -> None:
        if self.recording:
            stamp = read_stamp(result.frame.image)
            if stamp is not None:
                now = wall_ms()
                self.ages.append((now / 1000, age_ms(stamp, now)))

    def close(self) -> None:
        pass


def thread_cpu_seconds() -> dict[int, float]:
    """CPU time (user + system) of each of this process's threads, by native id, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            found[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of one process, from /proc (NaN where unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_group(name: str) -> str:
    if name == f"{CAMERA}:deliver":
        return "deliver"
    if name == "web" or name.startswith("AnyIO worker"):
        return "web"
    return "other"


@dataclass(frozen=True, slots=True)
class Window:
    """One timed window with a given number of viewers."""

    viewers: int
    seconds: float
    cpu_seconds: float
    by_group: dict[str, float]  # CPU seconds: deliver (draws and encodes), web, other (the rest)
    machine_seconds: float
    viewers_cpu_seconds: float
    encoded: int
    frames: int
    received: list[int]  # frames each viewer received during the window
    received_bytes: int
    viewers_at_start: int
    viewers_at_end: int
    #: how long the hub took to count the viewers gone after they closed (None: not within the wait)
    release_seconds: float | None
    #: whether it took a full garbage collection (`gc.collect()`) to count them gone
    released_by_gc: bool

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def others_cores(self) -> float:
        """What the rest of the machine used meanwhile: neither the server nor its viewers."""
        return max(0.0, self.machine_seconds - self.cpu_seconds - self.viewers_cpu_seconds) / self.seconds

    def ms_per_frame(self, group: str | None = None) -> float:
        """CPU milliseconds per frame the pipeline delivered: the whole server's, or one thread group's."""
        used = self.cpu_seconds if group is None else self.by_group[group]
        return used * 1000 / max(1, self.frames)

    @property
    def mbit_per_viewer(self) -> float:
        return self.received_bytes * 8 / 1e6 / self.seconds / max(1, self.viewers)

    @property
    def encodes_per_second(self) -> float:
        return self.encoded / self.seconds

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds


def wait_for(condition: Any, timeout: float) -> float:
    """Poll `condition()` until true; the seconds it took (`inf` on timeout)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            return math.inf
        time.sleep(0.02)
    return time.monotonic() - started


def measure_window(
    feed: CameraFeed, url: str, viewers: int, seconds: float, settle: float, release_wait: float
) -> Window:
    group_of = {thread.native_id: thread_group(thread.name) for thread in threading.enumerate()}
    clients = Viewers(url, viewers) if viewers else None
    if wait_for(lambda: feed.viewers == viewers, 60.0) == math.inf:
        raise SystemExit(f"the hub counts {feed.viewers} viewers, expected {viewers}")
    time.sleep(settle)
    at_start = feed.viewers
    threads, machine = thread_cpu_seconds(), machine_busy_seconds()
    watching = clients.cpu_seconds() if clients else 0.0
    encoded, frames, wall, cpu = feed.encoded, feed.frames, time.monotonic(), time.process_time()
    opened = time.time()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    closed = time.time()
    encoded, frames = feed.encoded - encoded, feed.frames - frames
    machine = machine_busy_seconds() - machine
    watching = (clients.cpu_seconds() if clients else 0.0) - watching
    after = thread_cpu_seconds()
    at_end = feed.viewers
    group_of.update({thread.native_id: thread_group(thread.name) for thread in threading.enumerate()})
    by_group = {"deliver": 0.0, "web": 0.0}
    for tid, used in after.items():
        group = group_of.get(tid, "other")
        if group != "other":
            by_group[group] += used - threads.get(tid, 0.0)
    by_group["other"] = cpu - by_group["deliver"] - by_group["web"]
    received: list[int] = []
    received_bytes = 0
    released: float | None = 0.0
    by_gc = False
    if clients is not None:
        seen = clients.stop()
        # pictures that arrived within the window (one clock: the same machine)
        received = [sum(opened <= at < closed for at in watched.received_at) for watched in seen]
        received_bytes = sum(
            watched.bytes * count // max(1, watched.frames) for watched, count in zip(seen, received, strict=True)
        )
        released = wait_for(lambda: feed.viewers == 0, release_wait)
        if released == math.inf:
            # a closed stream's generator sits in a reference cycle (see docs/benchmarks.md) and is only
            # closed by a full collection; run one so the next window has the viewers it should
            released, by_gc = None, True
            gc.collect()
            if wait_for(lambda: feed.viewers == 0, 10.0) == math.inf:
                raise SystemExit(f"the hub still counts {feed.viewers} viewers after they all closed")
    return Window(
        viewers,
        wall,
        cpu,
        by_group,
        machine,
        watching,
        encoded,
        frames,
        received,
        received_bytes,
        at_start,
        at_end,
        released,
        by_gc,
    )


@dataclass(frozen=True, slots=True)
class Latency:
    received: list[float]
    decoded: list[float]
    delivered: list[float]  # server side: the delivery thread has the frame (source, queues, detector)
    encoded: list[float]  # server side: the hub has drawn and encoded it
    first_picture_age: float  # the first picture a new viewer gets, in ms
    others_cores: float  # what other processes used meanwhile (neither the server nor the viewer)
    frames: int
    unreadable: int
    seconds: float


def measure_latency(url: str, before: AgeProbe, after: AgeProbe, seconds: float, skip: float) -> Latency:
    """One decoding viewer for `seconds`. The pictures it got in the first `skip` seconds after its first
    are left out (the first is the hub's latest picture, encoded for an earlier viewer, maybe long ago),
    and so are the probes' frames outside the time the kept ones arrived."""
    before.ages.clear()
    after.ages.clear()
    before.recording = after.recording = True
    machine, cpu = machine_busy_seconds(), time.process_time()
    (seen,) = Viewers(url, 1, decode=True, seconds=seconds).collect(timeout=seconds + 30)
    machine, cpu = machine_busy_seconds() - machine, time.process_time() - cpu
    before.recording = after.recording = False
    kept = [index for index, (since, _, _) in enumerate(seen.ages) if since >= skip * 1000]
    arrived = [seen.readable_at[index] for index in kept]

    def during(ages: list[tuple[float, float]]) -> list[float]:
        return [age for at, age in ages if arrived and arrived[0] - 1.0 <= at <= arrived[-1]]

    return Latency(
        received=[seen.ages[index][1] for index in kept],
        decoded=[seen.ages[index][2] for index in kept],
        delivered=during(before.ages),
        encoded=during(after.ages),
        first_picture_age=seen.ages[0][1] if seen.ages and seen.ages[0][0] == 0 else math.nan,
        others_cores=max(0.0, machine - cpu - seen.cpu_seconds) / seen.seconds,
        frames=seen.frames,
        unreadable=seen.unreadable,
        seconds=seen.seconds,
    )


# --------------------------------------------------------------------------------------------------
# Reporting


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def latency_table(latency: Latency) -> str:
    def row(name: str, values: Sequence[float]) -> list[str]:
        stats = [statistics.fmean(values) if values else math.nan, *(percentile(values, q) for q in (50, 95, 100))]
        return [name, str(len(values)), *(f"{value:.0f}" for value in stats)]

    return markdown(
        ["frame age, ms (from leaving the source)", "frames", "mean", "p50", "p95", "max"],
        [
            row("delivery thread has it (queues + detector)", latency.delivered),
            row("hub has drawn and encoded it", latency.encoded),
            row("viewer has received it", latency.received),
            row("**viewer has decoded it (glass to glass)**", latency.decoded),
        ],
    )


def cpu_table(windows: list[Window]) -> str:
    """One row per number of viewers: the mean over its windows (the range where it matters)."""
    by_count = {count: [w for w in windows if w.viewers == count] for count in VIEWER_COUNTS}

    def cell(count: int, value: Callable[[Window], float], digits: int, spread: bool = False) -> str:
        values = [value(w) for w in by_count[count]]
        text = f"{statistics.fmean(values):.{digits}f}"
        return f"{text} ({min(values):.{digits}f}–{max(values):.{digits}f})" if spread else text

    rows = []
    for count in VIEWER_COUNTS:
        got = [n / w.seconds for w in by_count[count] for n in w.received]
        rows.append(
            [
                str(count),
                cell(count, lambda w: w.frames_per_second, 1),
                cell(count, lambda w: w.encodes_per_second, 1),
                f"{min(got):.1f}–{max(got):.1f}" if got else "–",
                cell(count, lambda w: w.cores, 2, spread=True),
                cell(count, lambda w: w.ms_per_frame(), 1, spread=True),
                cell(count, lambda w: w.ms_per_frame("deliver"), 2),
                cell(count, lambda w: w.ms_per_frame("web"), 2),
                cell(count, lambda w: w.mbit_per_viewer, 1) if count else "–",
                cell(count, lambda w: w.viewers_cpu_seconds / w.seconds, 2) if count else "–",
                cell(count, lambda w: w.others_cores, 2, spread=True),
            ]
        )
    header = [
        "viewers",
        "frames/s",
        "JPEGs encoded/s",
        "frames/s each viewer got",
        "server CPU, cores (range)",
        "server CPU, ms/frame (range)",
        "deliver thread, ms/frame",
        "web threads, ms/frame",
        "Mbit/s per viewer",
        "viewers' CPU, cores",
        "other processes, cores (range)",
    ]
    return markdown(header, rows)


@dataclass(frozen=True, slots=True)
class Ratio:
    """5 viewers / 1 viewer of one measure: over all windows, and within each round."""

    name: str
    value: float
    per_round: list[float]

    def line(self) -> str:
        rounds = ", ".join(f"{ratio:.2f}" for ratio in self.per_round)
        return f"5 viewers / 1 viewer, {self.name}: {self.value:.2f} (per round: {rounds})"


def ratios(windows: list[Window]) -> list[Ratio]:
    """Rounds hold one window of each count, so a round's ratio compares windows minutes apart at most."""
    measures: list[tuple[str, Callable[[Window], float]]] = [
        ("server CPU, cores", lambda w: w.cores),
        ("server CPU per frame", lambda w: w.ms_per_frame()),
        ("serving CPU per frame (deliver + web threads)", lambda w: w.ms_per_frame("deliver") + w.ms_per_frame("web")),
    ]
    per_round = len(VIEWER_COUNTS)
    rounds = [windows[start : start + per_round] for start in range(0, len(windows), per_round)]
    found = []
    for name, value in measures:

        def of(count: int, among: list[Window], value: Callable[[Window], float] = value) -> float:
            return statistics.fmean(value(w) for w in among if w.viewers == count)

        found.append(Ratio(name, of(5, windows) / of(1, windows), [of(5, r) / of(1, r) for r in rounds]))
    return found


# --------------------------------------------------------------------------------------------------


def released_text(window: Window) -> str:
    if window.released_by_gc:
        return "still counted after the viewers closed, until gc.collect()"
    return f"counted gone {window.release_seconds or 0.0:.2f} s after they closed"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--detector", default="street", help="built-in detector (default street)")
    parser.add_argument("--seed", type=int, default=3, help="the street scene's seed")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of each CPU window (default 10)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of 0, 1, 5 viewers, every other one reversed (0: latency only)"
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="how long the latency viewer watches")
    parser.add_argument(
        "--release-wait", type=float, default=2.0, help="seconds to wait for the hub to count closed viewers gone"
    )
    parser.add_argument(
        "--live", action="store_true", help="mark the source live, as a camera: the detector gets the newest frame"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds between viewers connecting and timing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import edgewatch as ew
    from edgewatch.sources.synthetic import StreetScene, SyntheticSource
    from edgewatch.web.app import create_app
    from edgewatch.web.hub import JPEG_QUALITY, LiveHub
    from edgewatch.web.server import WebServer

    hub, before, after = LiveHub(), AgeProbe(), AgeProbe()
    scene = StreetScene(width=WIDTH, height=HEIGHT, fps=FPS, seconds=30, seed=args.seed)
    source = StampedSource(SyntheticSource(scene), FPS, live=args.live)
    pipeline = ew.Pipeline(
        source,  # type: ignore[arg-type]  # the Source interface, without its base class (see above)
        ew.load_detector(args.detector),
        camera=CAMERA,
        selection=ew.FrameSelection(realtime=True, loop=True),
        sinks=[before, hub, after],
    )
    server = WebServer(create_app(hub), "127.0.0.1", 0).start()
    url = f"{server.url}api/cameras/{CAMERA}/stream.mjpeg"
    pipeline.start()
    try:
        if wait_for(lambda: CAMERA in hub.feeds and hub.feeds[CAMERA].frames > 0, 60.0) == math.inf:
            raise SystemExit("the pipeline delivered no frame in 60 s")
        feed = hub.feeds[CAMERA]
        time.sleep(2.0)  # the detector's first calls are slow
        windows = []
        for round_index in range(args.rounds):
            order = VIEWER_COUNTS if round_index % 2 == 0 else VIEWER_COUNTS[::-1]
            for count in order:
                window = measure_window(feed, url, count, args.window, args.settle, args.release_wait)
                windows.append(window)
                log(
                    f"round {round_index + 1}/{args.rounds}: {count} viewers: {window.cores:.3f} cores"
                    f" (other processes {window.others_cores:.2f}),"
                    f" {window.encodes_per_second:.1f} JPEGs/s, {window.frames_per_second:.1f} frames/s,"
                    f" viewers got {window.received}, hub counted {window.viewers_at_start}→{window.viewers_at_end}"
                    f" viewers; {released_text(window)}"
                )
        log(f"latency: one decoding viewer for {args.latency_seconds:g} s")
        latency = measure_latency(url, before, after, args.latency_seconds, skip=1.0)
        stats = pipeline.stats()
    finally:
        server.close()
        pipeline.stop()
        pipeline.join(10)
        hub.close()

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"  # what uvicorn's "auto" picks
    mode = "as a live camera (newest frame to the detector)" if args.live else "a file played in realtime"
    print(
        f"{WIDTH}x{HEIGHT} synthetic street (seed {args.seed}) at {FPS:g} fps, {mode}; detector {args.detector};"
        f" JPEG quality {JPEG_QUALITY}; uvicorn {uvicorn.__version__} ({http}) on 127.0.0.1, starlette"
        f" {starlette.__version__}; viewers in separate processes (httpx)  \n"
        f"{usable_cpus()} CPUs ({cpu_model()}); Linux {platform.release()}, Python {platform.python_version()},"
        f" OpenCV {cv2.__version__}; pipeline: {stats.frames} frames, {stats.dropped} dropped,"
        f" {stats.mean_inference_ms:.1f} ms mean inference\n"
    )
    decode_ms = statistics.fmean(d - r for r, d in zip(latency.received, latency.decoded, strict=True))
    print(
        f"Latency: {len(latency.decoded)} frames read in {latency.seconds:.0f} s (the first second left out),"
        f" {latency.unreadable} stamps unreadable; decoding took {decode_ms:.1f} ms on average;"
        f" the first picture the viewer got was {latency.first_picture_age:.0f} ms old; other processes used"
        f" {latency.others_cores:.2f} cores meanwhile\n"
    )
    print(latency_table(latency))
    p95 = percentile(latency.decoded, 95)
    print(f"\nglass-to-glass p95 {p95:.0f} ms: target ≤ {TARGET_MS:.0f} ms {'met' if p95 <= TARGET_MS else 'missed'}")
    if not windows:
        return 0
    print(
        f"\nServing: {args.rounds} rounds of {args.window:g} s windows per number of viewers (order 0, 1, 5,"
        " then reversed); mean over the windows, range in brackets; ms/frame: CPU ms per frame delivered\n"
    )
    print(cpu_table(windows))
    print()
    print("  \n".join(ratio.line() for ratio in ratios(windows)))
    closed = [w for w in windows if w.viewers]
    by_gc = sum(w.released_by_gc for w in closed)
    print(
        f"\nViewers closing their streams: the hub counted them gone within {args.release_wait:g} s"
        f" {len(closed) - by_gc} times out of {len(closed)}, and only after gc.collect() {by_gc} times"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
