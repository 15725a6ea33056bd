"""The event store: every event and a per-minute series in one SQLite file, for dashboards and reports.

See docs/store.md for the schema and the queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time as clock
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edgewatch.errors import EdgewatchError
from edgewatch.frame import iso_time
from edgewatch.pipeline.result import FrameResult

log = logging.getLogger(__name__)

FILE_NAME = "events.sqlite"  # the store's name inside `storage.path`
BUSY_TIMEOUT_S = 5.0  # how long to wait for another process (a reader's checkpoint, a second writer)
WARN_EVERY_S = 60.0  # a full disk fails every write: one warning a minute, not one per event
PRUNE_EVERY_S = 3600.0  # with max_days, old events go at open and then once an hour: days matter, not seconds

# Applied in order, each in one transaction that also sets `PRAGMA user_version` to its number.
# Never edit one that has shipped: add the next.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: one row per event message, and the per-minute series per camera and label
    (
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            camera TEXT NOT NULL,
            type TEXT NOT NULL,
            phase TEXT,
            label TEXT,
            track_id INTEGER,
            id TEXT,
            time REAL,
            wall_time TEXT NOT NULL,
            wall_epoch REAL NOT NULL,
            json TEXT NOT NULL
        )""",
        "CREATE INDEX events_wall ON events (wall_epoch)",
        "CREATE INDEX events_camera ON events (camera, wall_epoch)",
        "CREATE INDEX events_type ON events (type, wall_epoch)",
        "CREATE INDEX events_label ON events (label, wall_epoch)",
        "CREATE INDEX events_id ON events (id)",
        """CREATE TABLE series (
            camera TEXT NOT NULL,
            label TEXT NOT NULL,
            minute INTEGER NOT NULL,
            started INTEGER NOT NULL DEFAULT 0,
            crossed_in INTEGER NOT NULL DEFAULT 0,
            crossed_out INTEGER NOT NULL DEFAULT 0,
            max_current INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (camera, label, minute)
        ) WITHOUT ROWID""",
        "CREATE INDEX series_minute ON series (minute)",
    ),
    # 2: an incident involves several labels (`labels`): one row per event and label, in time
    # order, so a label filter finds the incident and reads the newest first without sorting; it
    # replaces the index on events.label.
    (
        """CREATE TABLE event_labels (
            label TEXT NOT NULL,
            wall_epoch REAL NOT NULL,
            seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
            PRIMARY KEY (label, wall_epoch, seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX event_labels_seq ON event_labels (seq)",
        """INSERT INTO event_labels (label, wall_epoch, seq)
            SELECT label, wall_epoch, seq FROM events WHERE label IS NOT NULL""",
        """INSERT OR IGNORE INTO event_labels (label, wall_epoch, seq)
            SELECT labels.value, events.wall_epoch, events.seq
            FROM events, json_each(events.json, '$.labels') AS labels
            WHERE json_type(events.json, '$.labels') = 'array' AND labels.type = 'text'""",
        "DROP INDEX events_label",
    ),
)
VERSION = len(MIGRATIONS)

_INSERT_EVENT = """INSERT INTO events
    (message_id, camera, type, phase, label, track_id, id, time, wall_time, wall_epoch, json)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING"""
_INSERT_LABEL = "INSERT OR IGNORE INTO event_labels (label, wall_epoch, seq) VALUES (?, ?, ?)"
_COUNT_UP = """INSERT INTO series (camera, label, minute, started, crossed_in, crossed_out) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (camera, label, minute) DO UPDATE SET started = started + excluded.started,
    crossed_in = crossed_in + excluded.crossed_in, crossed_out = crossed_out + excluded.crossed_out"""
_CURRENT = """INSERT INTO series (camera, label, minute, max_current) VALUES (?, ?, ?, ?)
    ON CONFLICT (camera, label, minute) DO UPDATE SET max_current = max(max_current, excluded.max_current)"""

_SQLITE_HEADER = b"SQLite format 3\x00"

Moment = datetime | str


class EventStore:
    """A sink that keeps every event and a per-minute series per camera and label in SQLite.

    Several cameras may share one store; a message delivered twice (same `message_id`) is kept once.
    A full disk or an I/O error loses the messages it hits, with a warning, and never stops the
    pipeline. The file is in WAL mode: readers (the `sqlite3` shell, a dashboard) never block it.

    Args:
        path: the SQLite file, created when missing; an existing folder means `<folder>/events.sqlite`.
        max_days: delete events and series older than this many days (by their wall time), when the
            store opens and then once an hour (`storage.max_days`); None keeps everything.

    Raises:
        EdgewatchError: the file is not an event store, was written by a newer edgewatch, or cannot
            be opened.

    Example:
        >>> from edgewatch.analytics.events import make_event
        >>> from datetime import datetime, UTC
        >>> store = EventStore("edgewatch-data/events.sqlite")  # doctest: +SKIP
        >>> store.event(make_event("line_crossing", "street", 5.1, datetime.now(UTC), line="middle",
        ...                        direction="in", label="car", track_id=12))  # doctest: +SKIP
        >>> [e["label"] for e in store.events(camera="street", type="line_crossing")]  # doctest: +SKIP
        ['car']
    """

    def __init__(self, path: str | Path, max_days: float | None = None) -> None:
        path = Path(path)
        self.max_days = max_days
        self.path = path / FILE_NAME if path.is_dir() else path
        self.lost = 0  # messages a write error dropped
        self._lost_since_warning = 0
        self._warned_at = -WARN_EVERY_S
        # One connection behind a lock, not one per thread: SQLite lets one writer in at a time
        # whatever we do, and writers on separate connections wait for each other by sleeping in
        # the busy handler (milliseconds each, "database is locked" past the timeout), while a
        # Python lock hands over in microseconds. One connection also keeps one cache of prepared
        # statements and can be closed by whichever thread calls close().
        self._lock = threading.Lock()
        self._queue: list[_Write] = []  # writes waiting for the lock: the next holder commits them all
        self._queue_lock = threading.Lock()
        self._db = self._open()
        self._pruned_at = -PRUNE_EVERY_S
        self._prune_when_due()

    # --- opening ------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self._refuse_foreign_file()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), not the module's
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise EdgewatchError(
                f"cannot open the event store {self.path}: {_reason(error)}", "choose a writable storage.path"
            ) from None
        try:
            self._prepare(db)
        except sqlite3.DatabaseError as error:
            db.close()
            raise EdgewatchError(
                f"cannot open the event store {self.path}: {_reason(error)}",
                "check the file, or move it away to start a new store",
            ) from None
        except BaseException:
            db.close()
            raise
        return db

    def _refuse_foreign_file(self) -> None:
        """Checks the header before SQLite touches the file, so a wrong path leaves it as it was."""
        try:
            with self.path.open("rb") as file:
                header = file.read(len(_SQLITE_HEADER))
        except (FileNotFoundError, NotADirectoryError):
            return  # a new store; whether it can be made, opening tells
        except OSError as error:
            raise EdgewatchError(
                f"cannot open the event store {self.path}: {error.strerror}", "choose a readable storage.path"
            ) from None
        if header and header != _SQLITE_HEADER:  # an empty file is an empty database to SQLite
            raise EdgewatchError(
                f"{self.path} is not a SQLite database, so not an event store",
                f"move it away, or point storage.path at another folder (the store is {FILE_NAME})",
            )

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._check_version(_user_version(db))
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # e.g. a network file system without shared memory
            log.warning(
                "event store %s: WAL mode is not available here (%s); readers will block writes", self.path, mode
            )
        db.execute("PRAGMA synchronous = NORMAL")  # with WAL: fsync at checkpoints, not per commit
        db.execute("PRAGMA foreign_keys = ON")
        self._migrate(db)

    def _check_version(self, version: int) -> None:
        if version > VERSION:
            raise EdgewatchError(
                f"the event store {self.path} has schema version {version}; this edgewatch knows up to {VERSION}",
                "upgrade edgewatch, or point storage.path at another folder",
            )

    def _migrate(self, db: sqlite3.Connection) -> None:
        fresh: bool | None = None  # known at the first step
        while True:
            # IMMEDIATE takes the write lock before reading the version: two processes opening an
            # old file at once apply each migration once.
            db.execute("BEGIN IMMEDIATE")
            try:
                version = _user_version(db)
                self._check_version(version)
                if version == VERSION:
                    db.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            fresh = fresh if fresh is not None else version == 0
            # a new file is made by running every migration: that is no upgrade worth telling the user
            (log.debug if fresh else log.info)("event store %s: schema upgraded to version %d", self.path, version + 1)

    # --- the sink -----------------------------------------------------------------------------

    def write(self, result: FrameResult) -> None:
        pass  # frames are not stored; events and stats are

    def event(self, event: dict[str, Any]) -> None:
        """Stores one event message (docs/formats.md); a copy of one already stored is ignored."""
        self.add([event])

    def stats(self, stats: dict[str, Any]) -> None:
        """Raises the minute's highest `current` count per label of the stats' camera."""
        try:
            camera = str(stats["camera"])
            minute = _minute(_epoch(stats["wall_time"]))
            rows = [(camera, str(label), minute, int(count)) for label, count in (stats.get("current") or {}).items()]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("event store %s: stats without camera, wall_time or current ignored (%s)", self.path, error)
            return
        if rows:
            self._commit(_Write(lambda db: db.executemany(_CURRENT, rows).rowcount, len(rows)))

    def add(self, events: Iterable[dict[str, Any]]) -> int:
        """Stores event messages in one transaction, e.g. to import an `--events` file.

        Args:
            events: event dicts as docs/formats.md describes them.

        Returns:
            How many were new (copies of stored messages are skipped).

        Example:
            >>> store.add(json.loads(line) for line in open("events.jsonl"))  # doctest: +SKIP
            42
        """
        rows = []
        for event in events:
            try:
                rows.append(_row(event))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                log.warning("event store %s: malformed event ignored (%s): %.200r", self.path, error, event)
        if not rows:
            return 0
        added = self._commit(_Write(lambda db: _insert(db, rows), len(rows))) or 0
        self._prune_when_due()
        return added

    def prune(self, max_days: float, now: datetime | None = None) -> int:
        """Deletes the events, and the minutes of the series, older than `max_days` before `now`.

        Returns:
            How many events were deleted (0 when an error stopped it, with a warning).

        Example:
            >>> store.prune(30)  # doctest: +SKIP
            1204
        """
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=max_days)).timestamp()

        def delete(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM series WHERE minute < ?", (_minute(cutoff),))
            return db.execute("DELETE FROM events WHERE wall_epoch < ?", (cutoff,)).rowcount  # labels cascade

        deleted = self._commit(_Write(delete, 0)) or 0
        if deleted:
            log.info("event store %s: %d events older than %g days deleted", self.path, deleted, max_days)
        return deleted

    def _prune_when_due(self) -> None:
        now = clock.monotonic()
        if self.max_days is not None and now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.prune(self.max_days)

    def close(self) -> None:
        """Closes the file; what was stored stays. Safe to call twice."""
        with self._lock:
            try:
                self._db.execute("PRAGMA optimize")  # cheap; keeps the planner's statistics fresh
                self._db.close()
            except sqlite3.ProgrammingError:
                pass  # closed already
            except sqlite3.Error as error:
                log.warning("event store %s: closing failed (%s)", self.path, _reason(error))
                self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _commit(self, write: _Write) -> int | None:
        """Runs `write` in a write transaction; None when an error lost it (with a warning).

        Group commit: while one thread commits, the writes of other cameras queue up, and the next
        thread to get the lock commits all of them in one transaction. A commit costs far more than
        an insert (it appends every page it touched to the WAL), so bursts from several cameras
        share that cost, and one camera alone still sees its event committed before `event()` returns.
        """
        with self._queue_lock:
            self._queue.append(write)
        with self._lock:
            if write.done:  # another thread's commit took it along
                return write.result
            with self._queue_lock:
                group, self._queue = self._queue, []
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                for item in group:
                    item.result = item.work(db)
                db.execute("COMMIT")
            except sqlite3.Error as error:
                try:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled back already (a full disk does)
                for item in group:
                    item.result = None
                self._lose(sum(item.messages for item in group), error)
            finally:
                for item in group:
                    item.done = True
            return write.result

    def _lose(self, messages: int, error: sqlite3.Error) -> None:
        self.lost += messages
        self._lost_since_warning += messages
        now = clock.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            log.warning(
                "event store %s: cannot write (%s); %d message(s) lost, edgewatch goes on without them",
                self.path,
                _reason(error),
                self._lost_since_warning,
            )
            self._warned_at, self._lost_since_warning = now, 0

    # --- queries ------------------------------------------------------------------------------

    def events(
        self,
        camera: str | None = None,
        label: str | None = None,
        type: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        limit: int | None = 1000,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Stored events, as they came, filtered by what is given.

        Args:
            camera: only this camera's.
            label: events about this label: its objects, crossings, zone visits, and the incidents
                that involve it (one of their `labels`).
            type: `object`, `line_crossing`, `zone`, `incident`, `state` or `detector`.
            since: wall time from (inclusive): a datetime (naive means UTC) or ISO 8601 text.
            until: wall time to (exclusive), like `since`.
            limit: at most this many; None for all.
            newest_first: order by wall time, newest first; False for oldest first.

        Example:
            >>> store.events(camera="pets", label="dog2", type="incident", since="2026-11-23T13:00Z")  # doctest: +SKIP
            [{'type': 'incident', 'phase': 'start', 'camera': 'pets', 'rule': 'cat_and_dog2', ...}]
        """
        sql, parameters, order = _select("events.json", camera, label, type, since, until)
        sql += " ORDER BY " + order.format("DESC" if newest_first else "ASC")
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(max(0, int(limit)))
        return [json.loads(text) for (text,) in self._read(sql, parameters)]

    def count(
        self,
        camera: str | None = None,
        label: str | None = None,
        type: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> int:
        """How many stored events `events()` would find with these filters and no limit."""
        sql, parameters, _ = _select("count(*)", camera, label, type, since, until)
        return int(self._read(sql, parameters)[0][0])

    def series(
        self,
        camera: str | None = None,
        label: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> list[dict[str, Any]]:
        """The per-minute series: one dict per camera, label and minute (UTC) with something in it.

        Each has `camera`, `label`, `minute` (ISO 8601, the minute's start), `started` (objects
        first seen), `in` and `out` (line crossings, all lines together) and `max_current` (the
        highest `current` count of the minute's stats). Oldest minute first. `since` and `until`
        select minutes by their start, as in `events()`.

        Example:
            >>> store.series(camera="street", label="car", since="2026-11-23T13:00Z")  # doctest: +SKIP
            [{'camera': 'street', 'label': 'car', 'minute': '2026-11-23T13:08:00Z', 'started': 3, 'in': 2, ...}]
        """
        clauses, parameters = [], []
        for column, value in (("camera", camera), ("label", label)):
            if value is not None:
                clauses.append(f"{column} = ?")
                parameters.append(value)
        if since is not None:
            clauses.append("minute >= ?")
            parameters.append(_epoch(since))
        if until is not None:
            clauses.append("minute < ?")
            parameters.append(_epoch(until))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = (
            "SELECT camera, label, minute, started, crossed_in, crossed_out, max_current FROM series"
            f"{where} ORDER BY minute, camera, label"
        )
        return [
            {
                "camera": camera,
                "label": label,
                "minute": datetime.fromtimestamp(minute, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "started": started,
                "in": crossed_in,
                "out": crossed_out,
                "max_current": max_current,
            }
            for camera, label, minute, started, crossed_in, crossed_out, max_current in self._read(sql, parameters)
        ]

    def cameras(self) -> list[str]:
        """The cameras with stored events or series, sorted."""
        return [name for (name,) in self._read("SELECT camera FROM events UNION SELECT camera FROM series", [])]

    def _read(self, sql: str, parameters: Sequence[Any]) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.ProgrammingError:
                raise EdgewatchError(f"the event store {self.path} is closed", "open it again") from None
            except sqlite3.Error as error:
                raise EdgewatchError(
                    f"cannot read the event store {self.path}: {_reason(error)}", "check the disk and the file"
                ) from None


@dataclass(slots=True)
class _Write:
    """One caller's share of a group commit."""

    work: Callable[[sqlite3.Connection], int]
    messages: int
    result: int | None = None
    done: bool = False


def _user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _row(event: dict[str, Any]) -> tuple[tuple, list[str], tuple | None]:
    """(the events row, the labels it involves, the series increment or None)."""
    text = json.dumps(event, separators=(",", ":"), default=_plain)
    message_id = event.get("message_id")
    if message_id is None:  # from an older edgewatch: the same content is the same message
        message_id = hashlib.sha256(json.dumps(event, sort_keys=True, default=_plain).encode()).hexdigest()[:32]
    try:
        wall = _epoch(event["wall_time"])
    except (KeyError, TypeError, ValueError, EdgewatchError):
        wall = clock.time()  # better filed under its arrival than lost
    camera, kind, phase, label = str(event["camera"]), str(event["type"]), event.get("phase"), event.get("label")
    labels = {label} if isinstance(label, str) else set()
    if isinstance(event.get("labels"), list):
        labels.update(item for item in event["labels"] if isinstance(item, str))
    track_id = event.get("track_id")
    row = (
        str(message_id),
        camera,
        kind,
        phase,
        label if isinstance(label, str) else None,
        int(track_id) if isinstance(track_id, int | float) else None,
        None if event.get("id") is None else str(event["id"]),
        float(event["time"]) if isinstance(event.get("time"), int | float) else None,
        iso_time(datetime.fromtimestamp(wall, UTC)),
        wall,
        text,
    )
    increment = None
    if isinstance(label, str):
        if kind == "object" and phase == "start":
            increment = (camera, label, _minute(wall), 1, 0, 0)
        elif kind == "line_crossing" and event.get("direction") in ("in", "out"):
            inward = event["direction"] == "in"
            increment = (camera, label, _minute(wall), 0, int(inward), int(not inward))
    return row, sorted(labels), increment


def _insert(db: sqlite3.Connection, rows: list[tuple[tuple, list[str], tuple | None]]) -> int:
    added = 0
    for row, labels, increment in rows:
        cursor = db.execute(_INSERT_EVENT, row)
        if cursor.rowcount != 1:
            continue  # a copy: its labels and counts are in already
        added += 1
        seq = cursor.lastrowid
        if labels:
            db.executemany(_INSERT_LABEL, [(label, row[9], seq) for label in labels])
        if increment is not None:
            db.execute(_COUNT_UP, increment)
    return added


def _select(
    what: str,
    camera: str | None,
    label: str | None,
    kind: str | None,
    since: Moment | None,
    until: Moment | None,
) -> tuple[str, list[Any], str]:
    """`SELECT what FROM ... WHERE ...`, its parameters, and the columns that order it by wall time."""
    # A label filter reads event_labels, which lists every label of every event by time, newest
    # first without a sort; other filters read events through their (column, wall_epoch) indexes.
    source = "events" if label is None else "event_labels AS l JOIN events ON events.seq = l.seq"
    order = "events.wall_epoch {0}, events.seq {0}" if label is None else "l.wall_epoch {0}, l.seq {0}"
    clauses, parameters = [], []
    for clause, value in (
        ("l.label = ?", label),
        ("events.camera = ?", camera),
        ("events.type = ?", kind),
    ):
        if value is not None:
            clauses.append(clause)
            parameters.append(value)
    wall = "events.wall_epoch" if label is None else "l.wall_epoch"
    if since is not None:
        clauses.append(f"{wall} >= ?")
        parameters.append(_epoch(since))
    if until is not None:
        clauses.append(f"{wall} < ?")
        parameters.append(_epoch(until))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    return f"SELECT {what} FROM {source}{where}", parameters, order


def _epoch(moment: Moment) -> float:
    """Seconds since 1970 UTC of a datetime or ISO 8601 text; without a zone, UTC."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            raise EdgewatchError(
                f"not a time: {moment!r}", "give ISO 8601, e.g. 2026-11-23T13:08:00Z, or a datetime"
            ) from None
    if not isinstance(moment, datetime):
        raise EdgewatchError(f"not a time: {moment!r}", "give ISO 8601 text or a datetime")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _minute(epoch: float) -> int:
    return int(epoch // 60 * 60)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays that slipped into an event, as JSON would have them."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
