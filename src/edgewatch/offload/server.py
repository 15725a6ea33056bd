"""`edgewatch serve`: one detector behind a WebSocket, for edge pipelines that run their model here.

Each connection reads frames into its client's slot (`slots.FrameSlots`, which drops what the model
had no time for) and sends the answers back; one model thread takes the newest frame of several
clients at once when the detector batches. The server's security is the live page's (web/security.py):
loopback by default, a strong token off it, its own Host names only, and no WebSocket from a page of
another origin.

RTP streams (`--rtp`, rtp.py) take their place at the model as clients do; the answers of each go to the
WebSockets at `/v1/streams/NAME`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, WebSocket

from edgewatch.errors import EdgewatchError
from edgewatch.models.base import Detector
from edgewatch.offload.address import PATH
from edgewatch.offload.protocol import (
    CLOSE_BAD_FRAME,
    CLOSE_BAD_HELLO,
    CLOSE_BUSY,
    CLOSE_NO_STREAM,
    MAX_MESSAGE_BYTES,
    ProtocolError,
    Times,
    answer,
    check_size,
    jpeg_size,
    read_hello,
    unpack_frame,
    welcome,
)
from edgewatch.offload.rtp import DEFAULT_PAYLOAD, RtpStream
from edgewatch.offload.slots import Client, FrameSlots, Job
from edgewatch.pipeline.stage import Stage
from edgewatch.shutdown import Shutdown
from edgewatch.web.security import CsrfTokens, Hosts, RequestGuard, check_token, is_loopback, one_line
from edgewatch.web.server import WebServer

log = logging.getLogger(__name__)

MAX_CLIENTS = 32
HELLO_TIMEOUT_S = 10.0
#: how long a closing connection may take to send its error and close frame (a client that reads
#: nothing would hold them forever)
CLOSE_TIMEOUT_S = 2.0
#: where a stream's answers are heard: /v1/streams/NAME
STREAMS_PATH = "/v1/streams"
#: answers a stream's listener may be behind by; older ones are dropped for it
LISTENER_BACKLOG = 8


def server_token(host: str, token: str | None) -> str | None:
    """The server's token (`--token`, else EDGEWATCH_TOKEN), checked as the live page's is: off
    loopback there must be one, and a strong one.

    Raises:
        EdgewatchError: no token, or a weak one, for a server open to the network.
    """
    token = token or os.environ.get("EDGEWATCH_TOKEN") or None
    if token is None and not is_loopback(host):
        raise EdgewatchError(
            f"serving on {host} would let anyone on the network use the model",
            "give --token (or EDGEWATCH_TOKEN), or serve on 127.0.0.1",
        )
    check_token(token, host)
    return token


class OffloadServer:
    """`detector` served at `ws://HOST:PORT/v1/detect` (docs/offload.md) until `close()`.

    Args:
        detector: what answers the frames; its `max_batch` is how many clients' frames one call takes.
        model: its name in the hello's answer and the logs.
        hosts: the names the server answers to (`Hosts.bound_to(host)`).
        token: the token a client must offer (`Authorization: Bearer`, or `?token=`); None: none.
        max_clients: connections served at once, RTP streams included; more are closed with CLOSE_BUSY.
        streams: RTP streams to receive, each `(name, bound UDP socket)` (`rtp.bind_udp`).
        payload_type: their RTP payload type.

    Raises:
        EdgewatchError: more streams than `max_clients`.

    Example:
        >>> server = OffloadServer(load_detector("street"), "street", Hosts.bound_to("127.0.0.1"), None)  # doctest: +SKIP
        >>> server.start(bind("127.0.0.1", 0, "--port"))  # doctest: +SKIP
        'ws://127.0.0.1:40123/v1/detect'
    """

    def __init__(
        self,
        detector: Detector,
        model: str,
        hosts: Hosts,
        token: str | None,
        max_clients: int = MAX_CLIENTS,
        streams: Iterable[tuple[str, socket.socket]] = (),
        payload_type: int = DEFAULT_PAYLOAD,
    ) -> None:
        self.detector = detector
        self.model = model
        self._stop = threading.Event()
        self.slots = FrameSlots(self._stop, max_clients)
        self.app = FastAPI(title="edgewatch serve", docs_url=None, redoc_url=None, openapi_url=None)
        self.app.state.stop = self._stop  # WebServer.close sets it, which also ends the model thread
        self.app.add_middleware(RequestGuard, hosts=hosts, token=token, csrf=CsrfTokens())
        self.app.add_api_websocket_route(PATH, self._connection)
        self.app.add_api_websocket_route(STREAMS_PATH + "/{name}", self._listener)
        self._worker = Stage("offload:model", self.slots.batches(max(1, detector.max_batch)), self._answer, None,
                             self._stop)  # fmt: skip
        self.streams = {name: RtpStream(name, sock, self.slots, self._stop, payload_type) for name, sock in streams}
        self._readers = [Stage(f"offload:rtp {stream.name}", stream.pictures(), stream.put, None, self._stop)
                         for stream in self.streams.values()]  # fmt: skip
        self._web: WebServer | None = None

    def start(self, bound: socket.socket) -> str:
        """Serve on `bound` (a socket `web.server.bind` made); returns the WebSocket URL.

        Raises:
            EdgewatchError: uvicorn did not start.
        """
        host, port = bound.getsockname()[:2]
        self._web = WebServer(self.app, host, port, flag="--port", what=f"{self.model} for offload", scheme="ws",
                              ws_max_size=MAX_MESSAGE_BYTES, ws_per_message_deflate=False)  # fmt: skip
        self._worker.start()
        for reader in self._readers:
            reader.start()
        self._web.start(bound=bound)
        return self._web.url.rstrip("/") + PATH

    @property
    def running(self) -> bool:
        stages = (self._worker, *self._readers)
        return all(stage.is_alive() for stage in stages) and not self._stop.is_set()

    def close(self) -> None:
        """Stop serving (open connections get CLOSE_SERVER_STOPS) and end the model thread.

        Raises:
            BaseException: what the model raised, if it failed.
        """
        self._stop.set()
        if self._web is not None:
            self._web.close()
        for stage in (self._worker, *self._readers):
            stage.join(10)
        for stage in (self._worker, *self._readers):
            if stage.error is not None:
                raise stage.error

    def _answer(self, jobs: list[Job]) -> None:
        """On the model thread: decode the frames, one model call for all, each answer to its client."""
        images, ready, decode_ms = [], [], []
        for job in jobs:
            if job.image is not None:  # an RTP stream's picture, decoded by its reader
                images.append(job.image)
                ready.append(job)
                decode_ms.append(job.decode_ms)
                continue
            started = time.perf_counter()
            image = cv2.imdecode(np.frombuffer(job.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None or image.shape[:2] != (job.height, job.width):
                job.client.deliver(ProtocolError(CLOSE_BAD_FRAME, f"frame {job.frame}: the JPEG does not decode"))
                continue
            images.append(image)
            ready.append(job)
            decode_ms.append((time.perf_counter() - started) * 1000)
        if not ready:
            return
        started = time.perf_counter()
        found = self.detector.detect_batch(images)
        model_ms = (time.perf_counter() - started) * 1000  # what each frame of the batch waited for
        for job, detections, decoding in zip(ready, found, decode_ms, strict=True):
            times = Times(decode_ms=decoding, queue_ms=(job.taken - job.received) * 1000, model_ms=model_ms)
            job.client.deliver(answer(job.frame, job.width, job.height, detections, times, job.dropped, len(ready)))

    async def _greeted(self, websocket: WebSocket, nobody: str) -> str | None:
        """Accept the connection and read its hello: who it is (`nobody` where it names no one), or
        None once one that left or broke the protocol has been dealt with."""
        await websocket.accept()
        peer = f"{websocket.client.host}:{websocket.client.port}" if websocket.client else nobody
        try:
            greeting = read_hello(await self._first_message(websocket))
        except _Gone:
            return None
        except ProtocolError as error:
            await _refuse(websocket, peer, error)
            return None
        return f"{one_line(greeting.get('client', nobody))} at {peer}"

    async def _connection(self, websocket: WebSocket) -> None:
        name = await self._greeted(websocket, "a client")
        if name is None:
            return
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[Any] = asyncio.Queue()  # one answer at most: its client is busy until it is sent

        def deliver(item: Any) -> None:  # on the model thread
            with contextlib.suppress(RuntimeError):  # the loop has ended: the server stops
                loop.call_soon_threadsafe(answers.put_nowait, item)

        client = self.slots.join(name, deliver)
        if client is None:
            error = ProtocolError(CLOSE_BUSY, f"the server has {self.slots.max_clients} clients; try again later")
            await _refuse(websocket, name, error)
            return
        try:
            await _send_json(websocket, self._welcome())
            log.info("%s connected (%d clients)", name, len(self.slots))
            await self._serve(websocket, client, answers)
        except ProtocolError as error:
            log.warning("%s: closed: %s", name, error.reason)
            await _close(websocket, error)
        except _Gone:
            pass
        finally:
            self.slots.leave(client)
            log.info("%s left: %d frames answered, %d dropped", name, client.answered, client.dropped_total)

    async def _listener(self, websocket: WebSocket, name: str) -> None:
        """`/v1/streams/NAME`: the hello as on /v1/detect, then each answer of the stream until the
        listener leaves; one that reads too slowly misses the older answers."""
        who = await self._greeted(websocket, "a listener")
        if who is None:
            return
        stream = self.streams.get(name)
        if stream is None:
            known = ", ".join(sorted(self.streams)) or "none"
            await _refuse(websocket, who, ProtocolError(CLOSE_NO_STREAM, f"no stream {one_line(name)!r} here "
                                                        f"(streams: {known})"))  # fmt: skip
            return
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[Any] = asyncio.Queue(LISTENER_BACKLOG)

        def put_newest(record: dict[str, Any]) -> None:  # on the loop
            if answers.full():
                answers.get_nowait()
            answers.put_nowait(record)

        def deliver(record: dict[str, Any]) -> None:  # on the model thread
            with contextlib.suppress(RuntimeError):  # the loop has ended: the server stops
                loop.call_soon_threadsafe(put_newest, record)

        stop_listening = stream.listen(deliver)
        try:
            await _send_json(websocket, {**self._welcome(), "stream": name})
            log.info("%s listens to rtp stream %s", who, name)
            await self._relay(websocket, answers)
        except _Gone:
            pass
        finally:
            stop_listening()
            log.info("%s stopped listening to rtp stream %s", who, name)

    @staticmethod
    async def _relay(websocket: WebSocket, answers: asyncio.Queue[Any]) -> None:
        """Send the answers until the listener leaves (what it sends after the hello is not read)."""

        async def until_gone() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        async def send() -> None:
            while True:
                await _send_json(websocket, await answers.get())

        await _until_first_ends(until_gone(), send())

    def _welcome(self) -> dict[str, Any]:
        detector = self.detector
        return welcome(self.model, detector.labels, max(1, detector.max_batch), detector.default_min_score,
                       detector.default_threshold)  # fmt: skip

    @staticmethod
    async def _first_message(websocket: WebSocket) -> str | bytes | None:
        try:
            message = await asyncio.wait_for(websocket.receive(), HELLO_TIMEOUT_S)
        except TimeoutError:
            raise ProtocolError(CLOSE_BAD_HELLO, f"no hello within {HELLO_TIMEOUT_S:g} s") from None
        if message["type"] == "websocket.disconnect":
            raise _Gone
        return message.get("text") if message.get("text") is not None else message.get("bytes")

    async def _serve(self, websocket: WebSocket, client: Client, answers: asyncio.Queue[Any]) -> None:
        """Read frames and send answers side by side until the client leaves or breaks the protocol."""
        await _until_first_ends(self._read(websocket, client), self._send(websocket, client, answers))

    async def _read(self, websocket: WebSocket, client: Client) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise _Gone
            data = message.get("bytes")
            if data is None:
                raise ProtocolError(CLOSE_BAD_FRAME, "after the hello each message is a frame: binary, not text")
            header, jpeg = unpack_frame(data)
            width, height = jpeg_size(jpeg)
            check_size(width, height)
            self.slots.put(Job(client, header["frame"], jpeg, width, height))

    async def _send(self, websocket: WebSocket, client: Client, answers: asyncio.Queue[Any]) -> None:
        while True:
            item = await answers.get()
            if isinstance(item, ProtocolError):
                raise item
            await _send_json(websocket, item)
            self.slots.answered(client)


class _Gone(Exception):
    """The client closed the connection, or lost it."""


async def _send_json(websocket: WebSocket, record: dict[str, Any]) -> None:
    try:
        await websocket.send_text(json.dumps(record))
    except Exception:  # the client has gone (uvicorn's and Starlette's ways of saying so differ)
        raise _Gone from None


async def _close(websocket: WebSocket, error: ProtocolError) -> None:
    """Say why in a JSON error, then close with the code and the reason; give up on a client that
    reads nothing."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.send_text(json.dumps(error.to_json())), CLOSE_TIMEOUT_S)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(error.code, error.close_reason), CLOSE_TIMEOUT_S)


