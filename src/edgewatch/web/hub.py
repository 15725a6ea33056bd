"""What the page shows, kept as it happens: each camera's latest picture (encoded only while someone
watches, once however many watch), its stats and health, and a fan-out of events to live pages.

The pipeline's threads write here; the web server's viewers and pages wait here as coroutines on its
event loop. A waiting coroutine holds no thread: the writer wakes it through its loop
(`call_soon_threadsafe`), so any number of idle viewers and pages cost no thread of the loop's small
default pool, and none of them can starve another.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2

from edgewatch.pipeline.result import FrameResult

JPEG_QUALITY = 80
LIVE_QUEUE = 256  # messages a slow page may fall behind before it misses some
INFERENCE_BUCKETS = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, float("inf"))  # ms, for /metrics

T = TypeVar("T")


class Wakeup:
    """Wakes one coroutine from any thread. Made on the coroutine's event loop; `set` may be called
    from anywhere, `until` only by that coroutine.

    Example:
        >>> async def main() -> str | None:
        ...     wakeup, news = Wakeup(), []
        ...     news.append("a car")  # as a pipeline's thread would: publish, then wake
        ...     wakeup.set()
        ...     return await wakeup.until(lambda: news.pop() if news else None, timeout=1.0)
        >>> asyncio.run(main())
        'a car'
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        # after the server has stopped, the loop is closed and nobody waits any more
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._event.set)

    async def until(self, ready: Callable[[], T | None], timeout: float) -> T | None:
        """What `ready()` gives once it is not None, asked again each time this is woken; None when
        `timeout` seconds pass first. Whoever wakes it publishes what `ready` reads before `set`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (found := ready()) is None:
                    await self._event.wait()
                    # cleared before `ready` looks again: a `set` from now on wakes the next wait
                    self._event.clear()
                return found
        return None


@dataclass
class CameraFeed:
    """One camera's live state."""

    name: str
    frames: int = 0
    last_frame: float | None = None  # monotonic time of the latest frame
    viewers: int = 0
    jpeg: bytes | None = None
    sequence: int = 0
    encoded: int = 0  # pictures encoded for viewers (once per frame, whatever their number)
    inference_counts: list[int] = field(default_factory=lambda: [0] * len(INFERENCE_BUCKETS))
    inference_sum: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)  # the picture, its number and who waits
    waiting: set[Wakeup] = field(default_factory=set)  # one per viewer

    def wake_viewers(self) -> None:
        """From any thread: every viewer looks again (a new picture, or the end)."""
        with self.lock:
            waiting = list(self.waiting)
        for wakeup in waiting:
            wakeup.set()


class Viewer:
    """One viewer of a camera's pictures, from `LiveHub.viewer`: each picture at most once, always the
    newest (a viewer that falls behind skips pictures; none queue up for it)."""

    def __init__(self, feed: CameraFeed) -> None:
        self.feed = feed
        self.seen = -1  # the number of the last picture returned
        self.wakeup = Wakeup()

    async def next_picture(self, timeout: float = 1.0) -> bytes | None:
        """The camera's newest picture once there is one this viewer has not had, waiting up to
        `timeout` seconds (on the event loop, holding no thread); None when none came."""
        return await self.wakeup.until(self._newer, timeout)

    def _newer(self) -> bytes | None:
        with self.feed.lock:
            if self.feed.jpeg is None or self.feed.sequence == self.seen:
                return None
            self.seen = self.feed.sequence
            return self.feed.jpeg


class Subscriber:
    """One live page's messages (JSON text), from `LiveHub.subscriber`. Its backlog is bounded: a
    page that stops reading misses the oldest messages, and the camera never waits for it."""

    def __init__(self, backlog: int = LIVE_QUEUE) -> None:
        # deque's append and popleft are atomic: the pipeline's threads append, the page's coroutine pops
        self._messages: deque[str] = deque(maxlen=backlog)
        self._wakeup = Wakeup()

    def put(self, text: str) -> None:
        """From any thread."""
        self._messages.append(text)
        self._wakeup.set()

    async def next_message(self, timeout: float = 1.0) -> str | None:
        """The oldest message not yet taken, waiting up to `timeout` seconds (on the event loop,
        holding no thread); None when none came."""
        return await self._wakeup.until(self._take, timeout)

    def _take(self) -> str | None:
        try:
            return self._messages.popleft()
        except IndexError:
            return None


