"""The offload protocol, version 1 (docs/offload.md): the hello, a frame, an answer.

One WebSocket at `/v1/detect` (`address.PATH`). Text messages are JSON. The client speaks first with
a hello, the server answers with what it serves; then each frame is one binary message (a 4-byte
big-endian header length, a UTF-8 JSON header, the JPEG bytes) and each answer one JSON text. Anything
the server cannot take ends the connection with one of the close codes below and a one-line reason.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import supervision as sv

from edgewatch.pipeline.result import detections_json

PROTOCOL = 1

MAX_HEADER_BYTES = 16 * 1024
MAX_JPEG_BYTES = 8 * 1024 * 1024
MAX_MESSAGE_BYTES = 4 + MAX_HEADER_BYTES + MAX_JPEG_BYTES
#: the longest side of a frame, in pixels; read from the JPEG's own header before it is decoded
MAX_SIDE = 4096

# The WebSocket standard's codes where one fits, ours (4000-4999, for applications) where none does.
CLOSE_TOO_BIG = 1009  # a message over MAX_MESSAGE_BYTES: the WebSocket layer closes before reading it
CLOSE_SERVER_STOPS = 1012  # "service restart": what uvicorn sends open connections when it stops
CLOSE_BUSY = 1013  # "try again later": the server has as many clients as it takes
CLOSE_VERSION = 4000  # the hello asks for a protocol version this side does not speak
CLOSE_BAD_HELLO = 4001  # the first message is no hello
CLOSE_BAD_FRAME = 4002  # a frame message that is not one: framing, header, not a JPEG, truncated
CLOSE_FRAME_TOO_BIG = 4003  # a JPEG over MAX_JPEG_BYTES, or a picture over MAX_SIDE
CLOSE_NO_STREAM = 4004  # /v1/streams/NAME names no stream of this server
MAX_CLOSE_REASON = 123  # bytes: a close frame holds 125, two of them the code

_LENGTH = struct.Struct(">I")
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
# start-of-frame markers, which carry the picture's size: C0-CF but DHT (C4), JPG (C8) and DAC (CC)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ProtocolError(Exception):
    """A message the protocol does not allow, with the close code and the reason that end the connection.

    Example:
        >>> error = ProtocolError(CLOSE_BAD_FRAME, "the JPEG is truncated")
        >>> error.code, error.close_reason
        (4002, 'the JPEG is truncated')
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @property
    def close_reason(self) -> str:
        """The reason, cut to what a close frame holds."""
        encoded = self.reason.encode()
        if len(encoded) <= MAX_CLOSE_REASON:
            return self.reason
        return encoded[: MAX_CLOSE_REASON - 3].decode(errors="ignore") + "..."

    def to_json(self) -> dict[str, Any]:
        """The error message the server sends before it closes."""
        return {"error": self.reason, "code": self.code, "protocol": PROTOCOL}


def hello(client: str) -> str:
    """The client's first message."""
    return json.dumps({"protocol": PROTOCOL, "client": client})


def read_hello(message: str | bytes | None) -> dict[str, Any]:
    """The client's hello, checked.

    Raises:
        ProtocolError: CLOSE_BAD_HELLO for anything but a JSON object with a protocol number,
            CLOSE_VERSION for another version than PROTOCOL.
    """
    if not isinstance(message, str):
        raise ProtocolError(CLOSE_BAD_HELLO, f'the first message must be a JSON text hello: {{"protocol": {PROTOCOL}}}')
    try:
        greeting = json.loads(message)
    except ValueError:
        greeting = None
    if not isinstance(greeting, dict) or not isinstance(greeting.get("protocol"), int):
        raise ProtocolError(CLOSE_BAD_HELLO, f'the hello must be a JSON object such as {{"protocol": {PROTOCOL}}}')
    if greeting["protocol"] != PROTOCOL:
        raise ProtocolError(
            CLOSE_VERSION,
            f"this server speaks protocol {PROTOCOL}, the client asked for {greeting['protocol']}: "
            "run the same edgewatch version on both ends",
        )
    return greeting


