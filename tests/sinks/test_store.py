"""The event store: what goes in comes out, filtered as a dashboard asks; copies, threads, upgrades,
foreign files and a full disk."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgewatch import EdgewatchError
from edgewatch.analytics.events import make_event
from edgewatch.sinks.store import MIGRATIONS, VERSION, EventStore
from timelines import analytics, boxes, moving_box, run

T0 = datetime(2026, 11, 23, 13, 8, 0, tzinfo=UTC)  # the start of a minute


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def start(camera: str, label: str, seconds: float, track_id: int = 1) -> dict:
    return make_event("object", camera, seconds, at(seconds), phase="start", label=label, track_id=track_id)


def crossing(camera: str, label: str, seconds: float, direction: str = "in") -> dict:
    return make_event(
        "line_crossing", camera, seconds, at(seconds), line="gate", direction=direction, label=label, track_id=1
    )


def incident(phase: str, seconds: float, labels: list[str]) -> dict:
    return make_event("incident", "pets", seconds, at(seconds), phase=phase, rule="meet", labels=labels, id="inc1")


def stats(camera: str, seconds: float, current: dict[str, int]) -> dict:
    return {"camera": camera, "time": seconds, "wall_time": at(seconds).isoformat(), "current": current}


@pytest.fixture
def store(tmp_path: Path):
    with EventStore(tmp_path / "events.sqlite") as opened:
        yield opened


@pytest.fixture
def mixed(store: EventStore) -> dict[str, dict]:
    """Two cameras over two minutes: street counts cars and people, pets has a cat-and-dog2 incident."""
    events = {
        "car": start("street", "car", 5),
        "crossing": crossing("street", "car", 10),
        "person": start("street", "person", 70, track_id=2),
        "cat": start("pets", "cat", 20),
        "incident_start": incident("start", 30, ["cat", "dog2"]),
        "incident_end": incident("end", 90, ["cat", "dog2"]),
    }
    for event in events.values():
        store.event(event)
    return events


def test_events_from_real_analytics_come_back_as_they_were_sent(store: EventStore):
    gate = {"points": [[300, 0], [300, 360]]}
    timeline = [
        boxes(("person", box), ("cat", (10, 10, 40, 40)), ("dog2", (500, 10, 540, 50)))
        for box in moving_box((200, 150), (4, 0), 60)
    ]
    camera = analytics(lines={"gate": gate}, rules=[{"name": "meet", "all_present": ["cat", "dog2"]}])
    sent = run(camera, timeline)
    assert {event["type"] for event in sent} == {"object", "line_crossing", "incident"}
    for event in sent:
        store.event(event)
    stored = store.events(limit=None, newest_first=False)
    assert sorted(stored, key=lambda e: e["message_id"]) == sorted(sent, key=lambda e: e["message_id"])
    walls = [event["wall_time"] for event in stored]
    assert walls == sorted(walls)
    assert store.cameras() == ["test"]


def test_filters_by_camera_type_and_label_find_incidents_by_any_of_their_labels(store, mixed):
    assert {e["message_id"] for e in store.events(camera="pets")} == {
        mixed[name]["message_id"] for name in ("cat", "incident_start", "incident_end")
    }
    assert store.events(type="line_crossing") == [mixed["crossing"]]
    assert store.events(label="dog2", newest_first=False) == [mixed["incident_start"], mixed["incident_end"]]
    assert store.events(label="cat", newest_first=False) == [
        mixed["cat"],
        mixed["incident_start"],
        mixed["incident_end"],
    ]
    assert store.events(label="car", camera="pets") == []
    assert store.count(camera="street") == 3 and store.count(label="cat") == 3
    assert store.cameras() == ["pets", "street"]


def test_time_ranges_take_datetimes_or_iso_text_and_order_and_limit_apply(store, mixed):
    first_minute = store.events(since=T0, until="2026-11-23T13:09:00Z", newest_first=False)
    assert [e["message_id"] for e in first_minute] == [
        mixed[name]["message_id"] for name in ("car", "crossing", "cat", "incident_start")
    ]
    naive = T0.replace(tzinfo=None) + timedelta(seconds=60)  # no zone means UTC, as every wall_time
    assert store.events(since=naive) == [mixed["incident_end"], mixed["person"]]
    assert store.events(limit=2) == [mixed["incident_end"], mixed["person"]]
    with pytest.raises(EdgewatchError, match="not a time"):
        store.events(since="yesterday")


def test_a_message_delivered_twice_is_stored_and_counted_once(store: EventStore):
    car = start("street", "car", 5)
    assert store.add([car, car]) == 1
    store.event(car)
    store.event(dict(car))
    old = {key: value for key, value in crossing("street", "car", 10).items() if key != "message_id"}
    store.event(old)  # an older sender without message_id: the same content is the same message
    store.event(dict(old))
    assert store.count() == 2
    assert [(row["started"], row["in"]) for row in store.series()] == [(1, 1)]


def test_the_series_counts_starts_and_crossings_per_minute_and_keeps_the_highest_current(store: EventStore):
    for event in [
        start("street", "car", 1),
        start("street", "car", 2, track_id=2),
        start("street", "person", 3, track_id=3),
        crossing("street", "car", 10),
        crossing("street", "car", 20),
        crossing("street", "car", 30, "out"),
        crossing("street", "car", 61),
        start("yard", "car", 4),
    ]:
        store.event(event)
    store.stats(stats("street", 15, {"car": 2}))
    store.stats(stats("street", 45, {"car": 1}))  # lower later in the minute: the highest stays
    store.stats(stats("street", 75, {"car": 3, "person": 1}))

    def row(label, minute, started=0, inward=0, outward=0, current=0, camera="street"):
        stamp = at(60 * minute).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"camera": camera, "label": label, "minute": stamp, "started": started, "in": inward,
                "out": outward, "max_current": current}  # fmt: skip

    assert store.series(camera="street") == [
        row("car", 0, started=2, inward=2, outward=1, current=2),
        row("person", 0, started=1),
        row("car", 1, inward=1, current=3),
        row("person", 1, current=1),
    ]
    assert store.series(label="car", since=at(60)) == [row("car", 1, inward=1, current=3)]
    assert store.series(camera="yard") == [row("car", 0, started=1, camera="yard")]


def test_four_threads_writing_at_once_lose_nothing(store: EventStore, caplog):
    other = EventStore(store.path)  # a second connection, as a second process would have

    def camera(name: str, into: EventStore):
        for index in range(500):
            into.event(start(name, "car", index * 0.1, track_id=index))

    threads = [threading.Thread(target=camera, args=(f"cam{n}", (store, other)[n % 2])) for n in range(4)]
    with caplog.at_level(logging.WARNING):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    other.close()
    assert [store.count(camera=f"cam{n}") for n in range(4)] == [500] * 4
    assert store.lost == other.lost == 0 and not caplog.records  # no "database is locked"
    assert sum(row["started"] for row in store.series()) == 2000


def test_reopening_keeps_events_and_series(tmp_path: Path, mixed):
    with EventStore(tmp_path / "events.sqlite") as store:
        before = (store.events(limit=None), store.series())
        store.stats(stats("street", 5, {"car": 1}))
    with EventStore(tmp_path) as reopened:  # a folder means its events.sqlite
        assert reopened.events(limit=None) == before[0]
        assert [row["max_current"] for row in reopened.series(camera="street", label="car")] == [1]


def test_a_version_1_file_is_upgraded_and_its_incidents_found_by_label(tmp_path: Path):
    path = tmp_path / "events.sqlite"
    old = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    event = incident("start", 30, ["cat", "dog2"])
    old.execute(
        "INSERT INTO events (message_id, camera, type, phase, id, time, wall_time, wall_epoch, json)"
        " VALUES (?, 'pets', 'incident', 'start', 'inc1', 30, ?, ?, ?)",
        (event["message_id"], event["wall_time"], at(30).timestamp(), json.dumps(event)),
    )
    old.commit()
    old.close()
    with EventStore(path) as store:
        assert store.events(label="dog2") == [event]
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == VERSION


def test_a_file_from_a_newer_edgewatch_is_refused_and_left_alone(tmp_path: Path):
    path = tmp_path / "events.sqlite"
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {VERSION + 1}")
    newer.close()
    before = path.read_bytes()
    with pytest.raises(EdgewatchError) as refused:
        EventStore(path)
    assert f"schema version {VERSION + 1}" in refused.value.message and "upgrade edgewatch" in refused.value.hint
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused_and_left_unchanged(tmp_path: Path):
    path = tmp_path / "events.sqlite"
    path.write_text("camera,label\nstreet,car\n")
    with pytest.raises(EdgewatchError, match="not a SQLite database"):
        EventStore(path)
    assert path.read_text() == "camera,label\nstreet,car\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite"]  # no -wal or -shm beside it


def test_wal_lets_a_reader_look_while_edgewatch_writes(store: EventStore):
    store.event(start("street", "car", 1))
    reader = sqlite3.connect(store.path, timeout=0.1)  # what the sqlite3 shell does
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # holds a read snapshot
    store.event(start("street", "car", 2, track_id=2))  # not blocked by the reader
    assert store.count() == 2 and store.lost == 0
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    reader.close()


def test_a_full_disk_loses_new_events_with_one_warning_and_keeps_the_rest(store: EventStore, caplog):
    store.event(start("street", "car", 1))
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: as on a full disk
    bulky = [make_event("state", "door", i, at(i), **{"from": "x" * 4000, "to": "open"}) for i in range(20)]
    with caplog.at_level(logging.WARNING, logger="edgewatch.sinks.store"):
        for event in bulky:
            store.event(event)
    assert store.lost > 0
    assert len(caplog.records) == 1 and "cannot write" in caplog.text
    assert store.count(type="object") == 1
    store._db.execute("PRAGMA max_page_count = 1000000")  # space again: writing goes on
    store.event(start("street", "car", 2, track_id=2))
    assert store.count(type="object") == 2


def test_a_place_where_no_file_can_be_made_is_one_error_with_a_hint(tmp_path: Path):
    (tmp_path / "data").write_text("a file where storage.path should be a folder")
    with pytest.raises(EdgewatchError) as refused:
        EventStore(tmp_path / "data" / "events.sqlite")
    assert "cannot open the event store" in refused.value.message and "storage.path" in refused.value.hint


def test_a_config_run_keeps_its_events_and_a_damaged_store_stops_it_with_one_line(run_cli, tmp_path):
    config = "cameras:\n  street:\n    source: synthetic:street?seed=3&seconds=6\n"
    (tmp_path / "site.yaml").write_text(config)
    done = run_cli("run", "site.yaml", "--events", "events.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    written = (tmp_path / "events.jsonl").read_text().splitlines()
    with EventStore(tmp_path / "edgewatch-data" / "events.sqlite") as store:
        assert store.count() == len(written) > 0
    damaged = tmp_path / "edgewatch-data" / "events.sqlite"
    for extra in ("-wal", "-shm"):
        damaged.with_name(damaged.name + extra).unlink(missing_ok=True)
    damaged.write_bytes(b"not a database at all" * 10)
    done = run_cli("run", "site.yaml", "--quiet")
    assert done.returncode == 2
    assert len(done.stderr.decode().strip().splitlines()) == 1 and "events.sqlite" in done.stderr.decode()
    assert damaged.read_bytes() == b"not a database at all" * 10


def test_max_days_deletes_old_events_and_minutes_when_the_store_opens(tmp_path: Path):
    """`storage.max_days` for the store: the store of a camera that runs for years stays bounded."""
    now = datetime.now(UTC)
    old, new = now - timedelta(days=40), now - timedelta(days=1)
    path = tmp_path / "events.sqlite"
    with EventStore(path) as store:
        for when, label in ((old, "cat"), (new, "car")):
            store.add([
                make_event("object", "yard", 1.0, when, phase="start", label=label, track_id=1),
                make_event("incident", "yard", 2.0, when, phase="start", rule="r", labels=[label, "dog"], id=label),
            ])  # fmt: skip
        assert store.count() == 4 and len(store.series()) == 2
    with EventStore(path, max_days=30) as store:
        assert sorted(event.get("label") or event["labels"][0] for event in store.events()) == ["car", "car"]
        assert store.events(label="cat") == []  # the incident's labels went with it
        assert [row["label"] for row in store.series()] == ["car"]
        assert store.prune(30) == 0  # nothing left to delete
