"""Live video under load: 20 MJPEG viewers and 20 live-numbers pages (SSE) on one camera, for 2 minutes.

The server is the command a user runs, `edgewatch run site.yaml --serve PORT`, on a synthetic 640x360
street scene played in realtime at 25 fps and looped (`synthetic:street`; the cheap `motion` detector
unless `--detector` names another, so that the CPU goes to serving), with stats every second of video
and a counting line, so the live pages get stats and crossing events. The clients are `--processes`
separate processes (so none of their CPU is the server's), each an asyncio loop holding its share of
the streams with httpx: the MJPEG viewers read `/api/cameras/street/stream.mjpeg` and note when each
picture arrived, the SSE pages read `/api/live` and note each message (stats, event) and keep-alive.

Once every stream is open and `--settle` seconds have passed, the benchmark probes the server at the
start, every `--probe-every` seconds and at the end of `--seconds`: frames the pipeline processed (from
`/api/cameras`; while a viewer watches, the hub encodes one JPEG per frame, so this is the most a viewer
can get), events raised (`/metrics`), the server's resident memory (VmRSS) and CPU time (from /proc).
Between two probes it reports the pipeline's frames per second, the pictures per second each viewer got
(lowest, median, highest of the viewers), what each live page got, and the rest of the machine's CPU.

The probes are ordinary requests to the server: where its thread pool is starved they answer late, and
the windows between them are measured between their answers.

Run it from the repository root (about 2.5 minutes with the defaults):

    .venv/bin/python benchmarks/viewers.py
    .venv/bin/python benchmarks/viewers.py --mjpeg 20 --sse 6 --seconds 30 --probe-every 10

Only the server imports edgewatch: the client processes start by re-importing this file (spawn).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cpu import machine_busy_seconds
from stream import take_parts

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

CAMERA = "street"
SITE = """
cameras:
  street:
    source: synthetic:street?seed=3&seconds=60
    realtime: true
    loop: true
    detector: {detector}
    stats_interval: 1
    lines:
      middle: {{points: [[0.5, 0.0], [0.5, 1.0]]}}
"""
ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------------
# Clients: a few processes, each an asyncio loop with many streams.


@dataclass(slots=True)
class Seen:
    """What one process's streams got: arrival times (wall-clock seconds) per stream."""

    pictures: list[list[float]] = field(default_factory=list)  # per MJPEG viewer
    messages: list[list[tuple[float, str]]] = field(default_factory=list)  # per SSE page: (time, kind)
    keep_alives: list[int] = field(default_factory=list)  # per SSE page
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0


