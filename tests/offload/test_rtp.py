"""`edgewatch serve --rtp`: H.264 over RTP/UDP from a real GStreamer sender, as a Raspberry Pi sends it,
answered at `/v1/streams/NAME`."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from brokers import Mosquitto, Subscriber
from edgewatch.offload.protocol import CLOSE_NO_STREAM
from edgewatch.sources import open_source
from media import edgewatch_command, video_frame_count, write_video
from offload_servers import Served, edgewatch_serve, one_line_error, server_env

APT = (
    "apt-get install -y --no-install-recommends gstreamer1.0-tools gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
)

needs_gstreamer = pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason=f"no gst-launch-1.0: {APT}")


@pytest.fixture(scope="module")
def rtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, int]]]:
    """One `edgewatch serve --rtp street=0,lossy=0`, and the UDP port of each stream, as it printed them."""
    with edgewatch_serve(tmp_path_factory.mktemp("rtp"), "--detector", "street", "--port", "0",
                         "--rtp", "street=0,lossy=0") as served:  # fmt: skip
        ports = {}
        for _ in range(2):
            line = served.process.stdout.readline().decode()
            found = re.fullmatch(r"rtp stream (\S+) on udp://127\.0\.0\.1:(\d+)\n", line)
            assert found, f"{line!r}\n{served.log}"
            ports[found.group(1)] = int(found.group(2))
        yield served, ports


@pytest.fixture(scope="module")
def street_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """60 frames of the synthetic street scene in H.264 (libx264's defaults: B-frames too), and their count."""
    with open_source("synthetic:street?seconds=5") as source:
        frames = [source.read().image for _ in range(110)][50:]  # people and cars are in by then
    path = write_video(tmp_path_factory.mktemp("video") / "street.mp4", frames, fps=25)
    return path, video_frame_count(path)


def listen(served: Served, name: str) -> tuple[ClientConnection, dict[str, Any]]:
    """A listener at /v1/streams/NAME that said hello; it buffers every answer until read."""
    url = served.url.replace("/v1/detect", f"/v1/streams/{name}")
    client = connect(url, open_timeout=10, close_timeout=2, max_queue=None)
    client.send(json.dumps({"protocol": 1, "client": "a test"}))
    return client, json.loads(client.recv(timeout=10))


def answers(client: ClientConnection, quiet: float = 2.0) -> list[dict[str, Any]]:
    """What the listener got until `quiet` seconds passed without an answer."""
    got = []
    while True:
        try:
            got.append(json.loads(client.recv(timeout=quiet)))
        except TimeoutError:
            return got


def gst(*pipeline: str) -> None:
    """Run a GStreamer pipeline to its end (its udpsink sends in real time)."""
    subprocess.run(["gst-launch-1.0", "-q", *pipeline], check=True, timeout=60, capture_output=True)


def synthetic(frames: int, port: int, *between: str) -> list[str]:
    """A test-pattern sender as the issue's Pi sends: x264enc, rtph264pay, udpsink; `between` the last two."""
    return ["videotestsrc", f"num-buffers={frames}", "!", "video/x-raw,width=320,height=240,framerate=30/1", "!",
            "x264enc", "tune=zerolatency", "key-int-max=10", "!", "rtph264pay", "config-interval=1", "pt=96", "!",
            *between, "udpsink", "host=127.0.0.1", f"port={port}"]  # fmt: skip


@needs_gstreamer
def test_a_pi_stream_is_answered_frame_by_frame_at_its_stream_url(rtp_server, street_video: tuple[Path, int]):
    served, ports = rtp_server
    video, sent = street_video
    client, welcome = listen(served, "street")
    with client:
        assert (welcome["protocol"], welcome["model"], welcome["stream"]) == (1, "street", "street")
        # the Pi pipeline but h264parse (plugins-bad): rtph264pay takes qtdemux's avc as it is
        gst("filesrc", f"location={video}", "!", "qtdemux", "!", "rtph264pay", "config-interval=1", "pt=96", "!",
            "udpsink", "host=127.0.0.1", f"port={ports['street']}")  # fmt: skip
        got = answers(client)
    frames = [answer["frame"] for answer in got]
    assert len(set(frames)) >= 0.95 * sent, f"{len(set(frames))} of {sent} frames answered\n{served.log}"
    assert frames == sorted(frames) and max(frames) < sent
    assert all(answer["stream"] == "street" and (answer["width"], answer["height"]) == (640, 360) for answer in got)
    assert sum(bool(answer["detections"]) for answer in got) >= 0.9 * len(got), "people and cars are in the scene"
    assert {box["label"] for answer in got for box in answer["detections"]} <= {"person", "car"}


@needs_gstreamer
def test_a_stream_that_loses_packets_or_stops_and_starts_again_goes_on_being_answered(rtp_server):
    served, ports = rtp_server
    client, _ = listen(served, "lossy")
    with client:
        gst(*synthetic(90, ports["lossy"], "identity", "drop-probability=0.05", "!"))
        lossy = [answer["frame"] for answer in answers(client, quiet=1.5)]  # the stream's decoder gives up at 1 s
        gst(*synthetic(30, ports["lossy"]))  # the sender starts again: a new SSRC, a new key frame
        again = [answer["frame"] for answer in answers(client)]
    lost = [int(count) for count in re.findall(r"rtp stream lossy: quiet .* (\d+) packets lost", served.log)]
    assert lost and lost[0] > 0, served.log
    assert len(lossy) >= 45 and max(lossy) >= 80, f"answers stopped after the first loss: {lossy}"
    # picked up again; the model keeps only the newest frame, so on a loaded machine some are dropped by design
    assert len(again) >= 0.5 * 30 and min(again) > max(lossy), again


@needs_gstreamer
def test_with_mqtt_each_answer_of_a_stream_is_published_and_the_server_says_when_it_is_online(
    tmp_path: Path, street_video: tuple[Path, int]
):
    video, sent = street_video
    broker = Mosquitto(tmp_path).start()
    subscriber = Subscriber(broker.port, "edgewatch/lab/#")
    try:
        with edgewatch_serve(tmp_path, "--detector", "street", "--port", "0", "--rtp", "gate=0",
                             "--mqtt", f"127.0.0.1:{broker.port}", "--instance", "lab") as served:  # fmt: skip
            port = int(re.search(r":(\d+)$", served.process.stdout.readline().decode().strip()).group(1))
            assert subscriber.wait_for(lambda: subscriber.latest("edgewatch/lab/availability") == b"online")
            client, _ = listen(served, "gate")  # what the server answered, to compare with what it published
            with client:
                gst("filesrc", f"location={video}", "!", "qtdemux", "!", "rtph264pay", "config-interval=1", "pt=96",
                    "!", "udpsink", "host=127.0.0.1", f"port={port}")  # fmt: skip
                answered = {answer["frame"] for answer in answers(client)}
            topic = "edgewatch/lab/gate/detections"

            def published() -> list[dict[str, Any]]:
                return [json.loads(payload) for name, payload, _ in list(subscriber.messages) if name == topic]

            subscriber.wait_for(lambda: {answer["frame"] for answer in published()} >= answered, timeout=10)
            got = published()
            # the model keeps each stream's newest frame only: a loaded machine answers fewer, each one published
            assert len(answered) >= 0.5 * sent, f"{len(answered)} of {sent} answered\n{served.log}"
            assert {answer["frame"] for answer in got} == answered
            assert all(answer["stream"] == "gate" for answer in got)
            assert sum(bool(answer["detections"]) for answer in got) >= 0.9 * len(got)
            assert not any(retained for name, _, retained in subscriber.messages if name == topic)
        assert subscriber.wait_for(lambda: subscriber.latest("edgewatch/lab/availability") == b"offline")
    finally:
        subscriber.close()
        broker.stop()


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--mqtt", "127.0.0.1"], "--mqtt publishes the answers of --rtp streams"),
     (["--rtp", "0", "--instance", "lab"], "--instance names this server on an MQTT broker"),
     (["--rtp", "0", "--mqtt", "127.0.0.1:port"], "bad --mqtt 127.0.0.1:port")],
)  # fmt: skip
def test_bad_mqtt_output_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], says: str):
    done = subprocess.run(edgewatch_command("serve", "--detector", "street", "--port", "0", *args),
                          cwd=tmp_path, capture_output=True, timeout=60, env=server_env())  # fmt: skip
    assert says in one_line_error(done)


