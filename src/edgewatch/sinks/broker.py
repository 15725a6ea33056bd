"""An MQTT broker inside edgewatch (amqtt), so a user needs none: `mqtt: {host: embedded}`."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """amqtt serving MQTT 3.1.1 on `host:port` from its own event loop, in a stage thread.

    Example:
        >>> with EmbeddedBroker(port=0) as broker:  # doctest: +SKIP
        ...     print(broker.port)  # a free port was picked
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._stop = threading.Event()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stage = Stage("mqtt-broker", [None], lambda _: asyncio.run(self._serve()), None, self._stop)

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
        )
        try:
            await broker.start()
        except BaseException as error:  # handed to the thread that waits for the start
            self._error = error
            self._started.set()
            return
        self._started.set()
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        await broker.shutdown()

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        if not log.isEnabledFor(logging.DEBUG):  # amqtt logs tracebacks of what our one-line error says
            for name in ("amqtt", "transitions"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        self._stage.start()
        if not self._started.wait(timeout) or self._error is not None:
            self.close()
            raise EdgewatchError(
                f"cannot start the embedded MQTT broker on {self.host}:{self.port}: {self._error or 'timed out'}",
                "is that port taken? set mqtt: {port: ...} or point --mqtt at a running broker",
            )
        log.info("embedded MQTT broker on %s:%d", self.host, self.port)
        return self

    def close(self) -> None:
        self._stop.set()
        self._stage.join(10)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
