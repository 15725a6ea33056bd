"""Serving the web app with uvicorn, from a stage thread, next to the cameras' pipelines."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from edgewatch.config import Config, DashboardConfig
from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage
from edgewatch.sinks.store import EventStore
from edgewatch.web.hub import LiveHub
from edgewatch.web.security import Hosts, check_token, is_loopback

log = logging.getLogger(__name__)

__all__ = ["WebServer", "bind", "dashboard_token", "is_loopback", "serve_dashboard"]


def bind(host: str, port: int, flag: str = "--serve") -> socket.socket:
    """A socket bound to `host:port` (0: any free port) for uvicorn to serve on, or one line that says
    why not. Bound here, not by uvicorn, so that a taken port is our one line and not uvicorn's log
    first, and so that nothing can take the port between a check and the bind. `flag` is the option
    the hint names.

    Raises:
        EdgewatchError: the port is out of range, taken, privileged, or `host` is no address here.

    Example:
        >>> bind("127.0.0.1", 0).getsockname()[0]
        '127.0.0.1'
    """
    where = f"{host}:{port}"
    if not 0 <= port <= 65535:
        raise EdgewatchError(
            f"port {port} is out of range", f"choose one from 1 to 65535 with {flag}, or 0 for any free port"
        )
    # as uvicorn binds: an address with a colon is IPv6, and a restart may reuse a port in TIME_WAIT
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
            raise EdgewatchError(
                f"cannot serve on {where}: {host} is no address of this machine",
                "give one of its addresses: 127.0.0.1 for this machine only, 0.0.0.0 for every network",
            ) from None
        if error.errno == errno.EADDRINUSE:
            raise EdgewatchError(
                f"cannot serve on {where}: the port is taken", f"choose another with {flag}, or stop what holds it"
            ) from None
        if error.errno == errno.EACCES:
            raise EdgewatchError(
                f"cannot serve on {where}: ports below 1024 need root", f"choose one above 1024 with {flag}"
            ) from None
        raise EdgewatchError(f"cannot serve on {where}: {error.strerror}", f"choose another port with {flag}") from None
    return sock


class WebServer:
    """uvicorn on `host:port` until `close()`; `flag` is the option a user sets the port with, for the
    error that says it cannot be had, `what` names what is served in logs, `scheme` begins its `url`,
    and `options` are more of uvicorn's settings (such as `ws_max_size`).

    Example:
        >>> server = WebServer(create_app(LiveHub()), "127.0.0.1", 8080).start()  # doctest: +SKIP
    """

    def __init__(
        self, app: FastAPI, host: str, port: int, flag: str = "--serve", what: str = "the page", scheme: str = "http",
        **options: Any,
    ) -> None:  # fmt: skip
        self.app = app
        self.host, self.port, self.flag, self.what, self.scheme = host, port, flag, what, scheme
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", access_log=False, **options
        )
        self._server = uvicorn.Server(config)
        self._socket: socket.socket | None = None
        self._stop = threading.Event()
        self._stage = Stage("web", [None], lambda _: self._server.run(sockets=[self._socket]), None, self._stop)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"

    def start(self, timeout: float = 15.0, bound: socket.socket | None = None) -> WebServer:
        """Bind (or take `bound`, a socket `bind` made earlier), then serve from a stage thread once
        uvicorn answers.

        Raises:
            EdgewatchError: the port cannot be had (see `bind`), or uvicorn did not start.
        """
        self._socket = bound or bind(self.host, self.port, self.flag)
        self.port = self._socket.getsockname()[1]  # the one picked, for port 0
        self._stage.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._stage.is_alive() or time.monotonic() > deadline:
                self.close()
                raise EdgewatchError(f"cannot serve {self.what} on {self.host}:{self.port}", "see the log above")
            time.sleep(0.02)
        log.info("serving %s at %s", self.what, self.url)
        return self

    def close(self) -> None:
        self.app.state.stop.set()  # ends the live streams, whose requests would hold the server
        self._server.should_exit = True
        self._stage.join(10)
        if self._socket is not None:
            self._socket.close()  # uvicorn closes it when it served; not when it failed to start


def dashboard_token(dashboard: DashboardConfig) -> str | None:
    """The page's token (the config's, else EDGEWATCH_TOKEN), checked: off loopback there must be one,
    and a strong one.

    Raises:
        EdgewatchError: no token, or a weak one, for a server open to the network.
    """
    token = dashboard.token or os.environ.get("EDGEWATCH_TOKEN") or None
    if token is None and not is_loopback(dashboard.host):
        raise EdgewatchError(
            f"serving on {dashboard.host} would let anyone on the network in",
            "set dashboard: {token: ...} or EDGEWATCH_TOKEN, or serve on 127.0.0.1",
        )
    check_token(token, dashboard.host)
    return token


def serve_dashboard(
    config: Config, hub: LiveHub, store: EventStore | None, token: str | None, bound: socket.socket
) -> WebServer:
    """The page's server on `bound` (the socket `bind` made for `dashboard:`), with the `token` that
    `dashboard_token` checked. It answers to the names of the address it is bound to and those of
    `dashboard.hosts` (docs/security.md)."""
    dashboard = config.dashboard
    assert dashboard is not None
    hosts = Hosts.bound_to(dashboard.host, dashboard.hosts)
    # the review page offers each capturing camera's frames (docs/data.md)
    captures = {
        name: Path(config.storage.path) / "capture" / name for name, camera in config.cameras.items() if camera.capture
    }
    from edgewatch.web.app import create_app  # the app imports this module's server for the review page

    app = create_app(hub, store, Path(config.storage.path) / "media", token, review=captures, hosts=hosts)
    return WebServer(app, dashboard.host, dashboard.port).start(bound=bound)