@needs_gstreamer
def test_a_stream_url_of_no_stream_is_closed_with_a_reason(rtp_server):
    served, _ = rtp_server
    client = connect(served.url.replace("/v1/detect", "/v1/streams/nowhere"), open_timeout=10)
    client.send(json.dumps({"protocol": 1}))
    error = json.loads(client.recv(timeout=10))
    assert error["code"] == CLOSE_NO_STREAM and "streams: lossy, street" in error["error"]
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_NO_STREAM


@pytest.fixture
def taken_udp_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rtp", "cam"], "--rtp cam: 'cam' is not PORT or NAME=PORT"),
        (["--rtp", "door="], "'door=' is not PORT or NAME=PORT"),
        (["--rtp", "a/b=9777"], "'a/b=9777' is not PORT or NAME=PORT"),
        (["--rtp", "70000"], "port 70000 is out of range"),
        (["--rtp", "9777,door=9777"], "--rtp names port 9777 twice"),
        (["--rtp", "door=9777", "--rtp", "door=9778"], "--rtp names stream door twice"),
        (["--rtp", "TAKEN"], "the port is taken"),
        (["--rtp", "9777", "--rtp-payload", "200"], "an RTP payload type is 0 to 127"),
    ],
    ids=["not-a-port", "no-port", "bad-name", "range", "port-twice", "name-twice", "taken", "payload"],
)
def test_bad_rtp_input_is_one_line_and_exit_code_2_before_the_model_loads(
    tmp_path: Path, taken_udp_port: int, args: list[str], says: str
):
    args = [arg if arg != "TAKEN" else str(taken_udp_port) for arg in args]
    done = subprocess.run(edgewatch_command("serve", "--detector", "street", "--port", "0", *args),
                          cwd=tmp_path, capture_output=True, timeout=60, env=server_env())  # fmt: skip
    assert says in one_line_error(done)
    assert done.stdout == b""
