"""Serving the web app with uvicorn, from a stage thread, next to the cameras' pipelines."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage

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
