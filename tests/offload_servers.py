"""For the offload tests: a real `edgewatch serve` started as a user would, raw WebSocket clients that
speak the protocol by hand, JPEGs, and a process's memory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from websockets.sync.client import ClientConnection, connect

from edgewatch.offload.protocol import pack_frame
from media import edgewatch_command


@dataclass
class Served:
    """A running `edgewatch serve`: its URL and port, the process, and its log so far."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text()


@contextlib.contextmanager
def edgewatch_serve(
    folder: Path, *args: str, name: str = "serve", env: dict[str, str] | None = None, stop: int = signal.SIGINT
) -> Iterator[Served]:
    """`edgewatch serve ARGS` (`--detector street --port 0` unless ARGS say otherwise) at the address it
    prints; `stop` at the end, which must end it with 130 (SIGINT) or 143 (SIGTERM). A test that ends it
    itself leaves it so."""
    args = args or ("--detector", "street", "--port", "0")
    log_path = folder / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(edgewatch_command("serve", *args), stdout=subprocess.PIPE, stderr=log,
                                   env=env or server_env())  # fmt: skip
    line = process.stdout.readline().decode()  # printed once it answers
    found = re.fullmatch(r"serving (\S+) on (ws://[^:]+:(\d+)/v1/detect)\n", line)
    assert found, f"{line!r}\n{log_path.read_text()}"
    served = Served(found.group(2), int(found.group(3)), process, log_path)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(stop)
            assert process.wait(20) == {signal.SIGINT: 130, signal.SIGTERM: 143}[stop], served.log
        process.stdout.close()


def server_env(**more: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "EDGEWATCH_TOKEN"}
    return {**env, "PYTHONUNBUFFERED": "1", **more}


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def noise_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A JPEG of noise: as many bytes as a picture of that size can take."""
    return jpeg(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def raw_client(url: str, protocol: int = 1, **options: Any) -> tuple[ClientConnection, dict[str, Any]]:
    """A WebSocket client that said hello by hand; with the server's answer."""
    client = connect(url, open_timeout=10, close_timeout=2, **options)
    client.send(json.dumps({"protocol": protocol, "client": "a test"}))
    return client, json.loads(client.recv(timeout=10))


def ask(client: ClientConnection, frame: int, data: bytes, timeout: float = 20) -> dict[str, Any]:
    """Send one frame, and wait for its answer."""
    client.send(pack_frame(frame, data))
    while True:
        answer = json.loads(client.recv(timeout=timeout))
        if answer.get("frame") == frame or "error" in answer:
            return answer


def vm_rss_kib(pid: int, key: str = "VmRSS") -> int:
    """A process's resident memory (VmRSS) or its peak (VmHWM), in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The one line a bad input ends with (exit code 2, no traceback)."""
    message = done.stderr.decode().strip()
    assert done.returncode == 2, message
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert message.startswith("edgewatch: error: "), message
    return message


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
