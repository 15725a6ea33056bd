"""The MQTT outbox keeps a queue per broker, which a user can drop or move; broker names read back as
written. What a run sends from it, against real brokers, is in test_mqtt.py."""

from __future__ import annotations

import pytest

from edgewatch.errors import EdgewatchError
from edgewatch.sinks.outbox import FILE_NAME, Broker, Outbox, manage


def test_drop_and_move_act_on_one_brokers_queue(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    typo, real = Broker.named("mqtt.exmaple", 1883), Broker.named("MQTT.example", 1883)
    for index in range(4):
        outbox.put(typo, "edgewatch/street/events", str(index).encode())
    outbox.put(real, "edgewatch/street/events", b"kept")
    assert outbox.waiting() == {typo: 4, real: 1}
    assert outbox.move(typo, Broker.named("embedded", 0)) == 4
    assert outbox.drop(Broker.parse("embedded")) == 4
    assert outbox.waiting() == {Broker.parse("mqtt.example:1883"): 1}
    assert outbox.drop() == 1 and len(outbox) == 0


@pytest.mark.parametrize(
    "text", ["mqtt.example:1883", "10.0.0.5:1884/site1", "embedded", "embedded/site1/cams", "[::1]:1883", "unknown"]
)
def test_a_broker_reads_back_as_it_is_written(text: str):
    assert str(Broker.parse(text)) == text
    assert Broker.parse(Broker.parse(text).key) == Broker.parse(text)


@pytest.mark.parametrize("text", ["", "host:99999", "host:port", "embedded:1883", "a:b:c"])
def test_a_broker_that_is_no_address_is_a_clear_error(text: str):
    with pytest.raises(EdgewatchError, match="does not name a broker"):
        Broker.parse(text)


def test_manage_lists_each_brokers_queue_and_drops_one_or_all(tmp_path):
    assert manage(tmp_path) == f"no MQTT events wait in {tmp_path}"
    assert not (tmp_path / FILE_NAME).exists()  # looking creates no queue
    outbox = Outbox(tmp_path / FILE_NAME)
    for broker, count in ((Broker.parse("mqtt.exmaple:1883"), 3), (Broker.parse("embedded/site1"), 2)):
        for _ in range(count):
            outbox.put(broker, "edgewatch/street/events", b"{}")
    outbox.close()
    assert manage(tmp_path) == "3 MQTT events wait for mqtt.exmaple:1883\n2 MQTT events wait for embedded/site1"
    assert manage(tmp_path, drop="mqtt.exmaple:1883") == (
        "dropped 3 MQTT events for mqtt.exmaple:1883\n2 MQTT events wait for embedded/site1"
    )
    assert manage(tmp_path, drop="all") == f"dropped 2 MQTT events\nno MQTT events wait in {tmp_path}"
    with pytest.raises(EdgewatchError, match="no storage folder"):
        manage(tmp_path / "typo")


def test_the_outbox_command_lists_and_drops_queues_left_by_a_run_from_before(tmp_path, run_cli):
    import json
    import sqlite3

    storage = tmp_path / "edgewatch-data"
    storage.mkdir()
    old = sqlite3.connect(storage / FILE_NAME)  # the schema of the outbox before brokers
    old.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB)")
    for index in range(3):
        old.execute(
            "INSERT INTO outbox (topic, payload) VALUES (?, ?)", ("edgewatch/a/events", json.dumps({"i": index}))
        )
    old.commit()
    old.close()
    listed = run_cli("outbox")
    assert listed.returncode == 0 and "3 MQTT events wait for unknown" in listed.stdout.decode()
    bad = run_cli("outbox", "--drop", "host:notaport")
    assert bad.returncode == 2 and len(bad.stderr.decode().strip().splitlines()) == 1
    dropped = run_cli("outbox", "--drop", "unknown")
    assert dropped.returncode == 0 and "dropped 3 MQTT events for unknown" in dropped.stdout.decode()
    assert "no MQTT events wait" in run_cli("outbox").stdout.decode()
