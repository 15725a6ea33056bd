"""What the page shows, kept as it happens: each camera's latest picture (encoded only while someone
watches, once however many watch), its stats and health, and a fan-out of events to live pages."""

from __future__ import annotations

import bisect
import contextlib
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2

from edgewatch.pipeline.result import FrameResult

JPEG_QUALITY = 80
LIVE_QUEUE = 256  # messages a slow page may fall behind before it misses some
INFERENCE_BUCKETS = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, float("inf"))  # ms, for /metrics


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
    changed: threading.Condition = field(default_factory=threading.Condition)


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
        self._subscribers: list[queue.Queue[str]] = []
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
            with feed.changed:
                feed.jpeg, feed.sequence, feed.encoded = encoded.tobytes(), feed.sequence + 1, feed.encoded + 1
                feed.changed.notify_all()

    def event(self, event: dict[str, Any]) -> None:
        self.events_by_type[event["type"]] += 1
        self._broadcast({"kind": "event", "event": event})

    def stats(self, stats: dict[str, Any]) -> None:
        self.latest_stats[stats["camera"]] = stats
        self._broadcast({"kind": "stats", "stats": stats})

    def close(self) -> None:
        for feed in list(self.feeds.values()):
            with feed.changed:
                feed.changed.notify_all()

    # --- readers -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def viewer(self, camera: str) -> Iterator[CameraFeed]:
        """One viewer of the camera's video, for as long as the `with` lasts; pictures are encoded
        only while a camera has one. The first viewer never gets a stale picture from before."""
        feed = self.feed(camera)
        with feed.changed:
            if feed.viewers == 0:
                feed.jpeg = None
            feed.viewers += 1
        try:
            yield feed
        finally:
            with feed.changed:
                feed.viewers -= 1

    @staticmethod
    def next_picture(feed: CameraFeed, seen: int, timeout: float = 1.0) -> tuple[int, bytes] | None:
        """The picture after number `seen`, waiting up to `timeout` seconds; None when none came."""
        with feed.changed:
            if feed.sequence == seen or feed.jpeg is None:
                feed.changed.wait(timeout)
            if feed.sequence == seen or feed.jpeg is None:
                return None
            return feed.sequence, feed.jpeg

    def subscribe(self) -> queue.Queue[str]:
        """A queue of live messages (JSON text) for one page; `unsubscribe` it when the page leaves."""
        subscriber: queue.Queue[str] = queue.Queue(LIVE_QUEUE)
        with self._lock:
            self._subscribers.append(subscriber)
        for stats in list(self.latest_stats.values()):
            subscriber.put_nowait(json.dumps({"kind": "stats", "stats": stats}))
        return subscriber

    def unsubscribe(self, subscriber: queue.Queue[str]) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def _broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            # a page that stopped reading misses messages; the camera never waits for it
            with contextlib.suppress(queue.Full):
                subscriber.put_nowait(text)

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
