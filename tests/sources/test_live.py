"""Live sources against real streams sent by FFmpeg on loopback: open, drop, reconnect, keep up."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

import edgewatch as ew
from edgewatch.models import Detector, make_detections


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sender:
    """FFmpeg playing a video in a loop at its own rate to a URL, like a network camera."""

    def __init__(self, video: Path, url: str, *extra: str) -> None:
        self.command = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video),
            "-c:v", "mpeg2video", "-q:v", "5", *extra, "-f", "mpegts", url,
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> Sender:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None


@pytest.fixture
def udp_stream(square_video: Path) -> Iterator[tuple[str, Sender]]:
    url = f"udp://127.0.0.1:{free_port()}"
    sender = Sender(square_video, f"{url}?pkt_size=1316").start()
    time.sleep(0.3)
    yield url, sender
    sender.stop()


def test_udp_stream_opens_as_a_live_source(udp_stream):
    url, _ = udp_stream
    with ew.open_source(url, open_timeout=5) as source:
        assert source.info.live
        assert source.info.frame_count is None
        assert (source.info.width, source.info.height) == (320, 240)
        assert source.info.fps == pytest.approx(25, abs=1)
        assert source.read() is not None


def test_live_source_reconnects_when_the_sender_comes_back(udp_stream):
    url, sender = udp_stream
    delivered: list[float] = []
    with ew.open_source(url, open_timeout=1) as source:
        pipeline = ew.Pipeline(
            source, ew.load_detector("motion"), on_result=lambda r: delivered.append(time.monotonic())
        )
        pipeline.start()
        try:
            _wait_for(lambda: len(delivered) >= 20, 10)
            sender.stop()
            time.sleep(2.5)  # longer than the 1 s read timeout: the source notices the drop
            during_outage = len(delivered)
            sender.start()
            _wait_for(lambda: len(delivered) >= during_outage + 20, 15)
        finally:
            pipeline.stop()
            stats = pipeline.wait(10)
    assert stats is not None and stats.reconnects >= 1
    assert not pipeline.source.info.frame_count


class SlowDetector(Detector):
    """Takes 200 ms a frame: far slower than the 25 fps stream."""

    name = "slow"
    labels = ["thing"]  # noqa: RUF012

    def detect(self, image: np.ndarray) -> sv.Detections:
        time.sleep(0.2)
        return make_detections(np.empty((0, 4)), np.empty(0), np.empty(0, np.int64), self.labels)


def test_slow_pipeline_on_a_live_source_skips_to_the_newest_frame(udp_stream):
    url, _ = udp_stream
    lags: list[float] = []
    indices: list[int] = []

    def record(result: ew.FrameResult) -> None:
        lags.append((datetime.now(UTC) - result.frame.wall_time).total_seconds())
        indices.append(result.frame.index)

    with ew.open_source(url, open_timeout=5) as source:
        pipeline = ew.Pipeline(source, SlowDetector(), on_result=record)
        pipeline.start()
        time.sleep(3)
        pipeline.stop()
        stats = pipeline.wait(10)
    assert stats is not None and stats.dropped > 20
    assert len(indices) >= 8
    # frames were skipped, not queued: each result is the newest frame, so the lag never builds up
    assert max(b - a for a, b in pairwise(indices)) >= 3
    assert lags[-1] < 0.6


def test_http_stream_runs_through_the_command(square_video: Path, run_cli, tmp_path: Path):
    url = f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}/live.ts"
    sender = Sender(square_video, url, "-listen", "1").start()
    try:
        time.sleep(0.5)
        done = run_cli("run", "--source", url, "--detector", "motion", "--max-frames", "15", "--json", "out.jsonl")
    finally:
        sender.stop()
    assert done.returncode == 0, done.stderr.decode()
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 15


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_url_that_never_answers_gives_up_after_the_timeout(scheme: str, silent_server: int, run_cli):
    started = time.monotonic()
    done = run_cli("run", "--source", f"{scheme}://127.0.0.1:{silent_server}/cam", "--open-timeout", "1")
    assert done.returncode == 2
    assert time.monotonic() - started < 20
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1
    assert "did not open within 1 s" in message and "check the address" in message


@pytest.mark.parametrize("scheme", ["rtsp", "http", "tcp"])
def test_refused_port_says_refused_at_once(scheme: str, run_cli):
    port = free_port(socket.SOCK_STREAM)  # closed again: nothing listens there
    # With an hour allowed to open, only an answer that does not wait for the timeout ends within the
    # command's own 60 s limit.
    done = run_cli(
        "run", "--source", f"{scheme}://127.0.0.1:{port}/x", "--max-frames", "1", "--open-timeout", "3600", timeout=60
    )
    assert done.returncode == 2
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message
    assert f"connection to 127.0.0.1:{port} refused" in message
    assert "did not open within" not in message


def test_host_name_that_does_not_resolve_says_so(run_cli):
    done = run_cli("run", "--source", "rtsp://camera.invalid/stream1", "--max-frames", "1", "--open-timeout", "3600")
    assert done.returncode == 2
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message
    assert "the host name camera.invalid does not resolve" in message


@pytest.fixture
def not_found_server() -> Iterator[int]:
    """An HTTP server that answers every request with 404 Not Found."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_server_that_answers_without_a_stream_says_it_answered(not_found_server: int, run_cli):
    done = run_cli("run", "--source", f"http://127.0.0.1:{not_found_server}/nothing.ts", "--open-timeout", "3600")
    assert done.returncode == 2
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message
    assert f"127.0.0.1:{not_found_server} answered but sent no stream that could be read" in message


def test_webcam_that_does_not_exist_is_a_clear_error(run_cli):
    done = run_cli("run", "--source", "57")
    assert done.returncode == 2
    message = done.stderr.decode().strip()
    assert message.startswith("edgewatch: error: webcam 57 did not open")
    assert len(message.splitlines()) == 1


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
