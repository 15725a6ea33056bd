"""Which model answers a remote detector's camera, said by its stats and by `detector` events: a real
`edgewatch serve` killed and started again mid-run, a real Mosquitto carrying the stats and events."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path

import pytest

from brokers import Mosquitto, Subscriber, discovery_problems, free_port
from media import edgewatch_command
from offload_servers import json_lines, server_env

STATS = "edgewatch/site/gate/stats"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    mosquitto = Mosquitto(folder).start()
    yield mosquitto
    mosquitto.stop()


def _config(tmp_path: Path, source: str, detector: str, remote: str | None = None, mqtt: int | None = None) -> str:
    lines = [
        "instance: site",
        "cameras:",
        f"  gate: {{source: '{source}', detector: {detector}, realtime: true, stats_interval: 0.25}}",
        f"storage: {{path: {tmp_path / 'data'}}}",
    ]
    if remote is not None:
        lines += ["detectors:", f"  big: {{type: remote, url: '{remote}', fallback: street, timeout: 1}}"]
    if mqtt is not None:
        lines.append(f"mqtt: {{host: 127.0.0.1, port: {mqtt}, discovery: true}}")
    (tmp_path / "site.yaml").write_text("\n".join(lines) + "\n")
    return "site.yaml"


def _wait_for_lines(path: Path, count: int, run: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or len(path.read_text().splitlines()) < count:
        assert run.poll() is None and time.monotonic() < deadline, "the run ended or stalled"
        time.sleep(0.05)


def _detector_events(path: Path) -> list[dict]:
    return [event for event in json_lines(path) if event["type"] == "detector"]


def test_a_server_killed_and_back_is_two_detector_events_and_the_stats_say_fallback_meanwhile(
    serve_here, broker: Mosquitto, tmp_path: Path
):
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    args = ("--detector", "street", "--port", str(port))
    subscriber = Subscriber(broker.port)
    config = _config(tmp_path, "synthetic:street?seconds=9", "big", remote=url, mqtt=broker.port)
    try:
        with serve_here(*args, name="first") as first:
            run = subprocess.Popen(
                edgewatch_command("run", config, "--events", "events.jsonl", "--json", "out.jsonl", "--quiet"),
                cwd=tmp_path, stderr=subprocess.PIPE, env=server_env(),
            )  # fmt: skip
            _wait_for_lines(tmp_path / "out.jsonl.part", 30, run)
            first.process.kill()  # no goodbye: a crash, or the network gone
            first.process.wait(10)
        with serve_here(*args, name="second"):
            stderr = run.communicate(timeout=60)[1].decode()
        assert run.returncode == 0, stderr
        assert subscriber.wait_for(lambda: len([e for e in subscriber.events() if e["type"] == "detector"]) == 2)
        stats = [json.loads(payload) for topic, payload, _ in subscriber.messages if topic == STATS]
        discovery = {topic: payload for topic, payload, _ in subscriber.messages if topic.endswith("_detector/config")}
        mqtt_events = [event for event in subscriber.events() if event["type"] == "detector"]
    finally:
        subscriber.close()

    events = _detector_events(tmp_path / "events.jsonl")
    assert [(event["from"], event["to"]) for event in events] == [("remote", "fallback"), ("fallback", "remote")]
    assert all(event["server"] == url and event["fallback"] == "street" for event in events)
    assert events[0]["reason"] and events[1]["reason"] is None
    assert [event["message_id"] for event in mqtt_events] == [event["message_id"] for event in events]

    answered = [item["detector"] for item in stats]
    assert {(item["server"], item["fallback"]) for item in answered} == {(url, "street")}
    assert [in_use for in_use, _ in groupby(item["in_use"] for item in answered)] == ["remote", "fallback", "remote"]
    assert all(
        item.keys()
        == {
            "in_use",
            "server",
            "fallback",
            "dropped",
            "sent",
            "skipped",
            "sent_bytes",
            "min_change",
            "quality",
            "scale",
        }
        for item in answered
    )
    fallback_times = [item["time"] for item in stats if item["detector"]["in_use"] == "fallback"]
    assert events[0]["time"] <= min(fallback_times) and max(fallback_times) < events[1]["time"]

    ((topic, payload),) = discovery.items()
    assert discovery_problems(topic, payload) == []
    sensor = json.loads(payload)
    assert sensor["state_topic"] == STATS and sensor["value_template"] == "{{ value_json.detector.in_use }}"


def test_a_server_down_at_the_start_is_one_detector_event_at_the_first_frame(run_cli, tmp_path: Path):
    url = f"ws://127.0.0.1:{free_port()}"
    done = run_cli("run", _config(tmp_path, "synthetic:street?seconds=1", "big", remote=url), "--events",
                   "events.jsonl", "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    (event,) = _detector_events(tmp_path / "events.jsonl")
    assert (event["from"], event["to"], event["time"]) == (None, "fallback", 0.0)
    assert "the server cannot be reached" in event["reason"]


def test_a_local_detector_raises_no_detector_events_and_its_stats_have_no_detector(
    broker: Mosquitto, run_cli, tmp_path: Path
):
    subscriber = Subscriber(broker.port)
    try:
        config = _config(tmp_path, "synthetic:street?seconds=1", "street", mqtt=broker.port)
        done = run_cli("run", config, "--events", "events.jsonl", "--quiet")
        assert done.returncode == 0, done.stderr.decode()
        assert subscriber.wait_for(lambda: subscriber.latest(STATS) is not None)
        assert subscriber.wait_for(lambda: any(e["type"] == "object" for e in subscriber.events()))
        stats = [json.loads(payload) for topic, payload, _ in subscriber.messages if topic == STATS]
        topics = list(subscriber.topics())
    finally:
        subscriber.close()
    events = json_lines(tmp_path / "events.jsonl")
    assert events and not [event for event in events if event["type"] == "detector"]
    assert stats and not any("detector" in item for item in stats)
    assert not [topic for topic in topics if topic.endswith("_detector/config")]
