"""`RemoteDetector`: a pipeline's model run on an `edgewatch serve` server, with a local fallback for
the time the server cannot be reached. Tracking, analytics and sinks stay on the edge."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import socket
import time
from typing import Literal

import cv2
import numpy as np
import supervision as sv
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from edgewatch import __version__
from edgewatch.errors import EdgewatchError
from edgewatch.models.base import Detector, make_detections
from edgewatch.offload.address import endpoint
from edgewatch.offload.protocol import (
    CLOSE_VERSION,
    MAX_JPEG_BYTES,
    MAX_SIDE,
    ProtocolError,
    answer_detections,
    hello,
    pack_frame,
    read_answer,
    read_welcome,
)
from edgewatch.offload.sendless import DEFAULT_TARGET_F1, Budget, SendLess, Threshold

log = logging.getLogger(__name__)

InUse = Literal["remote", "fallback", "none"]

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_QUALITY = 90
#: after a failed try, the next waits this long, then twice as long each time, up to RETRY_MAX_S
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 30.0
#: frames in a row the server may leave unanswered within the timeout before it counts as lost
TIMEOUTS_BEFORE_LOST = 3
#: the min_score of a remote model whose server could not be asked at start: model files' default
UNKNOWN_MIN_SCORE = 0.25
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: with min_change, a frame is sent at least this often however little it changed
DEFAULT_MAX_SKIP = 10


class RemoteDetector(Detector):
    """Sends each frame as a JPEG to an `edgewatch serve` server and returns its boxes.

    The labels and the default min_score are the server's model's, learned in the hello when the
    detector is made. While the server cannot be reached, at the start or later, `fallback` answers
    instead (or no boxes come, without one), and the server is tried again after 2 s, then 4, 8, ...
    up to 30 s between tries. Each change between them is one log line; `in_use` says which answers.

    With `min_change`, a frame that differs from the last one sent by less than that (the mean absolute
    difference of 64-pixel-wide grayscale thumbnails, 0-255) is not sent: the server's last boxes are
    returned, moved by optical flow to where their content is now, and the edge tracker keeps their
    identities. Every `max_skip`-th frame is sent anyway. `min_change="auto"` tunes the threshold from
    short runs of frames sent in a row, for F1 `target_f1` against sending all (offload/sendless.py).
    With `max_kbps`, the JPEG quality, then the frame size, go down to keep the kilobits sent per second
    under it. `sent_frames`, `sent_bytes` and `skipped_frames` count what was sent and what was not.

    Args:
        url: `remote://HOST:PORT`, or `ws://HOST:PORT[/PATH]` / `wss://...`; a `?token=` in it is sent
            as `Authorization: Bearer`.
        fallback: the detector to use while the server is away; closed with this one.
        fallback_name: its name in logs (the config's key); default: its own.
        timeout: seconds to connect, and to wait for each answer.
        quality: the JPEG quality frames are sent at (1-100).
        token: the server's token, when it has one (wins over one in `url`).
        min_change: skip frames that changed less than this since the last one sent (0-255; 0: send all),
            or "auto".
        max_skip: with `min_change`, send at least every this many frames (at least 1).
        target_f1: with `min_change="auto"`, the F1 against sending all that the threshold keeps (0-1).
        max_kbps: the kilobits per second (of the wall clock) to send at most; None: no budget.

    Raises:
        EdgewatchError: a bad `url`, or a server that refuses this client for good: another protocol
            version, or a token it does not take. An unreachable server is no error: see `fallback`.

    Example:
        >>> detector = RemoteDetector("remote://10.0.0.5:8765", fallback=load_detector("street"))  # doctest: +SKIP
        >>> detector.detect(frame).xyxy, detector.in_use  # doctest: +SKIP
        (array([[ 12.,  40., 130., 300.]], dtype=float32), 'remote')
    """

    def __init__(
        self,
        url: str,
        fallback: Detector | None = None,
        fallback_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        quality: int = DEFAULT_QUALITY,
        token: str | None = None,
        min_change: Threshold = 0.0,
        max_skip: int = DEFAULT_MAX_SKIP,
        target_f1: float = DEFAULT_TARGET_F1,
        max_kbps: float | None = None,
    ) -> None:
        self.url, url_token = endpoint(url)
        if not timeout > 0:
            raise EdgewatchError(f"{url}: timeout must be more than 0 seconds", "e.g. timeout: 2")
        if not 1 <= quality <= 100:
            raise EdgewatchError(f"{url}: quality must be from 1 to 100", "e.g. quality: 90")
        if min_change != "auto" and not (isinstance(min_change, int | float) and 0 <= min_change <= 255):
            raise EdgewatchError(f"{url}: min_change must be from 0 to 255, or auto", "e.g. min_change: auto")
        if max_skip < 1:
            raise EdgewatchError(f"{url}: max_skip must be at least 1", "e.g. max_skip: 10")
        if not 0 < target_f1 <= 1:
            raise EdgewatchError(f"{url}: target_f1 must be more than 0 and at most 1", "e.g. target_f1: 0.9")
        if max_kbps is not None and not max_kbps > 0:
            raise EdgewatchError(f"{url}: max_kbps must be more than 0", "e.g. max_kbps: 2000")
        self.name = url.partition("?")[0]  # never the token
        self.token = token or url_token
        self.fallback = fallback
        self.fallback_name = fallback_name or (fallback.name if fallback is not None else None)
        self.timeout = timeout
        self.max_skip = max_skip
        self.send_less = SendLess(min_change, max_skip, target_f1)
        self.budget = Budget(max_kbps, quality)
        self.client = f"edgewatch {__version__} on {socket.gethostname()}"
        #: which detector answered the last frame: the server's, the fallback, or none
        self.in_use: InUse | None = None
        #: why the server stopped answering, at the last change away from it; None while it answers
        self.reason: str | None = None
        #: the server's model, once it answered a hello
        self.model: str | None = None
        #: this client's frames the server reported dropped (it sends one at a time, so it sees few)
        self.dropped = 0
        #: frames sent to the server, their JPEG bytes, and frames not sent for min_change
        self.sent_frames = 0
        self.sent_bytes = 0
        self.skipped_frames = 0
        self.labels = list(fallback.labels) if fallback is not None else []
        self.default_min_score = fallback.default_min_score if fallback is not None else UNKNOWN_MIN_SCORE
        self.default_threshold = fallback.default_threshold if fallback is not None else 0.0
        self._connection: ClientConnection | None = None
        self._max_side, self._max_bytes = MAX_SIDE, MAX_JPEG_BYTES
        self._frame = 0
        self._timeouts = 0
        self._retry_at = 0.0
        self._backoff = RETRY_FIRST_S
        self._problem = self._connect(first=True)
        self.send_less.min_score = self.default_min_score
        if self._connection is not None:
            self._use("remote")
        else:
            self._use("fallback" if fallback is not None else "none", self._problem)

    def detect(self, image: np.ndarray) -> sv.Detections:
        if self._connection is None and time.monotonic() >= self._retry_at:
            self._problem = self._connect()
        if self._connection is not None:
            moved = self.send_less.boxes(image)
            if moved is not None:
                self.skipped_frames += 1
                return moved
            found = self._ask(image)
            if found is not None:
                self._use("remote")
                self.send_less.answered(image, found)
                return copy.deepcopy(found) if self.send_less.active else found  # the pipeline sets ids on it
            self.send_less.reset()  # a frame the server left unanswered: the next is sent, whatever it looks like
        self._use("fallback" if self.fallback is not None else "none", self._problem)
        if self.fallback is not None:
            return self.fallback.detect(image)
        return make_detections(np.empty((0, 4)), np.empty(0), np.empty(0, np.int64), self.labels)

    @property
    def min_change(self) -> float:
        """The threshold in use: the one given, or the one `min_change="auto"` tuned."""
        return self.send_less.threshold

    @property
    def quality(self) -> int:
        """The JPEG quality frames are sent at now: the one given, or lower to keep `max_kbps`."""
        return self.budget.quality

    @property
    def scale(self) -> float:
        """How much smaller than the frame the picture sent is: 1.0 unless `max_kbps` made it smaller."""
        return self.budget.scale

    def close(self) -> None:
        self._disconnect()
        if self.fallback is not None:
            self.fallback.close()

    def _connect(self, first: bool = False) -> str | None:
        """Open the connection and say hello; what went wrong, or None. A refusal that waiting will
        not mend is an EdgewatchError at the start, and a problem like any other later."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            connection = connect(
                self.url, open_timeout=self.timeout, close_timeout=1, max_size=MAX_ANSWER_BYTES, compression=None,
                additional_headers=headers, user_agent_header=self.client,
            )  # fmt: skip
        except InvalidStatus as error:
            return self._refused(_http_refusal(error), first, "give the server's token: token: under the "
                                 "detector, or ?token= in its address")  # fmt: skip
        except (InvalidURI, InvalidHandshake) as error:
            return self._retry_later(f"{self.url} is no edgewatch server ({error})")
        except TimeoutError:
            return self._retry_later(f"the server did not answer within {self.timeout:g} s")
        except OSError as error:
            return self._retry_later(f"the server cannot be reached ({error.strerror or error})")
        try:
            connection.send(hello(self.client))
            welcome = read_welcome(connection.recv(timeout=self.timeout))
        except ProtocolError as error:
            connection.close()
            if error.code == CLOSE_VERSION:
                return self._refused(error.reason, first, "upgrade the older of the two")
            return self._retry_later(f"the server refused: {error.reason}")
        except ConnectionClosed as error:
            return self._retry_later(_closed(error))
        except (TimeoutError, OSError):
            connection.close()
            return self._retry_later(f"the server did not answer the hello within {self.timeout:g} s")
        self._connection = connection
        self.model = str(welcome.get("model", "?"))
        self.labels = [str(label) for label in welcome["labels"]]
        self._max_side = int(welcome.get("max_side", MAX_SIDE))
        self._max_bytes = int(welcome.get("max_bytes", MAX_JPEG_BYTES))
        if first:  # the pipeline reads these once, before its first frame
            self.default_min_score = float(welcome.get("min_score", UNKNOWN_MIN_SCORE))
            self.default_threshold = float(welcome.get("threshold", 0.0))
        self._backoff = RETRY_FIRST_S
        self._timeouts = 0
        return None

    def _refused(self, problem: str, first: bool, hint: str) -> str:
        if first:
            raise EdgewatchError(f"{self.name}: {problem}", hint)
        return self._retry_later(problem)

    def _retry_later(self, problem: str) -> str:
        self._disconnect()
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX_S)
        return problem

    def _disconnect(self) -> None:
        self.send_less.reset()  # the server's answer is sent for again once it is back
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except Exception:  # a connection already lost has nothing left to close
                log.debug("closing the connection to %s", self.name, exc_info=True)

    def _ask(self, image: np.ndarray) -> sv.Detections | None:
        """The server's boxes for `image`, or None (with `_problem` set) when it gave none in time."""
        assert self._connection is not None
        height, width = image.shape[:2]
        if max(width, height) > self._max_side:
            self._problem = f"frames of {width}x{height} are over the server's {self._max_side} pixels a side"
            return None
        scale = self.budget.scale
        sent = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )  # fmt: skip
        ok, jpeg = cv2.imencode(".jpg", sent, [cv2.IMWRITE_JPEG_QUALITY, self.budget.quality])
        if not ok:
            self._problem = "the frame could not be encoded as JPEG"
            return None
        if jpeg.size > self._max_bytes:
            self._problem = f"a frame of {jpeg.size} bytes is over the server's {self._max_bytes} (lower quality:)"
            return None
        self._frame += 1
        try:
            self._connection.send(pack_frame(self._frame, jpeg.tobytes()))
            self.sent_frames += 1
            self.sent_bytes += int(jpeg.size)
            self.budget.sent(time.monotonic(), int(jpeg.size))
            deadline = time.monotonic() + self.timeout
            while True:
                record = read_answer(self._connection.recv(timeout=max(0.0, deadline - time.monotonic())))
                self.dropped += int(record.get("dropped", 0))
                if record["frame"] == self._frame:
                    break  # else the late answer to a frame given up on
            detections = answer_detections(record)
            if sent is not image:  # the server answers in the pixels it was sent
                factor = np.array([width / sent.shape[1], height / sent.shape[0]] * 2, dtype=np.float32)
                detections.xyxy = (detections.xyxy * factor).astype(detections.xyxy.dtype)
        except TimeoutError:
            self._timeouts += 1
            self._problem = f"the server did not answer within {self.timeout:g} s"
            if self._timeouts >= TIMEOUTS_BEFORE_LOST:
                self._retry_later(f"the server left {self._timeouts} frames in a row unanswered")
            return None
        except ConnectionClosed as error:
            self._problem = self._retry_later(_closed(error))
            return None
        except ProtocolError as error:
            self._problem = self._retry_later(f"the server closed the connection: {error.reason}")
            return None
        except OSError as error:
            self._problem = self._retry_later(f"the connection was lost ({error.strerror or error})")
            return None
        self._timeouts = 0
        return detections

    def _use(self, state: InUse, problem: str | None = None) -> None:
        """Say once which detector answers, when that changes."""
        if state == self.in_use:
            return
        self.in_use = state
        self.reason = None if state == "remote" else problem
        if state == "remote":
            log.info("%s: the server's model %s answers", self.name, self.model)
        elif state == "fallback":
            log.warning("%s: %s; the fallback detector %s answers until it is back", self.name, problem,
                        self.fallback_name)  # fmt: skip
        else:
            log.warning("%s: %s; no boxes until it is back (a fallback: detector would answer meanwhile)",
                        self.name, problem)  # fmt: skip


def _http_refusal(error: InvalidStatus) -> str:
    """`401: a token is needed ...` from the server's JSON answer to the handshake."""
    response = error.response
    detail = ""
    with contextlib.suppress(ValueError, AttributeError):  # no JSON, or no object: the status says enough
        detail = str(json.loads(response.body or b"{}").get("detail", ""))
    return f"the server refused the connection: HTTP {response.status_code}{f' {detail}' if detail else ''}"


def _closed(error: ConnectionClosed) -> str:
    close = error.rcvd
    if close is None:
        return "the connection was lost"
    return f"the server closed the connection ({close.code}{f' {close.reason}' if close.reason else ''})"