def welcome(model: str, labels: list[str], max_batch: int, min_score: float, threshold: float) -> dict[str, Any]:
    """The server's answer to a hello: what it serves and what it takes."""
    return {
        "protocol": PROTOCOL,
        "model": model,
        "labels": list(labels),
        "max_batch": max_batch,
        "min_score": min_score,
        "threshold": threshold,
        "max_bytes": MAX_JPEG_BYTES,
        "max_side": MAX_SIDE,
    }


def read_welcome(message: str | bytes) -> dict[str, Any]:
    """The server's answer to the hello, checked.

    Raises:
        ProtocolError: the server refused the hello (its error, with its code), speaks another
            version (CLOSE_VERSION), or answered something else (CLOSE_BAD_HELLO).
    """
    answer = _json_object(message)
    if answer is None:
        raise ProtocolError(CLOSE_BAD_HELLO, "the server's answer to the hello is no JSON object")
    if "error" in answer:
        raise ProtocolError(int(answer.get("code", CLOSE_BAD_HELLO)), str(answer["error"]))
    if answer.get("protocol") != PROTOCOL:
        raise ProtocolError(
            CLOSE_VERSION,
            f"the server speaks protocol {answer.get('protocol')}, this edgewatch speaks {PROTOCOL}: "
            "run the same edgewatch version on both ends",
        )
    if not isinstance(answer.get("labels"), list):
        raise ProtocolError(CLOSE_BAD_HELLO, "the server's answer to the hello names no labels")
    return answer


def pack_frame(frame: int, jpeg: bytes, **header: Any) -> bytes:
    """One frame message: the header's length, the header, the JPEG.

    Example:
        >>> unpack_frame(pack_frame(7, b"\\xff\\xd8...\\xff\\xd9"))[0]
        {'frame': 7}
    """
    encoded = json.dumps({"frame": frame, **header}).encode()
    return _LENGTH.pack(len(encoded)) + encoded + jpeg


def unpack_frame(message: bytes) -> tuple[dict[str, Any], memoryview]:
    """The header and the JPEG bytes of a frame message; the JPEG is only checked to start and end as
    one does (a truncated file lacks its end marker), and to be under MAX_JPEG_BYTES.

    Raises:
        ProtocolError: CLOSE_BAD_FRAME or CLOSE_FRAME_TOO_BIG.
    """
    if len(message) < _LENGTH.size:
        raise ProtocolError(CLOSE_BAD_FRAME, "a frame message starts with its header's length in 4 bytes")
    (length,) = _LENGTH.unpack_from(message)
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(
            CLOSE_BAD_FRAME, f"a frame's header is {MAX_HEADER_BYTES} bytes at most (its length: the first 4 bytes)"
        )
    if _LENGTH.size + length > len(message):
        raise ProtocolError(CLOSE_BAD_FRAME, "the frame message is shorter than its header length says")
    header = _json_object(bytes(message[_LENGTH.size : _LENGTH.size + length]))
    if header is None or type(header.get("frame")) is not int:
        raise ProtocolError(CLOSE_BAD_FRAME, 'a frame\'s header must be a JSON object with an integer "frame"')
    jpeg = memoryview(message)[_LENGTH.size + length :]
    if len(jpeg) > MAX_JPEG_BYTES:
        raise ProtocolError(CLOSE_FRAME_TOO_BIG, f"a frame's JPEG is {MAX_JPEG_BYTES // (1024 * 1024)} MiB at most")
    if jpeg[:2] != _JPEG_START:
        raise ProtocolError(CLOSE_BAD_FRAME, "the frame is not a JPEG")
    if jpeg[-2:] != _JPEG_END:
        raise ProtocolError(CLOSE_BAD_FRAME, "the JPEG is truncated: it lacks its end marker")
    return header, jpeg


