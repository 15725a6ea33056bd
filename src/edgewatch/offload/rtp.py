"""H.264 over RTP/UDP into the offload server: what a Raspberry Pi sends with `rtph264pay ! udpsink`.

Each `--rtp` port is a UDP socket bound before the model loads (so a taken port is one line). Its reader
puts the RTP packets back together into H.264 access units (RFC 6184: single NAL units, STAP-A, FU-A),
decodes them with PyAV and puts each picture in the stream's slot of `slots.FrameSlots`, as a WebSocket
client's JPEG would be: the model takes the newest, older ones are dropped and counted. Its answers go
to the WebSockets at `/v1/streams/NAME` (`server.OffloadServer`).

The socket is ours, not FFmpeg's (its `sdp` demuxer binds the port itself, which would only be checked
once the model had loaded, and takes no port 0); the decoder is FFmpeg's, which conceals what lost
packets leave out and is whole again at the next key frame.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.offload.slots import Client, FrameSlots, Job

log = logging.getLogger(__name__)

#: the payload type `rtph264pay` sends by default (the first dynamic one)
DEFAULT_PAYLOAD = 96
#: a stream silent this long has stopped: its decoder gives up the pictures it holds, and starts afresh
QUIET_S = 1.0
_POLL_S = 0.1
_MAX_DATAGRAM = 65536
_START_CODE = b"\x00\x00\x00\x01"
_HEADER = struct.Struct(">BBHII")  # V/P/X/CC, M/PT, sequence number, timestamp, SSRC
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HINT = "write --rtp PORT or NAME=PORT, several comma-separated, e.g. --rtp 9777 or --rtp door=9777,yard=9778"


@dataclass(frozen=True, slots=True)
class RtpPort:
    """One `--rtp` stream: its name (None: the port it binds) and its UDP port (0: any free one)."""

    name: str | None
    port: int


def parse_rtp(values: Iterable[str]) -> list[RtpPort]:
    """The streams of `--rtp` options (each PORT, NAME=PORT, or several of them comma-separated).

    Raises:
        EdgewatchError: not PORT or NAME=PORT, a port out of range, a port or a name given twice.

    Example:
        >>> parse_rtp(["9777", "door=9778,yard=0"])
        [RtpPort(name=None, port=9777), RtpPort(name='door', port=9778), RtpPort(name='yard', port=0)]
    """
    ports: list[RtpPort] = []
    for value in values:
        for item in value.split(","):
            name, equals, number = item.strip().rpartition("=")
            if not number.isdigit() or (equals and not _NAME.fullmatch(name)):
                raise EdgewatchError(f"--rtp {value}: {item.strip()!r} is not PORT or NAME=PORT", _HINT)
            port = int(number)
            if port > 65535:
                raise EdgewatchError(f"--rtp {value}: port {port} is out of range", "choose one from 1 to 65535, or 0")
            ports.append(RtpPort(name or None, port))
    taken = [rtp.port for rtp in ports if rtp.port != 0]
    twice = sorted({port for port in taken if taken.count(port) > 1})
    if twice:
        raise EdgewatchError(f"--rtp names port {twice[0]} twice", "give each stream a port of its own")
    names = [rtp.name or str(rtp.port) for rtp in ports if rtp.name or rtp.port]
    twice_named = sorted({name for name in names if names.count(name) > 1})
    if twice_named:
        raise EdgewatchError(f"--rtp names stream {twice_named[0]} twice", "give each stream a name of its own")
    return ports


def bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket bound to `host:port` (0: any free port), or one line that says why not.

    Raises:
        EdgewatchError: the port is taken or privileged, or `host` is no address here.
    """
    where = f"udp://{host}:{port}"
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # a key frame is many packets
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
            raise EdgewatchError(f"cannot receive on {where}: {host} is no address of this machine",
                                 "give --host one of its addresses, or 0.0.0.0 for every network") from None  # fmt: skip
        if error.errno == errno.EADDRINUSE:
            raise EdgewatchError(f"cannot receive on {where}: the port is taken",
                                 "choose another with --rtp, or stop what holds it") from None  # fmt: skip
        if error.errno == errno.EACCES:
            raise EdgewatchError(f"cannot receive on {where}: ports below 1024 need root",
                                 "choose one above 1024 with --rtp") from None  # fmt: skip
        raise EdgewatchError(f"cannot receive on {where}: {error.strerror}", "choose another port with --rtp") from None
    return sock


