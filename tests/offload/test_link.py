"""The link relay (docs/links.md): bytes pass intact, round trips take the delay, bulk transfers get the
rate, jitter spreads and loss delays, memory stays bounded; `edgewatch link` as a user runs it.

Timing: lower bounds are physics and asserted closely; upper bounds are generous, for a loaded machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import socketserver
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from edgewatch.errors import EdgewatchError
from edgewatch.offload.link import (
    MAX_WAITING_BYTES,
    MSS,
    PROFILES,
    LinkModel,
    LinkProfile,
    LinkRelay,
    link_profile,
)
from media import edgewatch_command
from offload_servers import Served, one_line_error


class _Peer(socketserver.BaseRequestHandler):
    """The far end. The first byte says what it does: E echoes, U reads to the end and answers the
    SHA-256 of what it read, D + 8 bytes N sends N seeded random bytes and closes."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = sock.recv(1)
        if mode == b"E":
            while data := sock.recv(65536):
                sock.sendall(data)
        elif mode == b"U":
            digest = hashlib.sha256()
            while data := sock.recv(65536):
                digest.update(data)
            sock.sendall(digest.digest())
        elif mode == b"D":
            size = int.from_bytes(_recv_exactly(sock, 8), "big")
            sock.sendall(random_bytes(size))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def peer() -> Iterator[tuple[str, int]]:
    with _Server(("127.0.0.1", 0), _Peer) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address
        server.shutdown()


