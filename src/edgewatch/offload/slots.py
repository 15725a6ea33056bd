"""Load shedding for the offload server: each client's newest frame waits for the model, and a frame
replaced before the model took it is dropped and counted.

The connections put frames here and the one model thread takes them. What waits is bounded by the
number of clients (one frame each, and one more at the model), never by how fast they send: a client
that sends faster than the model answers loses its older frames, not the server its memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_POLL_S = 0.1


@dataclass(slots=True)
class Job:
    """One frame on its way to the model.

    Attributes:
        client: whose frame it is.
        frame: the frame number the client gave it.
        jpeg: its JPEG bytes.
        width, height: its size, read from the JPEG's header.
        received: when it arrived (time.monotonic()).
        taken: when the model thread took it.
        dropped: the client's frames dropped since its previous answer, when this one was taken.
        image: the picture itself, where it came decoded (an RTP stream's); `jpeg` is then empty.
        decode_ms: how long decoding `image` took.
    """

    client: Client
    frame: int
    jpeg: bytes | memoryview
    width: int
    height: int
    received: float = field(default_factory=time.monotonic)
    taken: float = 0.0
    dropped: int = 0
    image: np.ndarray | None = None
    decode_ms: float = 0.0


class Client:
    """A connection's place at the model: its newest frame, and whether its previous frame is still with
    the model or its answer still being sent. While it is, the client's next frame waits: a client that
    reads no answers gets no more of them, so answers never pile up either.

    Args:
        name: for logs (the hello's `client`, and the peer's address).
        deliver: called on the model thread with each answer (a dict) or error for this client.
    """

    def __init__(self, name: str, deliver: Callable[[Any], None]) -> None:
        self.name = name
        self.deliver = deliver
        self.waiting: Job | None = None
        self.busy = False
        self.dropped = 0  # since its last answer
        self.dropped_total = 0
        self.answered = 0


class FrameSlots:
    """The frames waiting for the model: each client's newest.

    Args:
        stop: when set, `batches` ends.
        max_clients: clients served at once at most; `join` refuses more.

    Example:
        >>> slots = FrameSlots(threading.Event(), max_clients=4)
        >>> client = slots.join("camera-1", deliver=print)
        >>> for frame in (1, 2, 3):
        ...     slots.put(Job(client, frame, b"", 640, 360))
        >>> [(job.frame, job.dropped) for job in next(slots.batches(8))]
        [(3, 2)]
    """

    def __init__(self, stop: threading.Event, max_clients: int) -> None:
        self._stop = stop
        self.max_clients = max_clients
        self._clients: list[Client] = []
        self._condition = threading.Condition()

    def __len__(self) -> int:
        return len(self._clients)

    def join(self, name: str, deliver: Callable[[Any], None]) -> Client | None:
        """A new client's place, or None when `max_clients` are served already."""
        with self._condition:
            if len(self._clients) >= self.max_clients:
                return None
            client = Client(name, deliver)
            self._clients.append(client)
            return client

    def leave(self, client: Client) -> None:
        """The connection ended: its waiting frame goes, and an answer the model still makes for it is
        delivered to no one."""
        with self._condition:
            if client in self._clients:
                self._clients.remove(client)
            if client.waiting is not None:
                client.waiting = None
                client.dropped_total += 1

    def put(self, job: Job) -> None:
        """`job` is its client's newest frame; the one it replaces, if the model had not taken it yet,
        is dropped."""
        client = job.client
        with self._condition:
            if client.waiting is not None:
                client.dropped += 1
                client.dropped_total += 1
            client.waiting = job
            self._condition.notify_all()

    def answered(self, client: Client) -> None:
        """The client's answer is sent: its next frame may go to the model."""
        with self._condition:
            client.busy = False
            client.answered += 1
            self._condition.notify_all()

    def batches(self, max_size: int) -> Iterator[list[Job]]:
        """For the model thread: each step, the waiting frames of up to `max_size` clients that are not
        busy, those that waited longest first, as soon as there is one (a batch never waits to fill).
        Ends when `stop` is set."""
        while not self._stop.is_set():
            with self._condition:
                ready = [client for client in self._clients if client.waiting is not None and not client.busy]
                if not ready:
                    self._condition.wait(_POLL_S)
                    continue
                ready.sort(key=lambda client: client.waiting.received)  # type: ignore[union-attr]
                taken = time.monotonic()
                batch = []
                for client in ready[:max_size]:
                    job, client.waiting = client.waiting, None
                    assert job is not None
                    job.taken, job.dropped = taken, client.dropped
                    client.dropped, client.busy = 0, True
                    batch.append(job)
            yield batch
