"""Each event as an HTTP POST of its JSON (the seeds tweet; a webhook is the general form)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from edgewatch.config import WebhookConfig
from edgewatch.pipeline.stage import Channel, Stage

log = logging.getLogger(__name__)

QUEUE = 1000  # events waiting at most; beyond that the oldest wait is not worth a stalled camera


class WebhookSender:
    """Posts events in the background, in order, retrying with backoff (0.5 s doubling) up to
    `retries` times; an event that still fails is logged and dropped. The camera never waits.

    Example:
        >>> sender = WebhookSender(WebhookConfig(url="http://127.0.0.1:9000/hook"))  # doctest: +SKIP
        >>> sender.event({"type": "incident", "phase": "start", ...})  # doctest: +SKIP
    """

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self.delivered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._queue: Channel[dict[str, Any]] = Channel(QUEUE, keep_latest=True, stop=self._stop)
        self._worker = Stage(f"webhook:{config.url}", self._queue, self._post, None, self._stop)
        self._worker.start()

    def write(self, result: object) -> None:
        pass

    def event(self, event: dict[str, Any]) -> None:
        if self.config.events is None or event["type"] in self.config.events:
            self._queue.put(event)

    def _post(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        delay = 0.5
        for attempt in range(self.config.retries + 1):
            request = urllib.request.Request(
                self.config.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                    if response.status < 300:
                        self.delivered += 1
                        return
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                if attempt == self.config.retries:
                    self.failed += 1
                    log.warning("webhook %s: event %s not delivered: %s", self.config.url, event.get("id"), reason)
                    return
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 30.0)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued for up to `timeout` seconds, then stop."""
        self._queue.close()
        deadline = time.monotonic() + timeout
        self._worker.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._worker.join(1)