def random_bytes(size: int, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = sock.recv(min(left, 1 << 20))
        assert part, f"the stream ended {left} bytes early"
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _recv_all(sock: socket.socket) -> bytes:
    parts = []
    while part := sock.recv(1 << 20):
        parts.append(part)
    return b"".join(parts)


@contextlib.contextmanager
def connected(relay: LinkRelay, mode: bytes, timeout: float = 30) -> Iterator[socket.socket]:
    with socket.create_connection((relay.host, relay.port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(mode)
        yield sock


def custom(**figures: float) -> LinkProfile:
    return link_profile(",".join(f"{key}={value}" for key, value in figures.items()))


def round_trips(relay: LinkRelay, count: int, size: int = 100, gap_s: float = 0.0) -> list[float]:
    """`count` echoes of `size` bytes, one after the other, each timed."""
    times = []
    with connected(relay, b"E") as sock:
        for i in range(count):
            message = random_bytes(size, seed=i)
            started = time.perf_counter()
            sock.sendall(message)
            assert _recv_exactly(sock, size) == message
            times.append(time.perf_counter() - started)
            time.sleep(gap_s)
    return times


def upload(relay: LinkRelay, data: bytes) -> float:
    """Send `data` up, wait for the far end's hash of it, check it; the seconds it took."""
    started = time.perf_counter()
    with connected(relay, b"U") as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert _recv_exactly(sock, 32) == hashlib.sha256(data).digest(), "the bytes that came up differ"
    return time.perf_counter() - started


def download(relay: LinkRelay, size: int) -> float:
    started = time.perf_counter()
    with connected(relay, b"D") as sock:
        sock.sendall(size.to_bytes(8, "big"))
        assert _recv_all(sock) == random_bytes(size), "the bytes that came down differ"
    return time.perf_counter() - started


# ---- the profiles and their spelling


def test_the_named_profiles_have_their_figures_and_a_source() -> None:
    assert list(PROFILES) == ["ethernet", "wifi", "lte", "poor-lte", "5g-low", "5g-mmwave"]
    for name, profile in PROFILES.items():
        assert profile.name == name and link_profile(name) is profile
        assert profile.up_mbit > 0 and profile.down_mbit > 0 and profile.delay_ms >= 0 and profile.jitter_ms >= 0
        assert 0 <= profile.loss < 1 and profile.source
    # what the names promise: cell edge is worse than LTE, mmWave faster than low-band, frames go up slower
    assert PROFILES["poor-lte"].up_mbit < PROFILES["lte"].up_mbit < PROFILES["5g-low"].up_mbit
    assert PROFILES["poor-lte"].delay_ms > PROFILES["lte"].delay_ms and PROFILES["poor-lte"].loss >= 0.01
    assert PROFILES["5g-mmwave"].down_mbit > PROFILES["5g-low"].down_mbit
    assert all(p.up_mbit <= p.down_mbit for p in PROFILES.values())


def test_a_custom_profile_is_figures_and_what_is_left_out_is_0() -> None:
    profile = link_profile("up=5,down=20,delay=40,jitter=10,loss=0.01")
    assert (profile.up_mbit, profile.down_mbit, profile.delay_ms, profile.jitter_ms, profile.loss) == (
        5, 20, 40, 10, 0.01
    )  # fmt: skip
    assert profile.summary() == "up 5 Mbit/s, down 20 Mbit/s, 40 ms +- 10 ms, 1% loss"
    bare = link_profile(" down=2.5 , up=1 ")
    assert (bare.up_mbit, bare.down_mbit, bare.delay_ms, bare.jitter_ms, bare.loss) == (1, 2.5, 0, 0, 0)


@pytest.mark.parametrize(
    "spec",
    ["3g", "", "up=5", "down=5", "up=5,down=0", "up=-1,down=5", "up=5,down=5,delay=-1", "up=5,down=5,jitter=-2",
     "up=5,down=5,loss=1", "up=5,down=5,loss=-0.1", "up=5,down=5,rate=3", "up=fast,down=5", "up=5,up=6,down=5",
     "up=nan,down=5", "up=inf,down=5"],
)  # fmt: skip
def test_a_bad_profile_is_one_line_naming_the_known_ones_and_the_custom_form(spec: str) -> None:
    with pytest.raises(EdgewatchError) as raised:
        link_profile(spec)
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert all(name in message for name in PROFILES) and "up=MBIT,down=MBIT" in message


# ---- the model of one direction, without sockets


def test_the_bottleneck_gives_the_rate_and_a_burst_queues() -> None:
    model = LinkModel(10, 20, 0, 0, np.random.default_rng(0))
    arrivals = model.arrivals(0.0, 100 * MSS)
    wire = MSS * 8 / 10e6
    assert np.allclose(np.diff(arrivals), wire)  # packets leave one wire time apart
    assert arrivals[0] == pytest.approx(0.020 + wire) and arrivals[-1] == pytest.approx(0.020 + 100 * wire)
    # a packet sent while the queue still holds the burst waits behind it
    later = model.arrivals(0.001, 10)
    assert later[0] == pytest.approx(arrivals[-1] + 10 * 8 / 10e6)
    # one sent once the link is idle again waits for nothing
    assert model.arrivals(10.0, MSS)[0] == pytest.approx(10.0 + 0.020 + wire)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jitter_spreads_arrivals_yet_keeps_their_order_and_a_seed_repeats_them(seed: int) -> None:
    def spread(model: LinkModel) -> np.ndarray:
        # packets far apart (no queue): what is left of their delay is the jitter
        return np.array([model.arrivals(float(t), 100)[0] - t for t in range(400)])

    delays = spread(LinkModel(100, 30, 10, 0, np.random.default_rng(seed)))
    assert delays.min() >= 0 and 0.008 < delays.std() < 0.012 and delays.mean() == pytest.approx(0.030, abs=0.002)
    assert np.array_equal(delays, spread(LinkModel(100, 30, 10, 0, np.random.default_rng(seed))))
    burst = LinkModel(100, 30, 10, 0, np.random.default_rng(seed)).arrivals(0.0, 500 * MSS)
    assert np.all(np.diff(burst) >= 0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_lost_packet_comes_a_round_trip_later_and_the_ones_behind_it_wait(seed: int) -> None:
    model = LinkModel(100, 25, 0, 0.05, np.random.default_rng(seed))
    arrivals = np.concatenate([model.arrivals(float(t), 100) - t for t in range(2000)])
    lost = arrivals > 0.030
    assert model.lost == lost.sum() and abs(model.lost - 100) < 4 * np.sqrt(2000 * 0.05 * 0.95)
    assert np.allclose(arrivals[lost], 0.075, atol=1e-4)  # 25 ms, and one more round trip of 50 ms
    burst = LinkModel(100, 25, 0, 0.05, np.random.default_rng(seed)).arrivals(0.0, 200 * MSS)
    assert np.all(np.diff(burst) >= 0)


# ---- the relay, on real sockets


@pytest.mark.parametrize("name", list(PROFILES))
def test_random_bytes_pass_both_ways_intact_on_every_profile(peer: tuple[str, int], name: str) -> None:
    data = random_bytes(300_000, seed=3)
    with LinkRelay(PROFILES[name], peer, seed=1) as relay, connected(relay, b"E") as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(data), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        echoed = _recv_all(sock)
        sender.join()
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
    assert (relay.up_bytes, relay.down_bytes) == (len(data) + 1, len(data))  # up: and the mode byte


@pytest.mark.parametrize("delay_ms", [10, 40, 100])
def test_a_small_message_takes_a_round_trip_of_twice_the_delay(peer: tuple[str, int], delay_ms: float) -> None:
    with LinkRelay(custom(up=20, down=50, delay=delay_ms), peer) as relay:
        times = round_trips(relay, 4)
    wire = 100 * 8 / 20e6 + 100 * 8 / 50e6
    assert min(times) >= 2 * delay_ms / 1000 + wire - 1e-4
    assert statistics.median(times) < 2 * delay_ms / 1000 + 0.040


def test_a_bulk_transfer_gets_each_direction_its_own_rate(peer: tuple[str, int]) -> None:
    up_mbit, down_mbit, delay = 16, 40, 0.010
    with LinkRelay(custom(up=up_mbit, down=down_mbit, delay=delay * 1000), peer) as relay:
        up_size, down_size = 2_000_000, 5_000_000
        up_s = upload(relay, random_bytes(up_size)) - 2 * delay  # the hash comes back a round trip later
        down_s = download(relay, down_size) - 2 * delay
    assert up_size * 8 / up_s / 1e6 == pytest.approx(up_mbit, rel=0.15)
    assert down_size * 8 / down_s / 1e6 == pytest.approx(down_mbit, rel=0.15)
    assert up_s >= up_size * 8 / (up_mbit * 1e6)  # never faster than the link


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jitter_spreads_round_trips(peer: tuple[str, int], seed: int) -> None:
    with LinkRelay(custom(up=50, down=50, delay=20, jitter=10), peer, seed=seed) as relay:
        jittery = round_trips(relay, 20, gap_s=0.01)
    with LinkRelay(custom(up=50, down=50, delay=20), peer, seed=seed) as relay:
        steady = round_trips(relay, 10, gap_s=0.01)
    # two one-way samples of 10 ms each: the round trips spread by about 14 ms
    assert statistics.stdev(jittery) > 0.006 > statistics.stdev(steady)
    assert min(jittery) >= 0  # and every echo came back intact and in order (round_trips checks it)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_hits_its_share_of_packets_and_the_transfer_still_arrives(peer: tuple[str, int], seed: int) -> None:
    loss = 0.05
    with LinkRelay(custom(up=100, down=100, delay=2, loss=loss), peer, seed=seed) as relay:
        upload(relay, random_bytes(1_500_000, seed=seed))
    spread = 4 * np.sqrt(relay.packets * loss * (1 - loss))
    assert relay.packets > 1_500_000 // MSS
    assert abs(relay.lost_packets - loss * relay.packets) < spread


def test_a_slow_link_holds_at_most_its_cap_while_a_fast_sender_pushes(peer: tuple[str, int]) -> None:
    sent = 0

    def push(sock: socket.socket) -> None:
        nonlocal sent
        block = random_bytes(1 << 20)
        with contextlib.suppress(OSError):
            while sent < 40 << 20:
                sock.sendall(block)
                sent += len(block)

    with LinkRelay(custom(up=2, down=50, delay=5), peer) as relay, connected(relay, b"U", timeout=10) as sock:
        pusher = threading.Thread(target=push, args=(sock,), daemon=True)
        pusher.start()
        started = time.perf_counter()
        time.sleep(2.0)
        elapsed = time.perf_counter() - started
        assert MAX_WAITING_BYTES * 0.9 <= relay.peak_waiting_bytes <= MAX_WAITING_BYTES
        assert sent < 20 << 20  # the sender was held back, not buffered without end
        assert relay.up_bytes * 8 / 1e6 <= 2 * (elapsed + 0.2)  # and the link kept its rate
    pusher.join(10)
    assert not pusher.is_alive()  # closing the relay ended its connections


def test_an_unreachable_target_closes_the_client_and_the_relay_goes_on(peer: tuple[str, int]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()
    with LinkRelay(PROFILES["ethernet"], free) as relay:
        with socket.create_connection((relay.host, relay.port), timeout=5) as sock:
            assert sock.recv(1) == b""
        relay.target = peer
        assert len(round_trips(relay, 1)) == 1


def test_a_taken_listening_port_is_one_line(peer: tuple[str, int]) -> None:
    with LinkRelay(PROFILES["lte"], peer) as relay, pytest.raises(EdgewatchError, match="--listen"):
        LinkRelay(PROFILES["lte"], peer, listen=(relay.host, relay.port)).start()


def test_the_remote_detector_gets_boxes_through_lte(street_server: Served, street_jpegs: list[bytes]) -> None:
    from edgewatch.offload.remote import RemoteDetector

    profile = PROFILES["lte"]
    image = cv2.imdecode(np.frombuffer(street_jpegs[0], np.uint8), cv2.IMREAD_COLOR)
    with LinkRelay(profile, ("127.0.0.1", street_server.port)) as relay:
        detector = RemoteDetector(f"remote://{relay.host}:{relay.port}", timeout=10)
        try:
            started = time.perf_counter()
            found = detector.detect(image)
            took = time.perf_counter() - started
        finally:
            detector.close()
    assert detector.in_use == "remote" and len(found) > 0
    jpeg_wire = len(street_jpegs[0]) * 8 / (profile.up_mbit * 1e6)  # about that much JPEG goes up
    assert took >= 2 * profile.delay_ms / 1000 + 0.5 * jpeg_wire - 0.030  # jitter may shorten one trip
    assert relay.up_bytes > 0.5 * len(street_jpegs[0]) and relay.down_bytes > 0


# ---- edgewatch link


def test_edgewatch_link_relays_until_ctrl_c_and_says_what_it_carried(peer: tuple[str, int]) -> None:
    command = edgewatch_command("link", "--profile", "lte", "--target", f"{peer[0]}:{peer[1]}", "--listen", "0")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        line = process.stdout.readline()
        assert line.startswith("relaying 127.0.0.1:") and f"-> {peer[0]}:{peer[1]} as lte: " in line, line
        assert PROFILES["lte"].summary() in line
        port = int(line.split()[1].rpartition(":")[2])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"Ehello")
            assert _recv_exactly(sock, 5) == b"hello"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "6 bytes up, 5 bytes down" in out, out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--profile", "3g", "--target", "127.0.0.1:8765"), "unknown link profile '3g'"),
        (("--profile", "lte", "--target", "nowhere"), "bad --target nowhere"),
        (("--profile", "lte", "--target", "127.0.0.1:8765", "--listen", "x:y"), "bad --listen x:y"),
    ],
)
def test_edgewatch_link_with_bad_input_is_one_line_and_exit_2(
    run_cli: Callable[..., subprocess.CompletedProcess], args: tuple[str, ...], said: str
) -> None:
    assert said in one_line_error(run_cli("link", *args, timeout=60))
