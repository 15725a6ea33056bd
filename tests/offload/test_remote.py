"""`edgewatch run --detector remote://HOST:PORT` and `detectors: {type: remote}` against a real
`edgewatch serve`: the same boxes as a local run, and a run that lives through the server going away."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from brokers import free_port
from edgewatch.models import STREET_DETECTOR
from edgewatch.offload.protocol import CLOSE_VERSION
from media import edgewatch_command
from offload_servers import Served, json_lines, one_line_error, server_env

STREET = "synthetic:street?seconds=4"
STRONG_TOKEN = "kT3-vQ9_xL2pZ7wR8mN4"


def agreement(local: list[dict], remote: list[dict]) -> tuple[float, float]:
    """The share of frames with as many boxes in both runs, and the share of local boxes whose best
    remote match of the same label overlaps it by IoU 0.9 or more."""
    assert [line["frame"] for line in local] == [line["frame"] for line in remote]
    same_count = sum(len(a["detections"]) == len(b["detections"]) for a, b in zip(local, remote, strict=True))
    matched = total = 0
    for a, b in zip(local, remote, strict=True):
        total += len(a["detections"])
        if not a["detections"] or not b["detections"]:
            continue
        iou = sv.box_iou_batch(
            np.array([box["box"] for box in a["detections"]]), np.array([box["box"] for box in b["detections"]])
        )
        labels = np.array([box["label"] for box in b["detections"]])
        for row, box in zip(iou, a["detections"], strict=True):
            best = int(row.argmax())
            matched += bool(row[best] >= 0.9 and labels[best] == box["label"])
    return same_count / len(local), matched / max(total, 1)


def test_a_remote_run_finds_the_boxes_a_local_run_finds(street_server: Served, run_cli, tmp_path: Path):
    local = run_cli("run", "--source", STREET, "--detector", "street", "--json", "local.jsonl", "--quiet")
    assert local.returncode == 0, local.stderr.decode()
    remote = run_cli("run", "--source", STREET, "--detector", f"remote://127.0.0.1:{street_server.port}", "--json",
                     "remote.jsonl")  # fmt: skip
    assert remote.returncode == 0, remote.stderr.decode()
    assert "the server's model street answers" in remote.stderr.decode()
    local_lines, remote_lines = json_lines(tmp_path / "local.jsonl"), json_lines(tmp_path / "remote.jsonl")
    assert len(local_lines) == 100 and sum(bool(line["detections"]) for line in local_lines) > 50
    same_count, matched = agreement(local_lines, remote_lines)
    assert same_count >= 0.85 and matched >= 0.9, (same_count, matched)  # JPEG moves a few pixels


def _config(tmp_path: Path, url: str, source: str = STREET, fallback: str | None = "street", **camera: object) -> str:
    fallback_key = f", fallback: {fallback}" if fallback else ""
    options = "".join(f", {key}: {json.dumps(value)}" for key, value in camera.items())
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  gate: {{source: '{source}', detector: big{options}}}\n"
        f"detectors:\n  big: {{type: remote, url: '{url}'{fallback_key}, timeout: 1}}\n"
        f"storage: {{path: {tmp_path / 'data'}}}\n"
    )
    return "site.yaml"


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING")]


def test_a_server_down_at_the_start_hands_over_to_the_fallback(run_cli, tmp_path: Path):
    url = f"ws://127.0.0.1:{free_port()}"
    done = run_cli("run", _config(tmp_path, url), "--json", "out.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    (warning,) = _warnings(done.stderr.decode())
    assert "the server cannot be reached" in warning and "the fallback detector street answers" in warning
    local = run_cli("run", "--source", STREET, "--detector", "street", "--json", "local.jsonl", "--quiet")
    boxes = [line["detections"] for line in json_lines(tmp_path / "out.jsonl")]
    assert boxes == [line["detections"] for line in json_lines(tmp_path / "local.jsonl")], local.stderr.decode()


def test_without_a_fallback_a_server_down_gives_no_boxes_and_one_warning(run_cli, tmp_path: Path):
    done = run_cli("run", "--source", STREET, "--detector", f"remote://127.0.0.1:{free_port()}", "--json", "out.jsonl",
                   "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    (warning,) = _warnings(done.stderr.decode())
    assert "no boxes until it is back" in warning
    lines = json_lines(tmp_path / "out.jsonl")
    assert len(lines) == 100 and not any(line["detections"] for line in lines)


def _wait_for_lines(path: Path, count: int, run: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or len(path.read_text().splitlines()) < count:
        assert run.poll() is None and time.monotonic() < deadline, "the run ended or stalled"
        time.sleep(0.05)


def test_a_server_killed_mid_run_hands_over_to_the_fallback_and_back_once_it_returns(serve_here, tmp_path: Path):
    port = free_port()
    source = "synthetic:street?seconds=12"
    args = ("--detector", "street", "--port", str(port))
    with serve_here(*args, name="first") as first:
        run = subprocess.Popen(
            edgewatch_command("run", _config(tmp_path, f"ws://127.0.0.1:{port}", source, realtime=True), "--json",
                              "out.jsonl"),
            cwd=tmp_path, stderr=subprocess.PIPE, env=server_env(),
        )  # fmt: skip
        _wait_for_lines(tmp_path / "out.jsonl.part", 25, run)
        first.process.kill()  # no goodbye: a crash, or the network gone
        first.process.wait(10)
    with serve_here(*args, name="second"):
        stderr = run.communicate(timeout=60)[1].decode()
    assert run.returncode == 0, stderr
    handovers = [line for line in stderr.splitlines() if "answers" in line]
    assert len(handovers) == 3, stderr
    assert "the server's model street answers" in handovers[0]
    assert handovers[1].startswith("WARNING") and "the fallback detector street answers" in handovers[1]
    assert "the server's model street answers" in handovers[2]
    lines = json_lines(tmp_path / "out.jsonl")
    assert len(lines) == 300 and sum(bool(line["detections"]) for line in lines) > 200


def test_without_a_fallback_a_server_killed_mid_run_leaves_frames_empty(serve_here, tmp_path: Path):
    with serve_here() as served:
        run = subprocess.Popen(
            edgewatch_command("run", "--source", STREET, "--detector", f"remote://127.0.0.1:{served.port}",
                              "--realtime", "--json", "out.jsonl", "--quiet"),
            cwd=tmp_path, stderr=subprocess.PIPE, env=server_env(),
        )  # fmt: skip
        _wait_for_lines(tmp_path / "out.jsonl.part", 40, run)
        served.process.kill()
        served.process.wait(10)
    stderr = run.communicate(timeout=60)[1].decode()
    assert run.returncode == 0, stderr
    (warning,) = _warnings(stderr)
    assert "no boxes until it is back" in warning
    lines = json_lines(tmp_path / "out.jsonl")
    assert len(lines) == 100 and sum(bool(line["detections"]) for line in lines[:40]) > 5
    assert not any(line["detections"] for line in lines[-30:])


@pytest.fixture
def other_version_server() -> Iterator[tuple[int, list[str], list[str]]]:
    """(port, ends, mode): a WebSocket server of a later edgewatch, speaking protocol 2. With `mode[0]`
    "refuse" it refuses a hello of protocol 1 as ours refuses one of 2; with "answer" it answers the
    hello as version 2 would. How each connection ended goes to `ends`."""
    mode = ["refuse"]
    ends: list[str] = []

    def handle(connection: ServerConnection) -> None:
        connection.recv(timeout=10)
        if mode[0] == "refuse":
            reason = (
                "this server speaks protocol 2, the client asked for 1: run the same edgewatch version on both ends"
            )
            connection.send(json.dumps({"error": reason, "code": CLOSE_VERSION, "protocol": 2}))
            connection.close(CLOSE_VERSION, reason[:100])
            ends.append("closed by the server")
            return
        connection.send(json.dumps({"protocol": 2, "model": "street", "labels": ["person", "car"]}))
        try:
            connection.recv(timeout=10)
        except ConnectionClosed as closed:
            ends.append(f"closed by the client {closed.rcvd.code if closed.rcvd else None}")

    with serve(handle, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.socket.getsockname()[1], ends, mode
        server.shutdown()
        thread.join(10)


@pytest.mark.parametrize(
    ("mode", "says", "end"),
    [
        ("refuse", "this server speaks protocol 2, the client asked for 1", "closed by the server"),
        ("answer", "the server speaks protocol 2, this edgewatch speaks 1", "closed by the client 1000"),
    ],
)
def test_a_server_of_another_protocol_version_is_one_line_and_both_ends_close(
    other_version_server, run_cli, mode: str, says: str, end: str
):
    port, ends, server_mode = other_version_server
    server_mode[0] = mode
    done = run_cli("run", "--source", STREET, "--detector", f"ws://127.0.0.1:{port}", "--max-frames", "3")
    message = one_line_error(done)
    assert says in message and "upgrade the older of the two" in message
    deadline = time.monotonic() + 10
    while not ends and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ends == [end]


def test_the_token_goes_with_the_address_and_a_missing_one_is_one_line(serve_here, run_cli, tmp_path: Path):
    with serve_here("--model", str(STREET_DETECTOR), "--port", "0", "--token", STRONG_TOKEN) as served:
        address = f"remote://127.0.0.1:{served.port}"
        refused = run_cli("run", "--source", STREET, "--detector", address, "--max-frames", "3")
        assert "HTTP 401 a token is needed" in one_line_error(refused)
        done = run_cli("run", "--source", STREET, "--detector", f"{address}?token={STRONG_TOKEN}", "--max-frames",
                       "30", "--json", "out.jsonl")  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert "the server's model street-detector.onnx answers" in done.stderr.decode()
        assert STRONG_TOKEN not in done.stderr.decode() + refused.stderr.decode()
    assert any(line["detections"] for line in json_lines(tmp_path / "out.jsonl"))


@pytest.mark.parametrize(
    ("detector", "says"),
    [
        ("remote://", "bad server address remote://: it names no host"),
        ("remote://127.0.0.1:http", "the port must be a number from 1 to 65535"),
        ("remote://127.0.0.1:8765/v2", "remote:// takes HOST:PORT only"),
        ("http://127.0.0.1:8765", "unknown detector 'http://127.0.0.1:8765'"),
    ],
)
def test_a_bad_server_address_is_one_line(run_cli, detector: str, says: str):
    assert says in one_line_error(run_cli("run", "--source", STREET, "--detector", detector))
