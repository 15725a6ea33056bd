"""MQTT against a real Mosquitto (restarted, refused, down) and the embedded broker: every event
arrives, in order, whatever the broker does."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime

import pytest

from brokers import Mosquitto, Subscriber, free_port
from edgewatch.analytics.events import make_event
from edgewatch.config import MqttConfig
from edgewatch.sinks.broker import EmbeddedBroker
from edgewatch.sinks.files import staged_path
from edgewatch.sinks.mqtt import MqttPublisher
from edgewatch.sinks.outbox import UNKNOWN, Outbox
from media import edgewatch_command


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


def crossing(index: int) -> dict:
    return make_event("line_crossing", "street", index / 10, datetime.now(UTC), line="gate", direction="in",
                      label="car", track_id=index)  # fmt: skip


SCENE = """
cameras:
  street:
    source: synthetic:street?seed=2&seconds=12
    realtime: true
    stats_interval: 2
    lines:
      middle: {points: [[0.5, 0.0], [0.5, 1.0]]}
    rules:
      - name: busy
        count_above: 1
        end_after: 0.5
"""


def test_a_run_delivers_every_event_in_order_through_two_broker_restarts(mosquitto, tmp_path):
    (tmp_path / "street.yaml").write_text(SCENE)
    subscriber = Subscriber(mosquitto.port, "edgewatch/#")
    run = subprocess.Popen(
        edgewatch_command("run", "street.yaml", "--mqtt", f"127.0.0.1:{mosquitto.port}", "--events", "events.jsonl",
                          "--quiet"),
        cwd=tmp_path, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(4)
    mosquitto.restart(down_for=1.0)
    time.sleep(3)
    mosquitto.restart(down_for=1.0)
    assert run.wait(60) == 0, run.stderr.read().decode()
    written = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sum(event["type"] == "incident" for event in written) >= 2
    expected = [event["message_id"] for event in written]
    subscriber.wait_for(lambda: set(expected) <= {event["message_id"] for event in subscriber.events()})
    received = [event["message_id"] for event in subscriber.events()]
    subscriber.close()
    assert set(received) == set(expected), f"{len(set(expected) - set(received))} events lost"
    assert list(dict.fromkeys(received)) == expected  # first copies in the order they happened
    duplicates = len(received) - len(set(received))
    print(f"{len(expected)} events, {duplicates} duplicates")  # at least once: a copy is allowed, not a loss


def test_events_wait_for_a_broker_that_is_down_at_the_start(tmp_path):
    broker = Mosquitto(tmp_path).start()
    subscriber = Subscriber(broker.port, "edgewatch/+/street/events")  # its session outlives the broker's stop
    assert subscriber.wait_for(lambda: subscriber.client.is_connected())
    time.sleep(0.3)
    broker.stop()
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port), Outbox(tmp_path / "outbox.sqlite"))
    publisher.start()
    sent = [crossing(index) for index in range(20)]
    for event in sent:
        publisher.event(event)
    time.sleep(1)
    assert publisher.pending() == 20
    broker.start()
    try:
        assert subscriber.wait_for(lambda: len(subscriber.events()) == 20)
        assert [event["message_id"] for event in subscriber.events()] == [event["message_id"] for event in sent]
        assert publisher.pending() == 0
    finally:
        publisher.close()
        subscriber.close()
        broker.stop()


def test_events_queued_by_a_killed_run_are_delivered_by_the_next(tmp_path):
    broker = Mosquitto(tmp_path)  # down during the first run
    (tmp_path / "street.yaml").write_text(SCENE)
    first = subprocess.Popen(
        edgewatch_command("run", "street.yaml", "--mqtt", f"127.0.0.1:{broker.port}", "--events", "events.jsonl",
                          "--quiet"),
        cwd=tmp_path, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(9)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    queued = message_ids(staged_path(tmp_path / "events.jsonl"))  # a killed run leaves its lines there
    assert queued, "the first run raised no event before it was killed"
    broker.start()
    subscriber = Subscriber(broker.port, "edgewatch/#")
    try:
        second = subprocess.run(
            edgewatch_command("run", "--source", "synthetic:street?seed=5&seconds=1", "--mqtt",
                              f"127.0.0.1:{broker.port}", "--quiet"),
            cwd=tmp_path, capture_output=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr.decode()
        assert subscriber.wait_for(lambda: set(queued) <= {e["message_id"] for e in subscriber.events()})
    finally:
        subscriber.close()
        broker.stop()


def test_wrong_credentials_give_a_clear_error_and_the_run_goes_on(tmp_path):
    broker = Mosquitto(tmp_path, passwords={"edge": "right"}).start()
    (tmp_path / "street.yaml").write_text(
        SCENE.replace("realtime: true", "realtime: false")
        + f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: edge, password: wrong}}\n"
    )
    try:
        done = subprocess.run(
            edgewatch_command("run", "street.yaml", "--events", "events.jsonl", "--quiet"),
            cwd=tmp_path, capture_output=True, timeout=120,
        )  # fmt: skip
    finally:
        broker.stop()
    assert done.returncode == 0
    errors = done.stderr.decode()
    assert "refused the connection" in errors and "password" in errors
    written = (tmp_path / "events.jsonl").read_text().splitlines()
    assert written, "events still reach the other outputs"
    assert len(Outbox(tmp_path / "edgewatch-data" / "mqtt-outbox.sqlite")) == len(written)  # kept for later


def test_the_embedded_broker_carries_availability_retained_stats_and_counts(tmp_path):
    with EmbeddedBroker(port=free_port()) as broker:
        config = MqttConfig(host="127.0.0.1", port=broker.port, discovery=True)
        outbox = Outbox(tmp_path / "outbox.sqlite")
        publisher = MqttPublisher(config, outbox, rules={"street": ["busy"]}, instance="site").start()
        publisher.stats({"camera": "street", "time": 2.0, "unique": {"car": 3}, "current": {"car": 1}})
        publisher.event(make_event("incident", "street", 1.0, datetime.now(UTC), phase="start", rule="busy",
                                   labels=["car"], track_ids=[1, 2], since=1.0))  # fmt: skip
        subscriber = Subscriber(broker.port)
        try:
            assert subscriber.wait_for(lambda: subscriber.latest("edgewatch/site/street/car/count") == b"3")
            assert subscriber.latest("edgewatch/site/availability") == b"online"
            assert subscriber.latest("edgewatch/site/street/car/current") == b"1"
            assert json.loads(subscriber.latest("edgewatch/site/street/stats"))["unique"] == {"car": 3}
            assert subscriber.wait_for(lambda: subscriber.latest("edgewatch/site/street/incidents/busy") == b"ON")
            sensor = json.loads(subscriber.latest("homeassistant/sensor/edgewatch-site/street_car_count/config"))
            assert sensor["state_topic"] == "edgewatch/site/street/car/count"
            assert subscriber.latest("homeassistant/binary_sensor/edgewatch-site/street_busy_incident/config")
            publisher.close()
            assert subscriber.wait_for(lambda: subscriber.latest("edgewatch/site/availability") == b"offline")
        finally:
            subscriber.close()


def test_tls_with_the_brokers_ca_delivers_and_without_it_is_refused(tmp_path):
    broker = Mosquitto(tmp_path, tls=True).start()
    try:
        config = MqttConfig(host="127.0.0.1", port=broker.port, tls=True, ca=str(broker.ca))
        publisher = MqttPublisher(config, Outbox(tmp_path / "good.sqlite")).start()
        publisher.event(crossing(1))
        deadline = time.monotonic() + 15
        while publisher.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert publisher.pending() == 0  # acknowledged over TLS
        publisher.close()
        untrusted = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port, tls=True),
                                  Outbox(tmp_path / "bad.sqlite")).start()  # fmt: skip
        untrusted.event(crossing(2))
        time.sleep(2)
        assert untrusted.pending() == 1  # the system's CAs do not know the test CA: nothing sent
        untrusted.close(flush_timeout=0)
    finally:
        broker.stop()


def message_ids(path) -> list[str]:
    return [json.loads(line)["message_id"] for line in path.read_text().splitlines()]


def test_events_queued_for_an_unreachable_broker_go_to_it_when_it_is_back_and_never_to_another(tmp_path):
    """A run whose broker never answered (a typo, a test broker) leaves its events queued; a later run
    in the same storage folder that names another broker must not publish them there."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first_broker, other_broker = Mosquitto(tmp_path / "a"), Mosquitto(tmp_path / "b").start()

    def run(broker: Mosquitto, seconds: int, events: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            edgewatch_command("run", "--source", f"synthetic:street?seed=2&seconds={seconds}", "--mqtt",
                              f"127.0.0.1:{broker.port}", "--events", events, "--quiet"),
            cwd=tmp_path, capture_output=True, timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        return done

    run(first_broker, 4, "first.jsonl")  # its broker is down: every event stays queued
    queued = message_ids(tmp_path / "first.jsonl")
    assert queued, "the first run raised no event"
    other = Subscriber(other_broker.port, "edgewatch/#")
    try:
        second = run(other_broker, 2, "second.jsonl")
        own = message_ids(tmp_path / "second.jsonl")
        assert own, "the second run raised no event"
        assert other.wait_for(lambda: set(own) <= {event["message_id"] for event in other.events()})
        assert not set(queued) & {event["message_id"] for event in other.events()}, "sent to the wrong broker"
        said = second.stderr.decode()
        assert f"{len(queued)} MQTT events wait for 127.0.0.1:{first_broker.port}" in said
        assert f"not sent to 127.0.0.1:{other_broker.port}" in said
        assert f"`edgewatch outbox --drop 127.0.0.1:{first_broker.port}` drops them" in said
    finally:
        other.close()
        other_broker.stop()

    first_broker.start()
    back = Subscriber(first_broker.port, "edgewatch/#")
    try:
        run(first_broker, 1, "third.jsonl")
        assert back.wait_for(lambda: set(queued) <= {event["message_id"] for event in back.events()})
        arrived = dict.fromkeys(event["message_id"] for event in back.events())  # first copies, in order
        assert [message for message in arrived if message in queued] == queued
    finally:
        back.close()
        first_broker.stop()
    assert len(Outbox(tmp_path / "edgewatch-data" / "mqtt-outbox.sqlite")) == 0


def test_an_outbox_from_before_queues_per_broker_is_kept_and_never_sent_to_the_new_broker(tmp_path):
    storage = tmp_path / "edgewatch-data"
    storage.mkdir()
    old = sqlite3.connect(storage / "mqtt-outbox.sqlite")  # the schema of the outbox before brokers
    old.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB)")
    waiting = [crossing(index) for index in range(3)]
    for event in waiting:
        old.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", ("edgewatch/street/events", json.dumps(event)))
    old.commit()
    old.close()
    broker = Mosquitto(tmp_path).start()
    subscriber = Subscriber(broker.port, "edgewatch/#")
    try:
        done = subprocess.run(
            edgewatch_command("run", "--source", "synthetic:street?seed=2&seconds=2", "--mqtt", f"127.0.0.1:{broker.port}",
                              "--events", "events.jsonl", "--quiet"),
            cwd=tmp_path, capture_output=True, timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        own = message_ids(tmp_path / "events.jsonl")
        assert subscriber.wait_for(lambda: set(own) <= {event["message_id"] for event in subscriber.events()})
        received = {event["message_id"] for event in subscriber.events()}
    finally:
        subscriber.close()
        broker.stop()
    assert not received & {event["message_id"] for event in waiting}, "an unknown broker's events were sent"
    said = done.stderr.decode()
    assert "3 MQTT events wait for an unknown broker" in said and "`edgewatch outbox --drop unknown`" in said
    outbox = Outbox(storage / "mqtt-outbox.sqlite")
    assert outbox.waiting() == {UNKNOWN: 3}
    assert [json.loads(payload) for _, _, payload in outbox.peek(UNKNOWN, 10)] == waiting  # kept as they were
    assert outbox.drop(UNKNOWN) == 3 and len(outbox) == 0


def test_the_embedded_broker_is_one_queue_whatever_port_it_gets(tmp_path):
    outbox_path = tmp_path / "mqtt-outbox.sqlite"
    config = MqttConfig(host="embedded", port=0)
    gone = MqttPublisher(config, Outbox(outbox_path), host="127.0.0.1", port=free_port()).start()  # nothing listens
    sent = [crossing(index) for index in range(5)]
    for event in sent:
        gone.event(event)
    gone.close(flush_timeout=0)
    with EmbeddedBroker(port=free_port()) as broker:
        subscriber = Subscriber(broker.port, "edgewatch/+/street/events")
        publisher = MqttPublisher(config, Outbox(outbox_path), host=broker.host, port=broker.port)
        try:
            assert subscriber.wait_for(lambda: subscriber.client.is_connected())
            publisher.start()
            assert subscriber.wait_for(lambda: len(subscriber.events()) == 5)
            assert [event["message_id"] for event in subscriber.events()] == [event["message_id"] for event in sent]
        finally:
            publisher.close()
            subscriber.close()
