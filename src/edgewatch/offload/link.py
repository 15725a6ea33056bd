"""A network link between an edge and a server, emulated on loopback: a TCP relay that gives each
direction a bottleneck rate, a delay with jitter, and loss, so that offloading can be measured under
4G/5G-like links where the kernel has no `netem` (docs/links.md).

The model of a direction (`LinkModel`) is pure arithmetic on packet times; `LinkRelay` does the I/O:
it reads what one side sends, asks the model when each packet arrives, and writes it to the other side
then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.stage import Stage
from edgewatch.shutdown import Shutdown

log = logging.getLogger(__name__)

#: payload bytes per packet: an Ethernet MTU of 1500 less IPv4, TCP and the timestamp option
MSS = 1448
#: a direction stops reading while this many bytes wait for their time on the link (backpressure)
MAX_WAITING_BYTES = 4 * 1024 * 1024
READ_BYTES = 64 * 1024
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LinkProfile:
    """A link's figures, each direction its own rate.

    Attributes:
        name: the profile's name (`custom` for one written as figures).
        up_mbit: client -> server bottleneck rate, Mbit/s.
        down_mbit: server -> client bottleneck rate, Mbit/s.
        delay_ms: one-way propagation delay, ms.
        jitter_ms: the standard deviation of a normal spread added to each packet's delay, ms.
        loss: the probability that a packet is lost (and sent again), each direction.
        source: where the figures come from, in short (docs/links.md has the full citation).

    Example:
        >>> PROFILES["lte"].summary()
        'up 6.3 Mbit/s, down 21.3 Mbit/s, 27 ms +- 8 ms, 0.2% loss'
    """

    name: str
    up_mbit: float
    down_mbit: float
    delay_ms: float
    jitter_ms: float
    loss: float
    source: str

    def summary(self) -> str:
        """The figures in one line, as `edgewatch link` prints them."""
        return (
            f"up {self.up_mbit:g} Mbit/s, down {self.down_mbit:g} Mbit/s, {self.delay_ms:g} ms +- "
            f"{self.jitter_ms:g} ms, {100 * self.loss:g}% loss"
        )


PROFILES: dict[str, LinkProfile] = {
    profile.name: profile
    for profile in (
        LinkProfile("ethernet", 1000, 1000, 0.1, 0.02, 0.0,
                    "IEEE 802.3ab 1000BASE-T line rate; switched-LAN RTT order of 0.2 ms"),
        LinkProfile("wifi", 50, 100, 4, 4, 0.0,
                    "order of: Sundaresan et al. PAM 2016 / Sharma et al. 2023 (Wi-Fi often the home bottleneck); "
                    "Sui et al. MobiSys 2016 (Wi-Fi hop latency heavy-tailed)"),
        LinkProfile("lte", 6.3, 21.3, 27, 8, 0.002,
                    "Opensignal, State of Mobile: USA, May 2019 (Q1 2019, 4G): upload 6.3, download 21.3 Mbit/s, "
                    "latency 44-66 ms"),
        LinkProfile("poor-lte", 1, 4, 60, 25, 0.015,
                    "cell edge: Ookla's consistency floor of 5 Mbit/s down / 1 Mbit/s up, which 13-20% of US "
                    "samples miss (Speedtest Connectivity Report H1 2024); RTT twice the median"),
        LinkProfile("5g-low", 10, 50, 23, 6, 0.001,
                    "Opensignal US 5G report 2020 (T-Mobile, mostly low-band, 5G download 49.2 Mbit/s); "
                    "Narayanan et al. SIGCOMM 2021 (low-band 5G close to LTE); Ookla H1 2024 (5G upload 14.56)"),
        LinkProfile("5g-mmwave", 60, 500, 12, 4, 0.001,
                    "Opensignal Nov 2020 (Verizon mmWave download 338-508 Mbit/s in five US cities); uplink and "
                    "RTT order of Narayanan et al. WWW 2020 / Ghoshal et al. 2022"),
    )
}  # fmt: skip

_CUSTOM_KEYS = {"up": "up_mbit", "down": "down_mbit", "delay": "delay_ms", "jitter": "jitter_ms", "loss": "loss"}
_SPEC_HINT = (
    f"name one of {', '.join(PROFILES)}, or give figures as up=MBIT,down=MBIT[,delay=MS,jitter=MS,loss=FRACTION], "
    "e.g. up=5,down=20,delay=40,jitter=10,loss=0.01"
)


def link_profile(spec: str) -> LinkProfile:
    """The profile a `--profile` names: a name in `PROFILES`, or figures written as
    `up=5,down=20,delay=40,jitter=10,loss=0.01` (Mbit/s, ms, a fraction; up and down required, the others
    0 when left out).

    Raises:
        EdgewatchError: an unknown name, a key that is not one of those, a figure that is no number or out
            of range (a rate of 0 or less, a delay or jitter below 0, a loss outside [0, 1)).

    Example:
        >>> link_profile("up=5,down=20,delay=40").summary()
        'up 5 Mbit/s, down 20 Mbit/s, 40 ms +- 0 ms, 0% loss'
    """
    spec = spec.strip()
    if spec in PROFILES:
        return PROFILES[spec]
    if "=" not in spec:
        raise EdgewatchError(f"unknown link profile '{spec}'", _SPEC_HINT)
    figures: dict[str, float] = {}
    for part in spec.split(","):
        key, _, value = (text.strip() for text in part.partition("="))
        if key not in _CUSTOM_KEYS:
            raise EdgewatchError(f"bad link profile '{spec}': unknown key '{key}'", _SPEC_HINT)
        if key in figures:
            raise EdgewatchError(f"bad link profile '{spec}': {key} is given twice", _SPEC_HINT)
        try:
            figures[key] = float(value)
        except ValueError:
            raise EdgewatchError(f"bad link profile '{spec}': {key}={value} is no number", _SPEC_HINT) from None
        if not math.isfinite(figures[key]):
            raise EdgewatchError(f"bad link profile '{spec}': {key}={value} is no finite number", _SPEC_HINT)
    missing = [key for key in ("up", "down") if key not in figures]
    if missing:
        raise EdgewatchError(f"bad link profile '{spec}': it needs {' and '.join(missing)}", _SPEC_HINT)
    for key in ("up", "down"):
        if figures[key] <= 0:
            raise EdgewatchError(
                f"bad link profile '{spec}': {key}={figures[key]:g}: a rate must be more than 0 Mbit/s", _SPEC_HINT
            )
    for key in ("delay", "jitter"):
        if figures.get(key, 0.0) < 0:
            raise EdgewatchError(f"bad link profile '{spec}': {key} must be 0 ms or more", _SPEC_HINT)
    if not 0 <= figures.get("loss", 0.0) < 1:
        raise EdgewatchError(f"bad link profile '{spec}': loss must be a fraction from 0 to below 1", _SPEC_HINT)
    values = {_CUSTOM_KEYS[key]: value for key, value in figures.items()}
    return LinkProfile(
        "custom", values["up_mbit"], values["down_mbit"], values.get("delay_ms", 0.0), values.get("jitter_ms", 0.0),
        values.get("loss", 0.0), "given on the command line",
    )  # fmt: skip


def link_address(text: str, flag: str, listening: bool = False) -> tuple[str, int]:
    """`HOST:PORT` as a (host, port) pair; where the relay listens (`listening`), `PORT` alone means
    127.0.0.1 and port 0 any free port.

    Raises:
        EdgewatchError: no host or port, or a port that is no number in range (`flag` names the option).

    Example:
        >>> link_address("9000", "--listen", listening=True)
        ('127.0.0.1', 9000)
    """
    form, lowest = ("[HOST:]PORT", 0) if listening else ("HOST:PORT", 1)
    host, colon, port = text.rpartition(":")
    if not colon and listening:
        host = "127.0.0.1"
    host = host.strip("[]")
    if not host or not port.isdigit() or not lowest <= int(port) <= 65535:
        raise EdgewatchError(f"bad {flag} {text}", f"write it as {form}, the port a number from {lowest} to 65535")
    return host, int(port)


class LinkModel:
    """One direction of a link: when each packet of what is sent there arrives at the other end.

    A packet leaves the bottleneck once the one before it has left and its own bits are on the wire
    (a FIFO at `rate_mbit`: bulk transfers get the rate, a burst queues), then takes `delay_ms` plus a
    normal jitter sample (never a negative delay). A lost packet (probability `loss`) is recovered as TCP's
    fast retransmit would: one more round trip and its bits once more on the bottleneck. A byte stream
    keeps its order, so no packet arrives before the one ahead of it (head-of-line blocking). Pure
    arithmetic: nothing here reads a clock or a socket.

    Example:
        >>> model = LinkModel(8, 10, 0, 0, np.random.default_rng(0))
        >>> [round(float(t) * 1000, 3) for t in model.arrivals(0.0, 2 * MSS)]  # 1448 bytes at 8 Mbit/s: 1.448 ms
        [11.448, 12.896]
    """

    def __init__(self, rate_mbit: float, delay_ms: float, jitter_ms: float, loss: float,
                 rng: np.random.Generator) -> None:  # fmt: skip
        self._byte_s = 8 / (rate_mbit * 1e6)
        self._delay_s = delay_ms / 1000
        self._jitter_s = jitter_ms / 1000
        self._loss = loss
        self._rng = rng
        self._left = -math.inf  # when the last packet left the bottleneck
        self._arrived = -math.inf  # when the last packet arrived
        #: packets the loss model hit
        self.lost = 0

    def arrivals(self, now: float, size: int) -> np.ndarray:
        """When each packet of `size` bytes sent at `now` (seconds) arrives, in order: packet k carries
        bytes k*MSS up to (k+1)*MSS."""
        sizes = np.full(-(-size // MSS), MSS, dtype=np.float64)
        sizes[-1] = size - MSS * (len(sizes) - 1)
        wire = sizes * self._byte_s
        lost = self._rng.random(len(sizes)) < self._loss if self._loss > 0 else np.zeros(len(sizes), bool)
        self.lost += int(lost.sum())
        # the bottleneck: all of them arrived at `now`, so each leaves after those before it; a lost
        # packet's resending takes its bits on the wire once more
        left = max(now, self._left) + np.cumsum(wire * (1 + lost))
        self._left = float(left[-1])
        spread = self._rng.normal(0.0, self._jitter_s, len(sizes)) if self._jitter_s > 0 else 0.0
        flight = np.maximum(self._delay_s + spread, 0.0) + lost * 2 * self._delay_s
        arrived = np.maximum.accumulate(np.maximum(left + flight, self._arrived))
        self._arrived = float(arrived[-1])
        return arrived


class LinkRelay:
    """A TCP relay on loopback (or any address) that carries each connection to `target` over an
    emulated link: a client connects to (`host`, `port`); the relay opens one connection to `target` for
    it and carries the bytes both ways, up through a `LinkModel` of the profile's up rate and down through
    one of its down rate (each direction of each connection its own model, seeded from `seed`).

    It runs its own asyncio loop in a stage thread. While more than `MAX_WAITING_BYTES` wait in a
    direction it reads no more from that side, so a sender faster than the link is slowed as TCP would
    slow it, and memory stays bounded.

    Attributes:
        host, port: where clients connect (the port is resolved at start when `listen` asked for 0).
        up_bytes, down_bytes: payload bytes delivered each way, over all connections.
        packets: packets carried, both ways (each read is cut into MSS-sized packets).
        lost_packets: packets the loss model hit, both ways.
        peak_waiting_bytes: the most bytes that waited in one direction of one connection.
        connections: connections relayed so far.

    Example:
        >>> with LinkRelay(PROFILES["lte"], ("127.0.0.1", 8765)) as relay:  # doctest: +SKIP
        ...     detector = RemoteDetector(f"remote://{relay.host}:{relay.port}")
    """

    def __init__(self, profile: LinkProfile, target: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0),
                 seed: int = 0) -> None:  # fmt: skip
        self.profile = profile
        self.target = target
        self.host, self.port = listen
        self.seed = seed
        self.up_bytes = 0
        self.down_bytes = 0
        self.packets = 0
        self.lost_packets = 0
        self.peak_waiting_bytes = 0
        self.connections = 0
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._started = threading.Event()
        self._stop = threading.Event()
        self._stage = Stage("link-relay", [None], lambda _: asyncio.run(self._serve()), None, self._stop)

    def start(self) -> LinkRelay:
        """Listen, and relay from a stage thread; clients can connect when this returns.

        Raises:
            EdgewatchError: the listening address is taken or not this machine's.
        """
        from edgewatch.web.server import bind  # the one place a taken port becomes our one line

        self._socket = bind(self.host, self.port, "--listen")
        self.port = self._socket.getsockname()[1]
        self._stage.start()
        if not self._started.wait(_START_TIMEOUT_S):
            self.close()
            raise EdgewatchError(f"the link relay on {self.host}:{self.port} did not start", "run with --debug")
        return self

    def close(self) -> None:
        """Stop listening and close every relayed connection."""
        self._stop.set()
        if self._loop is not None and self._closing is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._closing.set)
        if self._stage.is_alive():
            self._stage.join(10)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> LinkRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        relays: set[asyncio.Task] = set()

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            relays.add(task)
            try:
                await self._relay(reader, writer, self.connections)
            except asyncio.CancelledError:
                pass  # the relay closes; ending quietly spares asyncio's log a "cancelled" per connection
            finally:
                relays.discard(task)

        assert self._socket is not None
        server = await asyncio.start_server(accepted, sock=self._socket)
        self._started.set()
        try:
            if not self._stop.is_set():
                await self._closing.wait()
        finally:
            server.close()
            for task in list(relays):
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            await server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     number: int) -> None:  # fmt: skip
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError as error:
            log.warning("link: cannot reach %s:%d for a client: %s", *self.target, error)
            client_writer.close()
            return
        for writer in (client_writer, server_writer):
            with contextlib.suppress(OSError):  # small writes go out at once: no Nagle wait
                writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up_seed, down_seed = np.random.SeedSequence([self.seed, number]).spawn(2)
        profile = self.profile
        up = _Direction(LinkModel(profile.up_mbit, profile.delay_ms, profile.jitter_ms, profile.loss,
                                  np.random.default_rng(up_seed)),
                        client_reader, server_writer, self, "up_bytes")  # fmt: skip
        down = _Direction(LinkModel(profile.down_mbit, profile.delay_ms, profile.jitter_ms, profile.loss,
                                    np.random.default_rng(down_seed)),
                          server_reader, client_writer, self, "down_bytes")  # fmt: skip
        tasks = [asyncio.ensure_future(direction.carry()) for direction in (up, down)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:  # a side reset or vanished: the other goes too
                    log.debug("link: a relayed connection broke: %s", task.exception())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await writer.wait_closed()


class _Direction:
    """One direction of one relayed connection: read what comes, hold each packet until the model says
    it arrives, then write it on (whatever is due in one write)."""

    def __init__(self, model: LinkModel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 relay: LinkRelay, counter: str) -> None:  # fmt: skip
        self._model = model
        self._reader = reader
        self._writer = writer
        self._relay = relay
        self._counter = counter
        #: each read still waiting, with the arrival time of each of its packets
        self._waiting: deque[tuple[np.ndarray, bytes]] = deque()
        self._written = 0  # packets of the first waiting read already written
        self._waiting_bytes = 0
        self._lost = 0  # the model's count, as last added to the relay's
        self._ended = False
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    async def carry(self) -> None:
        reading = asyncio.ensure_future(self._read())
        try:
            await self._write()
            await reading
        finally:
            reading.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._room.wait()
            data = await self._reader.read(min(READ_BYTES, MAX_WAITING_BYTES - self._waiting_bytes))
            if not data:
                break
            arrivals = self._model.arrivals(loop.time(), len(data))
            self._relay.packets += len(arrivals)
            self._relay.lost_packets += self._model.lost - self._lost
            self._lost = self._model.lost
            self._waiting.append((arrivals, data))
            self._waiting_bytes += len(data)
            self._relay.peak_waiting_bytes = max(self._relay.peak_waiting_bytes, self._waiting_bytes)
            if self._waiting_bytes >= MAX_WAITING_BYTES:
                self._room.clear()
            self._arrived.set()
        self._ended = True
        self._arrived.set()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                if self._ended:
                    if self._writer.can_write_eof():
                        self._writer.write_eof()  # the sender's half-close, passed on
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            arrivals, data = self._waiting[0]
            now = loop.time()
            if arrivals[self._written] > now:
                await asyncio.sleep(arrivals[self._written] - now)
                continue
            due = int(np.searchsorted(arrivals, now, side="right"))
            start, end = self._written * MSS, min(due * MSS, len(data))
            self._writer.write(memoryview(data)[start:end])
            setattr(self._relay, self._counter, getattr(self._relay, self._counter) + end - start)
            self._waiting_bytes -= end - start
            if due == len(arrivals):
                self._waiting.popleft()
                self._written = 0
            else:
                self._written = due
            if self._waiting_bytes < MAX_WAITING_BYTES:
                self._room.set()
            await self._writer.drain()


def relay_until_stopped(relay: LinkRelay, on_start: Callable[[LinkRelay], None] | None = None,
                        on_stop: Callable[[LinkRelay], None] | None = None) -> int:  # fmt: skip
    """Run `relay` until Ctrl-C or SIGTERM; the exit code a shell expects after them (130, 143).

    Raises:
        EdgewatchError: the relay cannot listen where it was asked to.
    """
    with Shutdown() as shutdown:
        with relay:
            if on_start is not None:
                on_start(relay)
            while not shutdown.requested:
                time.sleep(0.1)
        if on_stop is not None:
            on_stop(relay)
    log.info("stopped on a signal")
    return shutdown.exit_code
