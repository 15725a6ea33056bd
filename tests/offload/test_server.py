"""`edgewatch serve` as clients meet it: real servers started through the command, raw WebSocket
clients speaking the protocol by hand."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from edgewatch.offload.protocol import (
    CLOSE_BAD_FRAME,
    CLOSE_BAD_HELLO,
    CLOSE_BUSY,
    CLOSE_FRAME_TOO_BIG,
    CLOSE_SERVER_STOPS,
    CLOSE_TOO_BIG,
    CLOSE_VERSION,
    MAX_JPEG_BYTES,
    pack_frame,
)
from media import edgewatch_command
from offload_servers import Served, ask, noise_jpeg, one_line_error, raw_client, server_env, vm_rss_kib

STRONG_TOKEN = "kT3-vQ9_xL2pZ7wR8mN4"


def test_a_frame_is_answered_with_the_boxes_of_the_json_lines(street_server: Served, street_jpegs: list[bytes]):
    client, welcome = raw_client(street_server.url)
    with client:
        assert welcome["protocol"] == 1 and welcome["model"] == "street"
        assert welcome["labels"] == ["person", "car"] and welcome["max_batch"] == 8
        assert welcome["min_score"] == 0.25 and welcome["max_side"] == 4096
        answer = ask(client, 7, street_jpegs[10])
    assert (answer["frame"], answer["width"], answer["height"], answer["dropped"]) == (7, 640, 360, 0)
    assert set(answer["times"]) == {"decode_ms", "queue_ms", "model_ms"}
    assert answer["detections"], "the street scene has people and cars by then"
    for box in answer["detections"]:
        assert set(box) == {"label", "class_id", "score", "box"}
        assert box["label"] == ["person", "car"][box["class_id"]] and 0 <= box["score"] <= 1
        x1, y1, x2, y2 = box["box"]
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360


def _framed(header: bytes, body: bytes) -> bytes:
    return len(header).to_bytes(4, "big") + header + body


@pytest.mark.parametrize(
    ("message", "code", "says"),
    [
        (b"garbage", CLOSE_BAD_FRAME, "header is 16384 bytes at most"),
        (_framed(b"{not json", b"\xff\xd8\xff\xd9"), CLOSE_BAD_FRAME, 'integer "frame"'),
        (pack_frame(1, b"GIF89a not a jpeg"), CLOSE_BAD_FRAME, "not a JPEG"),
        ("text", CLOSE_BAD_FRAME, "binary, not text"),
        ("truncated", CLOSE_BAD_FRAME, "truncated"),
        ("corrupt", CLOSE_BAD_FRAME, "does not decode"),
        ("too-many-pixels", CLOSE_FRAME_TOO_BIG, "4096 pixels a side at most, this one 5000x16"),
        (pack_frame(1, b"\xff\xd8" + bytes(MAX_JPEG_BYTES) + b"\xff\xd9"), CLOSE_FRAME_TOO_BIG, "8 MiB at most"),
        (pack_frame(1, b"\xff\xd8" + bytes(3 * MAX_JPEG_BYTES) + b"\xff\xd9"), CLOSE_TOO_BIG, "exceeds limit"),
    ],
    ids=["garbage", "header-not-json", "not-jpeg", "text", "truncated", "corrupt", "too-many-pixels", "jpeg-over-8-mib",
         "message-over-limit"],
)  # fmt: skip
def test_a_bad_frame_closes_its_connection_with_a_reason_and_the_others_are_served(
    street_server: Served, street_jpegs: list[bytes], message: bytes | str, code: int, says: str
):
    other, _ = raw_client(street_server.url)
    bad, _ = raw_client(street_server.url)
    good = street_jpegs[0]
    if message == "truncated":
        message = pack_frame(1, good[: len(good) // 2])
    elif message == "corrupt":  # whole, with its size and end marker, and nothing decodable between
        message = pack_frame(1, good[:200] + bytes(len(good) - 202) + b"\xff\xd9")
    elif message == "too-many-pixels":
        message = pack_frame(1, noise_jpeg(5000, 16))
    elif message == "text":
        message = json.dumps({"frame": 1})
    with other:
        with pytest.raises(ConnectionClosed) as closed:
            bad.send(message)  # a message over the limit is closed on while it is sent
            while True:  # the error message comes first, where the server could send it
                error = json.loads(bad.recv(timeout=20))
                assert error["code"] == code and says in error["error"] and error["protocol"] == 1
        if code == CLOSE_TOO_BIG and closed.value.rcvd is None:
            pass  # the server closed its socket on a client still sending: the reset may beat the close frame
        else:
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code
            assert says in closed.value.rcvd.reason
        assert ask(other, 1, good)["detections"]
    bad.close()


def test_a_client_of_another_protocol_version_is_told_and_closed(street_server: Served):
    client, error = raw_client(street_server.url, protocol=2)
    assert error == {
        "error": "this server speaks protocol 1, the client asked for 2: run the same edgewatch version on both ends",
        "code": CLOSE_VERSION,
        "protocol": 1,
    }
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=10)
    assert closed.value.rcvd.code == CLOSE_VERSION and "speaks protocol 1" in closed.value.rcvd.reason


def test_a_first_message_that_is_no_hello_is_closed(street_server: Served, street_jpegs: list[bytes]):
    with connect(street_server.url, open_timeout=10) as client:
        client.send(pack_frame(1, street_jpegs[0]))
        assert json.loads(client.recv(timeout=10))["code"] == CLOSE_BAD_HELLO
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd.code == CLOSE_BAD_HELLO and "JSON text hello" in closed.value.rcvd.reason


def test_frames_of_several_clients_go_to_the_model_in_one_call(street_server: Served, street_jpegs: list[bytes]):
    clients = [raw_client(street_server.url)[0] for _ in range(4)]
    batches = []
    for frame in range(8):
        for client in clients:
            client.send(pack_frame(frame, street_jpegs[frame]))
        batches += [json.loads(client.recv(timeout=20))["batch"] for client in clients]
    for client in clients:
        client.close()
    assert max(batches) > 1 and max(batches) <= 4


def test_a_client_sending_faster_than_the_model_costs_no_memory_and_hears_what_was_dropped(street_server: Served):
    pid = street_server.process.pid
    big = [noise_jpeg(1920, 1080, seed) for seed in range(4)]  # about 2 MB each
    client, _ = raw_client(street_server.url, max_size=None)
    with client:
        for frame in range(3):  # the model's buffers for this size, before the peak is read
            ask(client, frame, big[frame % 4])
        before = vm_rss_kib(pid, "VmHWM")
        sent = 150
        for frame in range(3, 3 + sent):
            client.send(pack_frame(frame, big[frame % 4]))  # and read nothing meanwhile
        answers = []
        while not answers or answers[-1]["frame"] != 2 + sent:
            answers.append(json.loads(client.recv(timeout=30)))
        after = vm_rss_kib(pid, "VmHWM")
    assert sent * len(big[0]) > 250 * 2**20
    assert after - before < 120 * 1024, f"the server's peak memory grew by {(after - before) // 1024} MiB"
    assert len(answers) < sent / 2  # the model is slower than loopback
    assert len(answers) + sum(answer["dropped"] for answer in answers) == sent


def test_a_websocket_opened_by_a_page_of_another_origin_is_refused(street_server: Served):
    with pytest.raises(InvalidStatus) as refused:
        connect(street_server.url, origin="https://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    assert "another site or origin" in json.loads(refused.value.response.body)["detail"]


def test_off_loopback_the_token_is_needed_by_header_or_query(serve_here, street_jpegs: list[bytes]):
    with serve_here("--detector", "street", "--host", "0.0.0.0", "--port", "0", "--token", STRONG_TOKEN) as served:
        url = f"ws://127.0.0.1:{served.port}/v1/detect"
        for offered in ({}, {"additional_headers": {"Authorization": "Bearer wrong-token-0123456789"}}):
            with pytest.raises(InvalidStatus) as refused:
                connect(url, open_timeout=10, **offered)
            assert refused.value.response.status_code == 401
            assert "a token is needed" in json.loads(refused.value.response.body)["detail"]
        by_header, _ = raw_client(url, additional_headers={"Authorization": f"Bearer {STRONG_TOKEN}"})
        by_query, _ = raw_client(f"{url}?token={STRONG_TOKEN}")
        for client in (by_header, by_query):
            with client:
                assert ask(client, 1, street_jpegs[5])["detections"]
    assert STRONG_TOKEN not in served.log


def test_a_client_beyond_max_clients_is_told_to_come_back_later(serve_here, street_jpegs: list[bytes]):
    with serve_here("--detector", "street", "--port", "0", "--max-clients", "1") as served:
        first, _ = raw_client(served.url)
        extra, refusal = raw_client(served.url)
        assert refusal["code"] == CLOSE_BUSY and "the server has 1 clients; try again later" in refusal["error"]
        with pytest.raises(ConnectionClosed) as closed:
            extra.recv(timeout=10)
        assert closed.value.rcvd.code == CLOSE_BUSY
        assert ask(first, 1, street_jpegs[0])["frame"] == 1
        first.close()
        deadline = time.monotonic() + 10
        while "left: 1 frames answered" not in served.log and time.monotonic() < deadline:
            time.sleep(0.05)
        later, _ = raw_client(served.url)
        with later:
            assert ask(later, 2, street_jpegs[1])["frame"] == 2


def test_sigterm_ends_the_server_with_143_and_closes_its_clients(serve_here, street_jpegs: list[bytes]):
    with serve_here(stop=signal.SIGTERM) as served:
        client, _ = raw_client(served.url)
        ask(client, 1, street_jpegs[0])
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(20) == 143
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_SERVER_STOPS


@pytest.fixture
def taken_port() -> int:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "serve needs a model"),
        (["--model", "m.onnx", "--detector", "street"], "give --model or --detector, not both"),
        (["--model", "missing.onnx"], "no such model: missing.onnx"),
        (["--detector", "yolo9"], "unknown detector 'yolo9'"),
        (["--detector", "remote://127.0.0.1:8765"], "a server runs its model itself"),
        (["--detector", "street", "--labels", "l.txt"], "--format, --labels and --device describe a model"),
        (["--detector", "street", "--port", "99999"], "port 99999 is out of range"),
        (["--detector", "street", "--port", "many"], "argument --port: invalid int value"),
        (["--detector", "street", "--port", "TAKEN"], "the port is taken"),
        (["--detector", "street", "--host", "0.0.0.0"], "would let anyone on the network use the model"),
        (["--detector", "street", "--host", "0.0.0.0", "--token", "secret"], "the token is too easy to guess"),
        (["--detector", "street", "--host", "10.9.9.9", "--token", STRONG_TOKEN], "is no address of this machine"),
    ],
    ids=["none", "both", "missing-model", "unknown", "remote", "labels", "range", "nan", "taken", "no-token",
         "weak-token", "not-here"],
)  # fmt: skip
def test_bad_serve_input_is_one_line_and_exit_code_2(tmp_path: Path, taken_port: int, args: list[str], says: str):
    args = [str(taken_port) if arg == "TAKEN" else arg for arg in args]
    (tmp_path / "m.onnx").write_bytes(b"")
    done = subprocess.run(edgewatch_command("serve", *args), cwd=tmp_path, capture_output=True, timeout=60,
                          env=server_env())  # fmt: skip
    assert says in one_line_error(done)
    assert done.stdout == b""


def test_a_client_that_never_says_hello_does_not_hold_the_others(street_server: Served, street_jpegs: list[bytes]):
    with connect(street_server.url, open_timeout=10):
        client, _ = raw_client(street_server.url)
        with client:
            assert ask(client, 1, street_jpegs[3])["frame"] == 1
