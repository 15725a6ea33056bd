"""The page's server through the command: live video, live numbers, health, metrics, media safety and
the token, against a real uvicorn on loopback (the browser tests come with the page's next step)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from brokers import free_port
from edgewatch.web.app import create_app
from edgewatch.web.hub import LiveHub
from media import edgewatch_command, wait_until_serving

TOKEN = "s3cret-token-for-the-tests"  # a network server refuses a guessable one (docs/security.md)
SITE = """
cameras:
  street:
    source: synthetic:street?seed=2&seconds=8
    realtime: true
    stats_interval: 1
    lines:
      middle: {points: [[0.5, 0.0], [0.5, 1.0]]}
"""


@pytest.fixture
def served(tmp_path):
    """`edgewatch run site.yaml --serve PORT`, up and answering; SIGINT at the end."""
    (tmp_path / "site.yaml").write_text(SITE)
    port = free_port()
    run = subprocess.Popen(
        edgewatch_command("run", "site.yaml", "--serve", str(port), "--quiet"), cwd=tmp_path, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, run, lambda: run.stderr.read().decode() if run.poll() is not None else "")
    yield url, run
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
        run.wait(20)


def test_the_live_video_streams_new_pictures_and_the_numbers_arrive_live(served):
    url, _ = served
    pictures = []
    with httpx.stream("GET", f"{url}/api/cameras/street/stream.mjpeg", timeout=10) as response:
        assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
        buffer = b""
        for chunk in response.iter_bytes():
            buffer += chunk
            while (start := buffer.find(b"\xff\xd8")) >= 0 and (end := buffer.find(b"\xff\xd9", start)) >= 0:
                pictures.append(buffer[start : end + 2])
                buffer = buffer[end + 2 :]
            if len(pictures) >= 3:
                break
    assert len(set(pictures)) >= 2  # new frames, not one picture again
    deadline = time.monotonic() + 3
    while httpx.get(f"{url}/api/cameras").json()[0]["viewers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{url}/api/cameras").json()[0]["viewers"] == 0  # a viewer who left stops the encoding
    messages = []
    with httpx.stream("GET", f"{url}/api/live", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                messages.append(json.loads(line[6:]))
            if sum(message["kind"] == "stats" for message in messages) >= 2:
                break
    stats = [message["stats"] for message in messages if message["kind"] == "stats"]
    assert stats[-1]["camera"] == "street" and stats[-1]["time"] > stats[0]["time"]
    (camera,) = httpx.get(f"{url}/api/cameras").json()
    assert camera["name"] == "street" and camera["online"] and camera["frames"] > 0
    metrics = httpx.get(f"{url}/metrics").text
    assert 'edgewatch_frames_total{camera="street"}' in metrics
    assert 'edgewatch_dropped_frames_total{camera="street"} 0.0' in metrics
    frames = _metric(metrics, 'edgewatch_frames_total{camera="street"}')
    observed = _metric(metrics, 'edgewatch_inference_ms_count{camera="street"}')
    assert 0 < frames <= observed <= frames + 5  # every frame's detector time is in the histogram
    page = httpx.get(url).text
    assert "<title>edgewatch</title>" in page and "/static/app.js" in page
    assert httpx.get(f"{url}/docs").status_code == 200  # OpenAPI


def test_the_page_keeps_serving_after_the_input_ends_and_stops_on_ctrl_c(served):
    url, run = served
    time.sleep(9)  # the 8 s scene has ended
    assert run.poll() is None
    events = httpx.get(f"{url}/api/events", params={"camera": "street"}).json()
    assert events and all(event["camera"] == "street" for event in events)
    started = sum(event["type"] == "object" and event["phase"] == "start" for event in events)
    days = httpx.get(f"{url}/api/series", params={"by": "day"}).json()
    assert sum(row["started"] for row in days) == started and {row["bucket"] for row in days} == {
        events[0]["wall_time"][:10]
    }
    ended = [event for event in events if event["type"] == "object" and event["phase"] == "end"]
    confidence = httpx.get(f"{url}/api/confidence").json()
    assert confidence["objects"] == sum(confidence["counts"]) == len(ended)
    (camera,) = httpx.get(f"{url}/api/cameras").json()
    assert camera["source_fps"] == 25 and camera["dropped"] == 0 and camera["reconnects"] == 0
    assert camera["running"] is False  # the input ended; the page did not
    run.send_signal(signal.SIGINT)
    assert run.wait(20) == 130


@pytest.mark.parametrize("path", ["../events.sqlite", "..%2Fevents.sqlite", "street/../../site.yaml", "/etc/passwd"])
def test_media_never_serves_a_file_outside_the_storage_folder(served, path):
    url, _ = served
    assert httpx.get(f"{url}/media/{path}").status_code == 404


def test_a_page_off_loopback_needs_a_token(tmp_path):
    (tmp_path / "site.yaml").write_text(SITE.replace("seconds=8", "seconds=2"))
    refused = subprocess.run(
        edgewatch_command("run", "site.yaml", "--serve", f"0.0.0.0:{free_port()}", "--quiet"),
        cwd=tmp_path, capture_output=True, timeout=60,
        env={key: value for key, value in os.environ.items() if key != "EDGEWATCH_TOKEN"},
    )  # fmt: skip
    assert refused.returncode == 2 and "token" in refused.stderr.decode()
    port = free_port()
    run = subprocess.Popen(
        edgewatch_command("run", "site.yaml", "--serve", f"0.0.0.0:{port}", "--quiet"), cwd=tmp_path,
        env={**os.environ, "EDGEWATCH_TOKEN": TOKEN}, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/cameras"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer.status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        login = httpx.get(f"http://127.0.0.1:{port}/?token={TOKEN}")
        assert login.status_code == 200 and "edgewatch_token" in login.headers["set-cookie"]
        assert TOKEN not in login.text
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(20)
    assert TOKEN not in run.stderr.read().decode()


def _metric(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[-1])


def test_configured_cameras_are_listed_in_the_configs_order_before_their_first_frame():
    client = TestClient(create_app(LiveHub(["street", "door", "alley"])), base_url="http://127.0.0.1")
    cameras = client.get("/api/cameras").json()
    assert [camera["name"] for camera in cameras] == ["street", "door", "alley"]  # not sorted: as configured
    assert not any(camera["online"] for camera in cameras) and all(camera["frames"] == 0 for camera in cameras)