def jpeg_size(jpeg: bytes | memoryview) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment, without decoding it: a small file can
    hold a picture of 65535×65535, whose pixels would fill the memory before they are refused.

    Raises:
        ProtocolError: CLOSE_BAD_FRAME where no size can be found.

    Example:
        >>> import cv2, numpy as np
        >>> jpeg_size(cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8))[1].tobytes())
        (30, 20)
    """
    data = memoryview(jpeg)
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill bytes before a marker
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack_from(">H", data, at + 2)
        if marker in _SOF_MARKERS:
            if at + 9 > len(data) or length < 7:
                break
            height, width = struct.unpack_from(">HH", data, at + 5)
            return width, height
        if marker == 0xDA:  # start of scan: compressed data follows, and no size came before it
            break
        at += 2 + length
    raise ProtocolError(CLOSE_BAD_FRAME, "the JPEG has no readable size (no start-of-frame segment)")


def check_size(width: int, height: int) -> None:
    """Raises ProtocolError (CLOSE_FRAME_TOO_BIG) for a picture over MAX_SIDE, CLOSE_BAD_FRAME for an empty one."""
    if width == 0 or height == 0:
        raise ProtocolError(CLOSE_BAD_FRAME, "the JPEG's picture is empty")
    if max(width, height) > MAX_SIDE:
        raise ProtocolError(
            CLOSE_FRAME_TOO_BIG, f"a frame is {MAX_SIDE} pixels a side at most, this one {width}x{height}"
        )


@dataclass(frozen=True, slots=True)
class Times:
    """Where a frame's time on the server went, in milliseconds."""

    decode_ms: float
    queue_ms: float
    model_ms: float


def answer(
    frame: int, width: int, height: int, detections: sv.Detections, times: Times, dropped: int, batch: int = 1
) -> dict[str, Any]:
    """The server's answer for one frame: the boxes as in the per-frame JSON lines (no track ids: the
    edge tracks), where the time went, how many of the client's frames were dropped since its last
    answer, and how many frames (of as many clients) the model call that answered it took."""
    boxes = [{key: value for key, value in box.items() if key != "track_id"} for box in detections_json(detections)]
    record: dict[str, Any] = {"frame": frame, "width": width, "height": height, "detections": boxes}
    classification = detections.metadata.get("classification")
    if classification is not None:
        record["classification"] = {"label": classification["label"], "score": round(classification["score"], 4)}
    record["times"] = {
        "decode_ms": round(times.decode_ms, 2),
        "queue_ms": round(times.queue_ms, 2),
        "model_ms": round(times.model_ms, 2),
    }
    record["dropped"] = dropped
    record["batch"] = batch
    return record


def read_answer(message: str | bytes) -> dict[str, Any]:
    """An answer from the server, checked enough to be turned into detections.

    Raises:
        ProtocolError: the server's error message (with its code), or no answer (CLOSE_BAD_FRAME).
    """
    record = _json_object(message)
    if record is None:
        raise ProtocolError(CLOSE_BAD_FRAME, "the server's answer is no JSON object")
    if "error" in record:
        raise ProtocolError(int(record.get("code", CLOSE_BAD_FRAME)), str(record["error"]))
    if type(record.get("frame")) is not int or not isinstance(record.get("detections"), list):
        raise ProtocolError(CLOSE_BAD_FRAME, "the server's answer has no frame number or detections")
    return record


def answer_detections(record: dict[str, Any]) -> sv.Detections:
    """The `sv.Detections` of an answer (xyxy, confidence, class_id, data["class_name"]).

    Raises:
        ProtocolError: CLOSE_BAD_FRAME when a box is malformed.
    """
    boxes = record["detections"]
    try:
        xyxy = np.array([box["box"] for box in boxes], dtype=np.float32).reshape(-1, 4)
        scores = np.array([box["score"] for box in boxes], dtype=np.float32)
        class_ids = np.array([box["class_id"] for box in boxes], dtype=np.int64)
        names = np.array([str(box["label"]) for box in boxes], dtype=str)
    except (KeyError, TypeError, ValueError):
        raise ProtocolError(CLOSE_BAD_FRAME, "the server's answer holds a malformed box") from None
    detections = sv.Detections(xyxy=xyxy, confidence=scores, class_id=class_ids, data={"class_name": names})
    classification = record.get("classification")
    if isinstance(classification, dict) and "label" in classification:
        detections.metadata["classification"] = {
            "label": str(classification["label"]),
            "score": float(classification.get("score", 0.0)),
        }
    return detections


def _json_object(message: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(message)
    except ValueError:  # UnicodeDecodeError is one
        return None
    return value if isinstance(value, dict) else None
