"""Several edgewatch instances on one real Mosquitto, through the `edgewatch` command: each keeps its own
connection (the broker's log shows no take-over), its own availability and its own topics and Home
Assistant entities."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from brokers import Mosquitto, Subscriber, broker_log, connected_clients, discovery_problems, dropped_connections
from media import edgewatch_command


def run(folder: Path, *args: str) -> subprocess.Popen:
    folder.mkdir(exist_ok=True)
    return subprocess.Popen(edgewatch_command("run", *args, "--quiet"), cwd=folder, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen, timeout: float = 60) -> None:
    assert process.wait(timeout) == 0, process.stderr.read().decode()


def test_two_runs_on_one_host_keep_their_connections_and_each_its_client_id_across_restarts(tmp_path):
    """Two runs with default settings from two folders (two configs, a run beside the demo): before,
    both were `edgewatch-<hostname>`, and the broker dropped one for the other every second."""
    broker = Mosquitto(tmp_path, log=True).start()
    source = ("--source", "synthetic:street?seed=2&seconds=5", "--realtime", "--mqtt", f"127.0.0.1:{broker.port}")
    first, second = run(tmp_path / "a", *source), run(tmp_path / "b", *source)
    try:
        finished(first)
        finished(second)
        log = broker_log(broker)
        assert not dropped_connections(log), "\n".join(dropped_connections(log))
        clients = connected_clients(log)
        assert len(clients) == 2 and len(set(clients)) == 2, clients
        stored = {
            folder: (tmp_path / folder / "edgewatch-data" / "mqtt-client-id").read_text().strip() for folder in "ab"
        }
        assert set(stored.values()) == set(clients)

        finished(
            run(tmp_path / "a", "--source", "synthetic:street?seed=2&seconds=1", "--mqtt", f"127.0.0.1:{broker.port}")
        )
        assert connected_clients(broker_log(broker))[2:] == [stored["a"]]  # the same id after a restart
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait(10)
        broker.stop()


def instance_config(name: str, port: int, loop: bool) -> str:
    return f"""
instance: {name}
cameras:
  street:
    source: synthetic:street?seed=2&seconds=4
    realtime: true
    loop: {"true" if loop else "false"}
    stats_interval: 1
    zones:
      left: {{polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]}}
    rules:
      - {{name: busy, count_above: 1, end_after: 0.5}}
mqtt: {{host: 127.0.0.1, port: {port}, discovery: true}}
"""


def test_two_instances_on_one_broker_collide_nowhere_and_one_stopping_leaves_the_other_online(tmp_path):
    """Two hosts' edgewatch, each with a camera `street`: before, they shared `edgewatch/availability`,
    `edgewatch/street/...` and every Home Assistant id, so one stopping marked the other unavailable."""
    broker = Mosquitto(tmp_path, log=True).start()
    watcher = Subscriber(broker.port, "#")
    short = long = None
    try:
        for name, loop in (("gate-a", False), ("gate-b", True)):  # gate-b replays its video until stopped
            (tmp_path / name).mkdir()
            (tmp_path / name / "site.yaml").write_text(instance_config(name, broker.port, loop))
        short, long = run(tmp_path / "gate-a", "site.yaml"), run(tmp_path / "gate-b", "site.yaml")
        assert watcher.wait_for(lambda: watcher.latest("edgewatch/gate-b/availability") == b"online")
        finished(short)
        assert watcher.wait_for(lambda: watcher.latest("edgewatch/gate-a/availability") == b"offline", 10)
        time.sleep(1)  # a shared availability topic would have said offline for both by now
        assert long.poll() is None, long.stderr.read().decode()
        assert watcher.latest("edgewatch/gate-b/availability") == b"online"
        long.send_signal(signal.SIGINT)
        assert long.wait(30) == 130, long.stderr.read().decode()  # stopped as a user stops it
        assert not dropped_connections(broker_log(broker))
        assert watcher.wait_for(lambda: watcher.latest("edgewatch/gate-b/availability") == b"offline", 10)
        topics = watcher.topics()
    finally:
        for process in (short, long):
            if process is not None and process.poll() is None:  # a failed check must not leave it looping
                process.kill()
                process.wait(10)
        watcher.close()
        broker.stop()

    ours = [topic for topic in topics if topic.startswith("edgewatch/")]
    assert {topic.split("/")[1] for topic in ours} == {"gate-a", "gate-b"}  # every topic names its instance
    stats = json.loads(topics["edgewatch/gate-b/street/stats"])
    assert topics["edgewatch/gate-b/street/zones/left/current"] == str(stats["zones"]["left"]["occupancy"]).encode()
    for label, count in stats["unique"].items():  # the count so far, and how many are in view now
        assert topics[f"edgewatch/gate-b/street/{label}/count"] == str(count).encode()
        assert topics[f"edgewatch/gate-b/street/{label}/current"] == str(stats["current"].get(label, 0)).encode()

    discovery = {topic: json.loads(payload) for topic, payload in topics.items() if topic.startswith("homeassistant/")}
    problems = [problem for topic in discovery for problem in discovery_problems(topic, topics[topic])]
    assert not problems, "\n".join(problems)
    by_instance: dict[str, set[str]] = {"gate-a": set(), "gate-b": set()}
    unique_ids: dict[str, set[str]] = {"gate-a": set(), "gate-b": set()}
    for topic, config in discovery.items():
        instance = config["state_topic"].split("/")[1]
        by_instance[instance].add(topic)
        unique_ids[instance].add(config["unique_id"])
        assert config["state_topic"] in topics, f"{topic}: nothing was published on {config['state_topic']}"
    assert by_instance["gate-a"] and not by_instance["gate-a"] & by_instance["gate-b"]
    assert len(unique_ids["gate-a"]) == len(by_instance["gate-a"]) and not unique_ids["gate-a"] & unique_ids["gate-b"]


def test_an_instance_name_without_a_letter_or_digit_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "site.yaml").write_text('instance: "!!!"\ncameras:\n  street: {source: "synthetic:street?seconds=1"}\n')
    done = subprocess.run(edgewatch_command("run", "site.yaml"), cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 2
    said = done.stderr.decode().strip().splitlines()
    assert len(said) == 1 and "site.yaml:1: instance: an instance name needs a letter or digit" in said[0], said