async def jpegs(chunks: AsyncIterator[bytes]) -> AsyncIterator[int]:
    """The sizes of the JPEGs of an MJPEG body, as its chunks arrive."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        for part in take_parts(buffer):
            yield len(part)


async def watch_video(client: httpx.AsyncClient, url: str, arrivals: list[float], ready: Any) -> None:
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        ready.put(1)
        async for _ in jpegs(response.aiter_raw()):
            arrivals.append(time.time())


async def watch_live(
    client: httpx.AsyncClient,
    url: str,
    messages: list[tuple[float, str]],
    keep_alives: list[int],
    index: int,
    ready: Any,
) -> None:
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        ready.put(1)
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                messages.append((time.time(), json.loads(line[6:])["kind"]))
            elif line.startswith(":"):
                keep_alives[index] += 1


async def hold_streams(base: str, mjpeg: int, sse: int, stop: Event, ready: Any) -> Seen:
    seen = Seen(pictures=[[] for _ in range(mjpeg)], messages=[[] for _ in range(sse)], keep_alives=[0] * sse)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as client:
        video = f"{base}/api/cameras/{CAMERA}/stream.mjpeg"
        tasks = [asyncio.create_task(watch_video(client, video, arrivals, ready)) for arrivals in seen.pictures]
        tasks += [
            asyncio.create_task(watch_live(client, f"{base}/api/live", messages, seen.keep_alives, index, ready))
            for index, messages in enumerate(seen.messages)
        ]
        while not stop.is_set() and not all(task.done() for task in tasks):
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                seen.errors.append(f"{type(outcome).__name__}: {outcome}")
    return seen


def client_process(base: str, mjpeg: int, sse: int, stop: Event, ready: Any, results: Any) -> None:
    seen = asyncio.run(hold_streams(base, mjpeg, sse, stop, ready))
    seen.cpu_seconds = time.process_time()
    results.put(seen)


# --------------------------------------------------------------------------------------------------
# The server: the command, probed from outside.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Probe:
    at: float  # wall-clock seconds of the answer
    frames: int
    viewers: int
    events: float
    rss_mib: float
    cpu_seconds: float
    machine_seconds: float
    clients_cpu_seconds: float


def probe(base: str, pid: int, clients: list[multiprocessing.Process]) -> Probe:
    machine = machine_busy_seconds()
    cpu = process_cpu_seconds(pid)
    watching = sum(process_cpu_seconds(process.pid) for process in clients if process.pid is not None)
    rss = rss_mib(pid)
    (camera,) = httpx.get(f"{base}/api/cameras", timeout=120).json()
    metrics = httpx.get(f"{base}/metrics", timeout=120).text
    events = sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("edgewatch_events_total{")
    )
    return Probe(time.time(), camera["frames"], camera["viewers"], events, rss, cpu, machine, watching)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if condition():
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} within {timeout:g} s")
        time.sleep(0.1)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (index < total % parts) for index in range(parts)]


def between(times: Sequence[float], start: float, end: float) -> int:
    return sum(start <= at < end for at in times)


def window_lines(start: Probe, end: Probe, seen: list[Seen]) -> dict[str, str]:
    seconds = end.at - start.at
    pictures = [between(arrivals, start.at, end.at) / seconds for part in seen for arrivals in part.pictures]
    pages = [[kind for at, kind in messages if start.at <= at < end.at] for part in seen for messages in part.messages]
    stats = [kinds.count("stats") for kinds in pages]
    events = [kinds.count("event") for kinds in pages]
    cores = (end.cpu_seconds - start.cpu_seconds) / seconds
    clients = (end.clients_cpu_seconds - start.clients_cpu_seconds) / seconds
    machine = (end.machine_seconds - start.machine_seconds) / seconds
    fps = (end.frames - start.frames) / seconds
    rows = {
        "seconds": f"{seconds:.0f}",
        "pipeline frames/s (= JPEGs encoded/s)": f"{fps:.1f}",
        "viewer pictures/s: lowest / median / highest": (
            f"{min(pictures):.1f} / {statistics.median(pictures):.1f} / {max(pictures):.1f}" if pictures else "–"
        ),
        "lowest viewer / pipeline": f"{min(pictures) / fps:.2f}" if pictures and fps else "–",
        "stats messages per page: lowest–highest": f"{min(stats)}–{max(stats)}" if stats else "–",
        "events per page: lowest–highest (raised)": (
            f"{min(events)}–{max(events)} ({end.events - start.events:.0f})" if events else "–"
        ),
        "server RSS at the end, MiB": f"{end.rss_mib:.1f}",
        "server CPU, cores": f"{cores:.2f}",
        "clients' CPU, cores": f"{clients:.2f}",
        "other processes, cores": f"{max(0.0, machine - cores - clients):.2f}",
    }
    return rows


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--detector", default="motion", help="the camera's detector (default motion, cheap: the CPU is the web's)"
    )
    parser.add_argument("--mjpeg", type=int, default=20, help="MJPEG viewers (default 20)")
    parser.add_argument("--sse", type=int, default=20, help="live-numbers pages, SSE (default 20)")
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds measured (default 120)")
    parser.add_argument("--probe-every", type=float, default=60.0, help="seconds between probes (default 60)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the last stream opening and timing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="edgewatch-viewers-") as folder:
        (Path(folder) / "site.yaml").write_text(SITE.format(detector=args.detector))
        command = [sys.executable, "-m", "edgewatch", "run", "site.yaml", "--serve", str(port), "--quiet"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        server = subprocess.Popen(command, cwd=folder, env=environment)
        context = multiprocessing.get_context("spawn")
        stop, ready, results = context.Event(), context.Queue(), context.Queue()
        clients: list[multiprocessing.Process] = []
        try:
            wait_until(lambda: httpx.get(f"{base}/api/cameras", timeout=1).json()[0]["frames"] > 0, 60, "no frame")
            clients = [
                context.Process(target=client_process, args=(base, mjpeg, sse, stop, ready, results), daemon=True)
                for mjpeg, sse in zip(split(args.mjpeg, args.processes), split(args.sse, args.processes), strict=True)
            ]
            for process in clients:
                process.start()
            try:
                for _ in range(args.mjpeg + args.sse):
                    ready.get(timeout=120)
            except queue.Empty:
                raise SystemExit("not every stream opened within 120 s") from None
            log(f"{args.mjpeg} viewers and {args.sse} live pages connected; settling {args.settle:g} s")
            time.sleep(args.settle)
            probes = [probe(base, server.pid, clients)]
            log(f"start: {probes[-1]}")
            started = time.monotonic()
            while (left := args.seconds - (time.monotonic() - started)) > 0.5:
                time.sleep(min(args.probe_every, left))
                probes.append(probe(base, server.pid, clients))
                log(f"{time.monotonic() - started:.0f} s: {probes[-1]}")
            stop.set()
            seen = []
            for _ in clients:
                seen.append(results.get(timeout=60))
            for process in clients:
                process.join(10)
            wait_until(lambda: httpx.get(f"{base}/api/cameras", timeout=5).json()[0]["viewers"] == 0, 10, "viewers")
            left_over = httpx.get(f"{base}/api/cameras", timeout=5).json()[0]["viewers"]
        finally:
            stop.set()
            for process in clients:
                if process.is_alive():
                    process.kill()
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    errors = [error for part in seen for error in part.errors if not error.startswith("CancelledError")]
    print(
        f"`edgewatch run --serve` on a 640x360 synthetic street at 25 fps (realtime, looped, {args.detector} detector);"
        f" {args.mjpeg} MJPEG viewers and {args.sse} SSE pages in {args.processes} client processes (httpx);"
        f" {os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}; httpx"
        f" {httpx.__version__}  \n"
        f"keep-alives per page: {min(k for part in seen for k in part.keep_alives)}–"
        f"{max(k for part in seen for k in part.keep_alives)}; stream errors: {errors or 'none'};"
        f" viewers counted after the clients closed: {left_over}\n"
    )
    windows = [window_lines(a, b, seen) for a, b in itertools.pairwise(probes)]
    if len(probes) > 2:
        windows.append(window_lines(probes[0], probes[-1], seen))
    heads = [f"{a.at - probes[0].at:.0f}–{b.at - probes[0].at:.0f} s" for a, b in itertools.pairwise(probes)]
    if len(probes) > 2:
        heads.append("whole")
    print("| | " + " | ".join(heads) + " |")
    print("|:---|" + "---:|" * len(heads))
    for row in windows[0]:
        print(f"| {row} | " + " | ".join(window[row] for window in windows) + " |")
    rss = ", ".join(f"{p.at - probes[0].at:.0f} s: {p.rss_mib:.1f}" for p in probes)
    print(f"\nserver RSS, MiB: {rss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