def serve(
    detector: Detector,
    model: str,
    bound: socket.socket,
    host: str,
    token: str | None,
    hosts: Iterable[str] = (),
    max_clients: int = MAX_CLIENTS,
    on_serving: Callable[[str], None] | None = None,
    streams: Iterable[tuple[str, socket.socket]] = (),
    payload_type: int = DEFAULT_PAYLOAD,
    on_stream: Callable[[str, str], None] | None = None,
    publish: Callable[[str, dict[str, Any]], None] | None = None,
) -> int:
    """Serve `detector` on `bound` until SIGINT or SIGTERM.

    Args:
        detector: what answers; closed by the caller.
        model: its name for clients and logs.
        bound: the socket `web.server.bind` made (so a taken port was said before the model loaded).
        host: the address as the user gave it, which clients may name in their Host header.
        token: checked by `server_token`.
        hosts: more names than the bound address's that clients reach the server by.
        on_serving: called with the WebSocket URL once it answers.
        streams: RTP streams to receive, each `(name, bound UDP socket)`; closed when the server stops.
        payload_type: their RTP payload type.
        on_stream: called after `on_serving` with each stream's name and `udp://HOST:PORT`.
        publish: called with each stream's name and each of its answers, on the model thread (the
            `--mqtt` output).

    Returns:
        The exit code: 130 after SIGINT, 143 after SIGTERM.

    Example:
        >>> serve(load_detector("street"), "street", bind("127.0.0.1", 8765, "--port"), "127.0.0.1", None)  # doctest: +SKIP
    """
    server = OffloadServer(detector, model, Hosts.bound_to(host, hosts), token, max_clients, streams, payload_type)
    with Shutdown() as shutdown:
        try:
            url = server.start(bound)
            if on_serving is not None:
                on_serving(url)
            for stream in server.streams.values():
                if publish is not None:
                    stream.listen(functools.partial(publish, stream.name))
                if on_stream is not None:
                    on_stream(stream.name, stream.address)
            while not shutdown.requested and server.running:
                time.sleep(0.1)
        finally:
            server.close()
    if shutdown.requested:
        log.info("stopped on a signal")
    return shutdown.exit_code


async def _until_first_ends(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run `jobs` side by side until one ends; cancel the others; raise what the first raised."""
    tasks = {asyncio.ensure_future(job) for job in jobs}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        error = task.exception()
        if error is not None:
            raise error


async def _refuse(websocket: WebSocket, who: str, error: ProtocolError) -> None:
    log.warning("%s: refused: %s", who, error.reason)
    await _close(websocket, error)
