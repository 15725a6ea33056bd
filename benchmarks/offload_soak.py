"""A bounded soak of `edgewatch serve`: N clients for T seconds against one server on loopback.

One `edgewatch serve --detector street --port 0` process, started as a user would. Each client is a
thread of this process speaking the offload protocol (docs/offload.md) over its own WebSocket: it sends
a frame of the synthetic street scene (640x360 JPEGs, encoded before the clock starts), waits for the
answer, and sends the next, as fast as the server answers. The server keeps only each client's newest
frame and batches clients into one model call, so it should answer each client about as often as the
others, and its memory should not grow with time.

Measured: the server's resident memory (VmRSS from /proc) every `--probe` seconds, each client's
answered frames per second, and the spread between the fastest and the slowest client
(max/min - 1). Targets (issue 16): memory flat from start to end, each client within 20% of the others.

Run it from the repository root (2 minutes with the defaults):

    .venv/bin/python benchmarks/offload_soak.py
    .venv/bin/python benchmarks/offload_soak.py --clients 8 --seconds 60 --json /tmp/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
from websockets.sync.client import connect

from edgewatch.offload.protocol import hello, pack_frame, read_answer, read_welcome
from edgewatch.sources import open_source

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Client:
    """One client's thread and what it got."""

    name: str
    answered: int = 0
    dropped: int = 0
    error: str | None = None


def frames_as_jpeg(count: int) -> list[bytes]:
    with open_source("synthetic:street?seconds=8&seed=4") as source:
        images = [source.read().image for _ in range(50 + count)][50:]  # people and cars are in by then
    return [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for image in images]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_client(client: Client, url: str, jpegs: list[bytes], stop: threading.Event) -> None:
    try:
        with connect(url, compression=None, max_size=4 * 1024 * 1024) as connection:
            connection.send(hello(f"soak {client.name}"))
            read_welcome(connection.recv(timeout=30))
            frame = 0
            while not stop.is_set():
                frame += 1
                connection.send(pack_frame(frame, jpegs[frame % len(jpegs)]))
                answer = read_answer(connection.recv(timeout=30))
                client.dropped += int(answer.get("dropped", 0))
                client.answered += 1
    except Exception as error:  # said in the report: a client that failed is a finding, not a crash
        client.error = f"{type(error).__name__}: {error}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--probe", type=float, default=10.0, help="seconds between memory probes")
    parser.add_argument("--detector", default="street")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    jpegs = frames_as_jpeg(100)
    server = subprocess.Popen(
        [sys.executable, "-m", "edgewatch", "serve", "--detector", args.detector, "--port", "0",
         "--max-clients", str(args.clients)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        line = server.stdout.readline() if server.stdout else ""
        found = re.search(r"on (ws://\S+)", line)
        if found is None:
            print(f"the server did not start: {line!r}", file=sys.stderr)
            return 1
        url = found.group(1)
        stop = threading.Event()
        clients = [Client(f"client-{index}") for index in range(args.clients)]
        threads = [threading.Thread(target=run_client, args=(c, url, jpegs, stop), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(3.0)  # connected and past the model's first calls
        start, counts = time.monotonic(), [c.answered for c in clients]
        probes = [(0.0, rss_mib(server.pid))]
        while (elapsed := time.monotonic() - start) < args.seconds:
            time.sleep(min(args.probe, args.seconds - elapsed))
            probes.append((time.monotonic() - start, rss_mib(server.pid)))
        seconds = time.monotonic() - start
        fps = [(c.answered - before) / seconds for c, before in zip(clients, counts, strict=True)]
        stop.set()
        for thread in threads:
            thread.join(35)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)

    spread = max(fps) / min(fps) - 1 if min(fps) > 0 else float("inf")
    figures = {
        "clients": args.clients,
        "seconds": round(seconds, 1),
        "detector": args.detector,
        "cpus": os.cpu_count(),
        "answered_fps": [round(value, 2) for value in fps],
        "total_fps": round(sum(fps), 2),
        "spread": round(spread, 3),
        "dropped": [c.dropped for c in clients],
        "errors": [c.error for c in clients if c.error],
        "rss_mib": [[round(at, 1), round(rss, 1)] for at, rss in probes],
        "rss_growth_mib": round(probes[-1][1] - probes[0][1], 1),
    }
    print(f"{args.clients} clients for {seconds:.0f} s against `edgewatch serve --detector {args.detector}`, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print("| client | answered fps |\n|---|---|")
    for client, value in zip(clients, fps, strict=True):
        print(f"| {client.name} | {value:.2f} |")
    print(f"\nfastest / slowest - 1: {spread:.1%} (target <= 20%); total {sum(fps):.1f} fps")
    print("server RSS, MiB: " + ", ".join(f"{at:.0f} s: {rss:.1f}" for at, rss in probes))
    print(f"growth start to end: {figures['rss_growth_mib']:+.1f} MiB; client errors: {figures['errors'] or 'none'}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