class Depacketizer:
    """RTP packets of one H.264 stream in, whole access units (Annex B: start codes, then NAL units) out.

    A lost packet (a gap in the sequence numbers) loses the NAL unit it was part of; the rest of the
    picture goes on to the decoder, which conceals what is missing. A new SSRC is a new sender: what
    was half received of the old one is dropped.

    Args:
        payload_type: the packets to take; others are counted in `ignored`.

    Example:
        >>> packet = bytes([0x80, 0x80 | 96, 0, 1]) + bytes(8) + b"\\x65idr"  # marker set: the picture is whole
        >>> Depacketizer(96).push(packet)
        [b'\\x00\\x00\\x00\\x01eidr']
    """

    def __init__(self, payload_type: int = DEFAULT_PAYLOAD) -> None:
        self.payload_type = payload_type
        self.ssrc: int | None = None
        self.lost = 0
        self.ignored = 0
        self._sequence: int | None = None
        self._timestamp: int | None = None
        self._nals: list[bytes] = []
        self._fragment: bytearray | None = None

    def push(self, packet: bytes) -> list[bytes]:
        """The access units `packet` completes (none, one, or two when it starts the next picture)."""
        if len(packet) < _HEADER.size:
            self.ignored += 1
            return []
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(packet)
        if first >> 6 != 2 or second & 0x7F != self.payload_type:
            self.ignored += 1
            return []
        start = _HEADER.size + 4 * (first & 0x0F)
        end = len(packet) - (packet[-1] if first & 0x20 else 0)
        if first & 0x10 and start + 4 <= end:  # a header extension: 4 bytes, then its length in words
            start += 4 + 4 * struct.unpack_from(">H", packet, start + 2)[0]
        if start >= end:
            self.ignored += 1
            return []
        done: list[bytes] = []
        if ssrc != self.ssrc:
            self.ssrc, self._sequence, self._timestamp = ssrc, None, None
            self._nals, self._fragment = [], None
        if self._sequence is not None and sequence != (self._sequence + 1) & 0xFFFF:
            self.lost += (sequence - self._sequence - 1) & 0xFFFF
            self._fragment = None
        self._sequence = sequence
        if self._timestamp is not None and timestamp != self._timestamp:
            done += self._finish()  # the previous picture's last packet was lost
        self._timestamp = timestamp
        self._take(packet[start:end])
        if second & 0x80:  # the marker: the last packet of the picture
            done += self._finish()
        return done

    def _take(self, payload: bytes) -> None:
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._nals.append(payload)
        elif kind == 24:  # STAP-A: several NAL units, each after its 2-byte size
            at = 1
            while at + 2 <= len(payload):
                (size,) = struct.unpack_from(">H", payload, at)
                self._nals.append(payload[at + 2 : at + 2 + size])
                at += 2 + size
        elif kind == 28 and len(payload) > 2:  # FU-A: a NAL unit in fragments
            header = payload[1]
            if header & 0x80:  # its first
                self._fragment = bytearray([(payload[0] & 0xE0) | (header & 0x1F)])
            if self._fragment is not None:
                self._fragment += payload[2:]
                if header & 0x40:  # its last
                    self._nals.append(bytes(self._fragment))
                    self._fragment = None
        else:  # STAP-B, MTAP, FU-B: interleaved mode, which rtph264pay does not send
            self.ignored += 1

    def _finish(self) -> list[bytes]:
        nals, self._nals, self._fragment = self._nals, [], None
        return [b"".join(_START_CODE + nal for nal in nals if nal)] if nals else []


@dataclass(slots=True)
class Picture:
    """A decoded picture of a stream, and how long its decoding took."""

    image: np.ndarray
    decode_ms: float


