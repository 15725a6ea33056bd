"""Cameras and network streams: webcams by index, rtsp/http(s)/udp URLs, GStreamer pipelines.

A live source that stops delivering is reopened with exponential backoff until it comes back or the
pipeline stops; only the first open must succeed within the open timeout.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import cv2

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0

# Streams carried over TCP, where a refused or unreachable server can be told apart from a silent one,
# with the port each uses when the URL names none.
TCP_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443, "tcp": None}


def redact(uri: str) -> str:
    """The URI without its password, for logs and messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class LiveSource(Source):
    """A webcam (int index) or a stream URL read through OpenCV.

    Args:
        target: webcam index, URL or GStreamer pipeline string.
        open_timeout: seconds to wait for the stream to open, and for each frame once it runs.
    """

    def __init__(self, target: int | str, open_timeout: float = 10.0) -> None:
        self._target = target
        self._timeout_ms = int(open_timeout * 1000)
        self._stopping = threading.Event()
        self.reconnects = 0
        self._capture = self._open()
        ok, first = self._capture.read()
        if not ok:
            self._capture.release()
            raise EdgewatchError(f"{self._describe()} opened but sent no frame", self._hint())
        self._pending: Picture | None = Picture(first)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # A plain file served over HTTP has a length and can be read at our pace; a stream has none.
        is_remote_file = isinstance(target, str) and target.startswith(("http://", "https://")) and count > 0
        self.info = SourceInfo(
            uri=redact(str(target)),
            fps=fps if 0 < fps < 1000 else None,
            width=first.shape[1],
            height=first.shape[0],
            frame_count=count if is_remote_file else None,
            live=not is_remote_file,
        )

    def _describe(self) -> str:
        if isinstance(self._target, int):
            return f"webcam {self._target}"
        return f"stream {redact(self._target)}"

    def _hint(self) -> str:
        if isinstance(self._target, int):
            return "check the camera is plugged in and not used by another program, or try another index"
        return "check the address, that the camera or server is streaming, and that this machine can reach it"

    def _open(self) -> cv2.VideoCapture:
        started = time.monotonic()
        if isinstance(self._target, int):
            capture = cv2.VideoCapture(self._target)
        elif "!" in self._target:
            capture = cv2.VideoCapture(self._target, cv2.CAP_GSTREAMER)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                self._timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                self._timeout_ms,
            ]
            capture = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            if isinstance(self._target, int):
                raise EdgewatchError(f"{self._describe()} did not open", self._hint())
            raise self._open_failure(time.monotonic() - started)
        return capture

    def _open_failure(self, elapsed: float) -> EdgewatchError:
        """Why a stream URL did not open. FFmpeg only says that it failed, so the server is asked
        directly, once it has failed: probing before would take the only connection of a server that
        serves one client (`ffmpeg -listen 1`, many cameras) and cost every good open a round trip."""
        timeout = self._timeout_ms / 1000
        timed_out = f"{self._describe()} did not open within {timeout:g} s"
        address = _tcp_address(self._target) if "!" not in self._target else None
        # A refusal or a name that does not resolve fails at once; one that took the whole timeout did not.
        if address is None or elapsed >= 0.8 * timeout:
            return EdgewatchError(timed_out, self._hint())
        host, port = address
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        probe_timeout = min(timeout, 2.0)
        try:
            with socket.create_connection(address, timeout=probe_timeout):
                pass
        except socket.gaierror as error:
            return EdgewatchError(
                f"{self._describe()}: the host name {host} does not resolve: {error.strerror}",
                "check the spelling of the host name, or use the camera's IP address",
            )
        except ConnectionRefusedError:
            return EdgewatchError(
                f"{self._describe()}: connection to {where} refused, nothing is listening on that port",
                "check the port in the URL, and that the camera or server is running and streaming",
            )
        except TimeoutError:
            return EdgewatchError(
                f"{self._describe()}: {where} did not answer within {probe_timeout:g} s", self._hint()
            )
        except OSError as error:
            return EdgewatchError(
                f"{self._describe()}: cannot reach {where}: {error.strerror or error}",
                "check the address, and that this machine's network can reach it",
            )
        # The server takes connections, yet FFmpeg gave up early: it answered, but not with a stream
        # FFmpeg can read (a wrong path, a login it refused, another protocol on that port).
        return EdgewatchError(
            f"{self._describe()}: {where} answered but sent no stream that could be read",
            "check the path and the user name and password in the URL, and that the server streams there",
        )

    def read(self) -> Picture | None:
        if self._pending is not None:
            picture, self._pending = self._pending, None
            return picture
        while not self._stopping.is_set():
            ok, image = self._capture.read()
            if ok:
                return Picture(image)
            if not self.info.live:
                return None
            self._reconnect()
        return None

    def _reconnect(self) -> None:
        """Reopen until it works or the pipeline stops, waiting longer after each failure."""
        self._capture.release()
        delay = BACKOFF_FIRST_S
        while not self._stopping.is_set():
            log.warning("%s dropped; reconnecting in %.1f s", self._describe(), delay)
            if self._stopping.wait(delay):
                return
            try:
                self._capture = self._open()
            except EdgewatchError:
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self.reconnects += 1
            log.info("%s is back (reconnect %d)", self._describe(), self.reconnects)
            return

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self._stopping.set()
        self._capture.release()


def _tcp_address(url: str) -> tuple[str, int] | None:
    """The host and port a TCP-carried stream URL connects to; None for other URLs (udp, srt)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in TCP_DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or TCP_DEFAULT_PORTS[scheme]
    except ValueError:  # a port that is not a number, or above 65535
        return None
    return (parts.hostname, port) if port else None
