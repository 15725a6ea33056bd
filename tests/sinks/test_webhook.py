"""Webhooks against a real HTTP server on loopback: every event posted, in order, through failures."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from brokers import free_port
from edgewatch.analytics.events import make_event
from edgewatch.config import WebhookConfig
from edgewatch.sinks.webhook import WebhookSender


class Hook:
    """An HTTP endpoint that answers 503 to its first `failures` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.received: list[dict] = []
        self.failures = failures
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.failures > 0:
                    hook.failures -= 1
                    self.send_response(503)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def incident(number: int, phase: str = "start") -> dict:
    return make_event("incident", "pets", float(number), datetime.now(UTC), phase=phase, rule="meet",
                      labels=["cat", "dog2"], track_ids=[1, 2], since=float(number))  # fmt: skip


def test_each_event_is_posted_in_order_even_when_the_endpoint_fails_at_first():
    hook = Hook(failures=2)
    sender = WebhookSender(WebhookConfig(url=hook.url, retries=3))
    sent = [incident(number) for number in range(5)]
    for event in sent:
        sender.event(event)
    sender.close()
    hook.close()
    assert [event["message_id"] for event in hook.received] == [event["message_id"] for event in sent]
    assert sender.delivered == 5 and sender.failed == 0


def test_only_the_chosen_event_types_are_sent():
    hook = Hook()
    sender = WebhookSender(WebhookConfig(url=hook.url, events=["incident"]))
    sender.event(make_event("line_crossing", "pets", 1.0, datetime.now(UTC), line="door", direction="in",
                            label="cat", track_id=1))  # fmt: skip
    sender.event(incident(2))
    sender.close()
    hook.close()
    assert [event["type"] for event in hook.received] == ["incident"]


def test_an_endpoint_that_stays_down_costs_a_warning_not_the_run(caplog):
    url = f"http://127.0.0.1:{free_port()}/nobody"
    sender = WebhookSender(WebhookConfig(url=url, retries=1, timeout=1))
    sender.event(incident(1))
    sender.close()
    assert sender.failed == 1 and "not delivered" in caplog.text


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "hook"])
def test_a_url_that_is_not_http_is_refused_by_the_config(url):
    with pytest.raises(ValueError):
        WebhookConfig(url=url)
