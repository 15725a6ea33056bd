"""Serving the web app with uvicorn, from a stage thread, next to the cameras' pipelines."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from edgewatch.config import Config
from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage
from edgewatch.sinks.store import EventStore
from edgewatch.web.hub import LiveHub

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """uvicorn on `host:port` until `close()`.

    Example:
        >>> server = WebServer(create_app(LiveHub()), "127.0.0.1", 8080).start()  # doctest: +SKIP
    """

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.host, self.port = host, port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._stop = threading.Event()
        self._stage = Stage("web", [None], lambda _: self._server.run(), None, self._stop)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout: float = 15.0) -> WebServer:
        self._stage.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._stage.is_alive() or time.monotonic() > deadline:
                self.close()
                raise EdgewatchError(
                    f"cannot serve the page on {self.host}:{self.port}",
                    "is the port taken? choose another with --serve",
                )
            time.sleep(0.02)
        if self.port == 0:  # an ephemeral port: find which
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
        log.info("serving the page at %s", self.url)
        return self

    def close(self) -> None:
        self.app.state.stop.set()  # ends the live streams, whose requests would hold the server
        self._server.should_exit = True
        self._stage.join(10)


def serve_dashboard(config: Config, hub: LiveHub, store: EventStore | None) -> WebServer:
    """The page's server; off loopback it refuses to start without a token."""
    dashboard = config.dashboard
    assert dashboard is not None
    token = dashboard.token or os.environ.get("EDGEWATCH_TOKEN") or None
    if token is None and not is_loopback(dashboard.host):
        raise EdgewatchError(
            f"serving on {dashboard.host} would let anyone on the network in",
            "set dashboard: {token: ...} or EDGEWATCH_TOKEN, or serve on 127.0.0.1",
        )
    # the review page offers each capturing camera's frames (docs/data.md)
    captures = {
        name: Path(config.storage.path) / "capture" / name for name, camera in config.cameras.items() if camera.capture
    }
    from edgewatch.web.app import create_app  # the app imports this module's server for the review page

    app = create_app(hub, store, Path(config.storage.path) / "media", token, review=captures)
    return WebServer(app, dashboard.host, dashboard.port).start()