class LiveHub:
    """A sink for the page. `write` only encodes a JPEG when a viewer is connected.

    Example:
        >>> hub = LiveHub()
        >>> hub.cameras()
        []
    """

    def __init__(self, cameras: Iterable[str] = ()) -> None:
        # the configured cameras first, in the config's order: the page shows their tiles in it,
        # and a camera that has not delivered a frame yet shows as offline instead of missing
        self.feeds: dict[str, CameraFeed] = {camera: CameraFeed(camera) for camera in cameras}
        self.latest_stats: dict[str, dict[str, Any]] = {}
        self.events_by_type: Counter[str] = Counter()
        self._subscribers: list[Subscriber] = []
        self._pipelines: dict[str, Any] = {}
        self.queues: dict[str, Callable[[], int]] = {}
        self._lock = threading.Lock()

    def feed(self, camera: str) -> CameraFeed:
        with self._lock:
            return self.feeds.setdefault(camera, CameraFeed(camera))

    def cameras(self) -> list[str]:
        """The cameras in the config's order, then any other in the order its first frame came."""
        with self._lock:
            return list(self.feeds)

    # --- the sink ------------------------------------------------------------------------------

    def write(self, result: FrameResult) -> None:
        feed = self.feed(result.frame.camera)
        feed.frames += 1
        feed.last_frame = time.monotonic()
        feed.inference_sum += result.inference_ms
        feed.inference_counts[bisect.bisect_left(INFERENCE_BUCKETS, result.inference_ms)] += 1
        if feed.viewers <= 0:
            return
        ok, encoded = cv2.imencode(".jpg", result.annotated, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            with feed.lock:
                feed.jpeg, feed.sequence, feed.encoded = encoded.tobytes(), feed.sequence + 1, feed.encoded + 1
            feed.wake_viewers()

    def event(self, event: dict[str, Any]) -> None:
        self.events_by_type[event["type"]] += 1
        self._broadcast({"kind": "event", "event": event})

    def stats(self, stats: dict[str, Any]) -> None:
        self.latest_stats[stats["camera"]] = stats
        self._broadcast({"kind": "stats", "stats": stats})

    def close(self) -> None:
        for feed in list(self.feeds.values()):
            feed.wake_viewers()

    # --- readers -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def viewer(self, camera: str) -> Iterator[Viewer]:
        """One viewer of the camera's video, for as long as the `with` lasts; pictures are encoded
        only while a camera has one. The first viewer never gets a stale picture from before. Entered
        on the event loop that waits for the pictures."""
        feed = self.feed(camera)
        viewer = Viewer(feed)
        with feed.lock:
            if feed.viewers == 0:
                feed.jpeg = None
            feed.viewers += 1
            feed.waiting.add(viewer.wakeup)
        try:
            yield viewer
        finally:
            with feed.lock:
                feed.viewers -= 1
                feed.waiting.discard(viewer.wakeup)

    @contextlib.contextmanager
    def subscriber(self) -> Iterator[Subscriber]:
        """One live page's messages, for as long as the `with` lasts, starting with each camera's
        latest stats. Entered on the event loop that waits for them."""
        subscriber = Subscriber()
        with self._lock:
            self._subscribers.append(subscriber)
        for stats in list(self.latest_stats.values()):
            subscriber.put(json.dumps({"kind": "stats", "stats": stats}))
        try:
            yield subscriber
        finally:
            with self._lock:
                self._subscribers.remove(subscriber)

    def _broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.put(text)

    def watch_queue(self, name: str, depth: Callable[[], int]) -> None:
        """A queue whose depth `/metrics` reports (the MQTT outbox)."""
        self.queues[name] = depth

    def attach(self, camera: str, pipeline: Any) -> None:
        """The camera's pipeline, for the health numbers only it knows (drops, reconnects, source fps)."""
        self._pipelines[camera] = pipeline
        self.feed(camera)

    def health(self, camera: str) -> dict[str, Any]:
        feed = self.feed(camera)
        stats = self.latest_stats.get(camera, {})
        age = None if feed.last_frame is None else round(time.monotonic() - feed.last_frame, 3)
        health: dict[str, Any] = {
            "name": camera,
            "online": age is not None and age < 5.0,
            "frames": feed.frames,
            "last_frame_age": age,
            "fps": stats.get("fps"),
            "inference_ms": stats.get("inference_ms"),
            "viewers": feed.viewers,
        }
        pipeline = self._pipelines.get(camera)
        if pipeline is not None:
            run = pipeline.stats()
            health.update(
                source_fps=pipeline.source.info.fps,
                live=pipeline.source.info.live,
                dropped=run.dropped,
                reconnects=run.reconnects,
                running=not pipeline.finished,
            )
        return health