class RtpStream:
    """One `--rtp` port: its reader (an iterator of pictures for a `Stage`), its slot at the model, and
    the listeners its answers go to.

    Args:
        name: its name in `/v1/streams/NAME`.
        sock: the bound UDP socket (`bind_udp`); closed when the reader ends.
        slots: the model's frame slots; the stream joins them as a client.
        stop: ends the reader.
        payload_type: the RTP payload type of its H.264 packets.

    Raises:
        EdgewatchError: the slots take no more clients.
    """

    def __init__(
        self, name: str, sock: socket.socket, slots: FrameSlots, stop: threading.Event, payload_type: int
    ) -> None:
        self.name = name
        self.sock = sock
        self.payload_type = payload_type
        self._slots = slots
        self._stop = stop
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._lock = threading.Lock()
        self.frames = 0
        client = slots.join(f"rtp stream {name}", self._deliver)
        if client is None:
            raise EdgewatchError(f"{len(slots)} clients already: no place for rtp stream {name}",
                                 "raise --max-clients: each --rtp stream takes one of them")  # fmt: skip
        self.client: Client = client

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"udp://{f'[{host}]' if ':' in host else host}:{port}"

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """`listener` gets each answer from now on (on the model thread); returns what ends that."""
        with self._lock:
            self._listeners.append(listener)

        def stop_listening() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return stop_listening

    def put(self, picture: Picture) -> None:
        """The reader's stage work: the picture waits for the model, replacing the one before it."""
        height, width = picture.image.shape[:2]
        self._slots.put(Job(self.client, self.frames, b"", width, height, image=picture.image,
                            decode_ms=picture.decode_ms))  # fmt: skip
        self.frames += 1

    def _deliver(self, item: Any) -> None:
        if isinstance(item, dict):
            record = {"stream": self.name, **item}
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                listener(record)
        self._slots.answered(self.client)  # no listener holds the model up

    def pictures(self) -> Iterator[Picture]:
        """The stream's pictures as they are decoded, until `stop`; packets lost, a sender that stops
        and starts again, and pictures that do not decode are logged and lived with."""
        packets = Depacketizer(self.payload_type)
        decoder: av.VideoCodecContext | None = None
        last: float | None = None  # when the last packet came
        failed = 0  # pictures that did not decode since the last that did
        self.sock.settimeout(_POLL_S)
        try:
            while not self._stop.is_set():
                try:
                    packet, peer = self.sock.recvfrom(_MAX_DATAGRAM)
                except TimeoutError:
                    if last is not None and time.monotonic() - last > QUIET_S:
                        log.info("rtp stream %s: quiet for %g s (%d pictures, %d packets lost)", self.name, QUIET_S,
                                 self.frames, packets.lost)  # fmt: skip
                        if decoder is not None:
                            with contextlib.suppress(av.FFmpegError):
                                yield from self._decode(decoder, None)  # what the decoder still holds
                        decoder, last = None, None
                    continue
                if last is None:
                    log.info("rtp stream %s: receiving from %s:%d", self.name, *peer[:2])
                last = time.monotonic()
                ssrc = packets.ssrc
                units = packets.push(packet)
                if packets.ssrc != ssrc and decoder is not None:  # another sender, or the same one again
                    decoder = None
                for unit in units:
                    if decoder is None:
                        decoder = _decoder()
                    try:
                        yield from self._decode(decoder, av.Packet(unit))
                        failed = 0
                    except av.FFmpegError as error:
                        if failed == 0:  # once for a run of them: the decoder is whole again at a key frame
                            log.warning("rtp stream %s: a picture does not decode (%s); going on", self.name,
                                        error)  # fmt: skip
                        failed += 1
        finally:
            self.sock.close()

    @staticmethod
    def _decode(decoder: av.VideoCodecContext, packet: av.Packet | None) -> Iterator[Picture]:
        started = time.perf_counter()
        for frame in decoder.decode(packet):
            image = frame.to_ndarray(format="bgr24")
            yield Picture(image, (time.perf_counter() - started) * 1000)
            started = time.perf_counter()


def _decoder() -> av.VideoCodecContext:
    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_type = "SLICE"  # frame threads would hold each picture back a few frames
    return decoder
