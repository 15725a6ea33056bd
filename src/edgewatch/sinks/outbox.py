"""An on-disk queue of messages not yet delivered: it survives a broker outage and a restart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edgewatch.errors import EdgewatchError


class Outbox:
    """First in, first out, in SQLite (WAL): `put` is cheap enough for the delivery thread, and a
    message leaves only when `remove` says it was delivered.

    Example:
        >>> box = Outbox(":memory:")
        >>> box.put("edgewatch/street/events", b"{}")
        >>> [(topic, payload) for _, topic, payload in box.peek(10)]
        [('edgewatch/street/events', b'{}')]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # one connection behind a lock: puts come from camera threads, peeks from the sender
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB)"
            )
        except sqlite3.DatabaseError as error:
            raise EdgewatchError(
                f"cannot open the message queue {self.path}: {error}", "move the file away; it will be recreated"
            ) from None
        self._lock = threading.Lock()
        self.arrived = threading.Event()  # set by put, for a sender that waits for work

    def put(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
        self.arrived.set()

    def peek(self, limit: int) -> list[tuple[int, str, bytes]]:
        """The oldest messages, as (seq, topic, payload)."""
        with self._lock:
            return self._db.execute("SELECT seq, topic, payload FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
