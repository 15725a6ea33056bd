"""An on-disk queue of messages not yet delivered: it survives a broker outage and a restart, and keeps
one queue per broker, so what was meant for one broker never goes to another."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from edgewatch.errors import EdgewatchError

#: MQTT's port when none is named
DEFAULT_PORT = 1883
DEFAULT_PREFIX = "edgewatch"
#: the file's name under `storage.path`
FILE_NAME = "mqtt-outbox.sqlite"
_EMBEDDED = "embedded"
_ADDRESS = re.compile(r"^(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:/\[\]]+))(?::(?P<port>\d+))?$")


@dataclass(frozen=True, slots=True)
class Broker:
    """Who a queued message is for: the broker's host and port, and the topic prefix it is published under.

    The embedded broker is `Broker("embedded", None)`: its port may be a new random one each run, so its
    name is the key. `UNKNOWN` holds the messages of an outbox from before there was a queue per broker.

    Example:
        >>> str(Broker.parse("mqtt.example"))
        'mqtt.example:1883'
        >>> Broker.parse("10.0.0.5:1884/site1")
        Broker(host='10.0.0.5', port=1884, prefix='site1')
    """

    host: str
    port: int | None = DEFAULT_PORT
    prefix: str = DEFAULT_PREFIX

    @classmethod
    def named(cls, host: str, port: int | None, prefix: str = DEFAULT_PREFIX) -> Broker:
        """The broker a run's `mqtt:` names (`host: embedded` whatever port it gets)."""
        prefix = prefix.rstrip("/")  # the publisher's topics do not end in a slash either
        if host == _EMBEDDED:
            return cls(_EMBEDDED, None, prefix)
        return cls(host.lower(), port, prefix)  # host names are not case-sensitive

    @classmethod
    def parse(cls, text: str) -> Broker:
        """`HOST[:PORT][/PREFIX]`, `embedded[/PREFIX]` or `unknown`, as `str()` writes them."""
        if text.strip() == "unknown":
            return UNKNOWN
        address, _, prefix = text.strip().partition("/")
        found = _ADDRESS.match(address)
        port = int(found["port"]) if found and found["port"] else DEFAULT_PORT
        if found is None or not 0 < port < 65536 or (found["host"] == _EMBEDDED and found["port"]):
            raise EdgewatchError(
                f"{text!r} does not name a broker", "write HOST:PORT (e.g. mqtt.example:1883), embedded or unknown"
            )
        return cls.named(found["ipv6"] or found["host"], port, prefix or DEFAULT_PREFIX)

    @property
    def key(self) -> str:
        """The form stored with each message; `parse` reads it back."""
        if self == UNKNOWN:
            return "unknown"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host if self.port is None else f'{host}:{self.port}'}/{self.prefix}"

    def __str__(self) -> str:
        key = self.key
        return key.removesuffix(f"/{DEFAULT_PREFIX}") if self.prefix == DEFAULT_PREFIX else key


#: the broker of messages queued before the outbox kept one queue per broker
UNKNOWN = Broker("", None, "")


class Outbox:
    """First in, first out per broker, in SQLite (WAL): `put` is cheap enough for the delivery thread,
    and a message leaves only when `remove` says it was delivered.

    A file from before there was a queue per broker is migrated on opening: its messages belong to
    `UNKNOWN`, which no run sends to; `move` gives them to a broker, `drop` deletes them.

    Example:
        >>> box = Outbox(":memory:")
        >>> broker = Broker.named("127.0.0.1", 1883)
        >>> box.put(broker, "edgewatch/street/events", b"{}")
        >>> [(topic, payload) for _, topic, payload in box.peek(broker, 10)]
        [('edgewatch/street/events', b'{}')]
        >>> {str(broker): count for broker, count in box.waiting().items()}
        {'127.0.0.1:1883': 1}
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
                "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB, "
                "broker TEXT NOT NULL DEFAULT 'unknown')"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
            if "broker" not in columns:  # an outbox from before: its messages' broker is not known
                self._db.execute("ALTER TABLE outbox ADD COLUMN broker TEXT NOT NULL DEFAULT 'unknown'")
            self._db.execute("CREATE INDEX IF NOT EXISTS outbox_broker ON outbox (broker, seq)")
        except sqlite3.DatabaseError as error:
            raise EdgewatchError(
                f"cannot open the message queue {self.path}: {error}", "move the file away; it will be recreated"
            ) from None
        self._lock = threading.Lock()
        self.arrived = threading.Event()  # set by put, for a sender that waits for work

    def put(self, broker: Broker, topic: str, payload: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (topic, payload, broker) VALUES (?, ?, ?)", (topic, payload, broker.key)
            )
        self.arrived.set()

    def peek(self, broker: Broker, limit: int) -> list[tuple[int, str, bytes]]:
        """The broker's oldest messages, as (seq, topic, payload)."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE broker = ? ORDER BY seq LIMIT ?", (broker.key, limit)
            ).fetchall()

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def count(self, broker: Broker | None = None) -> int:
        """Messages waiting for `broker`; for every broker when None."""
        query, arguments = "SELECT COUNT(*) FROM outbox", ()
        if broker is not None:
            query, arguments = f"{query} WHERE broker = ?", (broker.key,)
        with self._lock:
            return self._db.execute(query, arguments).fetchone()[0]

    def __len__(self) -> int:
        return self.count()

    def waiting(self) -> dict[Broker, int]:
        """Messages waiting, per broker, the broker with the oldest message first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT broker, COUNT(*) FROM outbox GROUP BY broker ORDER BY MIN(seq)"
            ).fetchall()  # fmt: skip
        return {Broker.parse(key): count for key, count in rows}

    def drop(self, broker: Broker | None = None) -> int:
        """Delete the messages waiting for `broker` (every broker's when None); returns how many."""
        query, arguments = "DELETE FROM outbox", ()
        if broker is not None:
            query, arguments = f"{query} WHERE broker = ?", (broker.key,)
        with self._lock:
            return self._db.execute(query, arguments).rowcount

    def move(self, source: Broker, target: Broker) -> int:
        """Give `source`'s messages to `target`, in the order they were queued; returns how many. For the
        messages of an outbox from before (`UNKNOWN`) that were meant for the broker a user names."""
        with self._lock:
            return self._db.execute("UPDATE outbox SET broker = ? WHERE broker = ?", (target.key, source.key)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def manage(storage: str | Path, drop: str | None = None) -> str:
    """What `edgewatch outbox [--storage PATH] [--drop [BROKER]]` prints: the MQTT events waiting in a
    storage folder, per broker; with `drop` (a broker as listed, or `all`) it deletes those first.

    Example:
        >>> print(manage("edgewatch-data"))  # doctest: +SKIP
        20 MQTT events wait for mqtt.exmaple:1883
    """
    folder = Path(storage)
    if not folder.is_dir():
        raise EdgewatchError(f"no storage folder {folder}", "give the run's storage: path with --storage")
    if not (folder / FILE_NAME).exists():  # never create a queue just to look at it
        return f"no MQTT events wait in {folder}"
    outbox = Outbox(folder / FILE_NAME)
    try:
        lines = []
        if drop is not None:
            broker = None if drop == "all" else Broker.parse(drop)
            lines.append(f"dropped {outbox.drop(broker)} MQTT events" + ("" if broker is None else f" for {broker}"))
        waiting = outbox.waiting()
        lines += [f"{count} MQTT events wait for {broker}" for broker, count in waiting.items()]
        if not waiting:
            lines.append(f"no MQTT events wait in {folder}")
        return "\n".join(lines)
    finally:
        outbox.close()
