"""Cameras and network streams: webcams by index, rtsp/http(s)/udp URLs, GStreamer pipelines.

A live source that stops delivering is reopened with exponential backoff until it comes back or the
pipeline stops; only the first open must succeed within the open timeout.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit, urlunsplit

import cv2

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


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
            within = "" if isinstance(self._target, int) else f" within {self._timeout_ms / 1000:g} s"
            raise EdgewatchError(f"{self._describe()} did not open{within}", self._hint())
        return capture

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
