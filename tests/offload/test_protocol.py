"""The offload protocol's messages, addresses and checks, without a server."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewatch.errors import EdgewatchError
from edgewatch.models.base import make_detections
from edgewatch.offload.address import endpoint, is_remote
from edgewatch.offload.protocol import (
    CLOSE_BAD_FRAME,
    CLOSE_BAD_HELLO,
    CLOSE_FRAME_TOO_BIG,
    CLOSE_VERSION,
    MAX_CLOSE_REASON,
    MAX_JPEG_BYTES,
    MAX_SIDE,
    ProtocolError,
    Times,
    answer,
    answer_detections,
    check_size,
    hello,
    jpeg_size,
    pack_frame,
    read_answer,
    read_hello,
    read_welcome,
    unpack_frame,
    welcome,
)
from edgewatch.pipeline.result import detections_json

SMALL_JPEG = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


@settings(max_examples=60, deadline=None)
@given(
    frame=st.integers(min_value=-(2**53), max_value=2**53),
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda key: key != "frame"), st.integers(), max_size=3
    ),
    body=st.binary(max_size=64),
)
def test_a_frame_message_round_trips(frame: int, extra: dict[str, int], body: bytes):
    data = SMALL_JPEG[:2] + body + SMALL_JPEG[-2:]
    header, jpeg = unpack_frame(pack_frame(frame, data, **extra))
    assert header == {"frame": frame, **extra}
    assert bytes(jpeg) == data


def _message(header: bytes, jpeg: bytes = SMALL_JPEG) -> bytes:
    return len(header).to_bytes(4, "big") + header + jpeg


@pytest.mark.parametrize(
    ("message", "code", "says"),
    [
        (b"\x00\x01", CLOSE_BAD_FRAME, "header's length in 4 bytes"),
        ((10**6).to_bytes(4, "big") + b"{}", CLOSE_BAD_FRAME, "header is 16384 bytes at most"),
        ((100).to_bytes(4, "big") + b'{"frame": 1}', CLOSE_BAD_FRAME, "shorter than its header length"),
        (_message(b"not json"), CLOSE_BAD_FRAME, 'integer "frame"'),
        (_message(b'{"frame": "7"}'), CLOSE_BAD_FRAME, 'integer "frame"'),
        (_message(b'{"frame": true}'), CLOSE_BAD_FRAME, 'integer "frame"'),
        (_message(b'{"frame": 1}', b"\x89PNG\r\n\x1a\n"), CLOSE_BAD_FRAME, "not a JPEG"),
        (_message(b'{"frame": 1}', SMALL_JPEG[: len(SMALL_JPEG) // 2]), CLOSE_BAD_FRAME, "truncated"),
        (_message(b'{"frame": 1}', b"\xff\xd8" + bytes(MAX_JPEG_BYTES)), CLOSE_FRAME_TOO_BIG, "8 MiB at most"),
    ],
    ids=["short", "huge-header", "cut-header", "not-json", "string-id", "bool-id", "png", "truncated", "too-big"],
)
def test_a_message_that_is_no_frame_names_why_and_its_close_code(message: bytes, code: int, says: str):
    with pytest.raises(ProtocolError) as caught:
        unpack_frame(message)
    assert caught.value.code == code and says in caught.value.reason


@pytest.mark.parametrize(("width", "height"), [(640, 360), (1, 1), (4096, 16), (333, 4097)])
@pytest.mark.parametrize("progressive", [False, True])
def test_the_size_is_read_from_the_jpeg_header_without_decoding(width: int, height: int, progressive: bool):
    image = np.full((height, width, 3), 128, np.uint8)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])[1].tobytes()
    assert jpeg_size(data) == (width, height)


def test_a_jpeg_without_a_size_and_a_picture_over_the_cap_are_refused():
    with pytest.raises(ProtocolError, match="no readable size"):
        jpeg_size(b"\xff\xd8\xff\xd9")
    with pytest.raises(ProtocolError) as caught:
        check_size(MAX_SIDE + 1, 10)
    assert caught.value.code == CLOSE_FRAME_TOO_BIG and "4096 pixels a side at most" in caught.value.reason
    check_size(MAX_SIDE, MAX_SIDE)


def test_the_hello_and_its_answer_name_the_version():
    assert read_hello(hello("cam-1")) == {"protocol": 1, "client": "cam-1"}
    with pytest.raises(ProtocolError) as caught:
        read_hello(json.dumps({"protocol": 2}))
    assert caught.value.code == CLOSE_VERSION
    assert "this server speaks protocol 1, the client asked for 2" in caught.value.reason
    for bad in (b'{"protocol": 1}', "[]", '{"protocol": "1"}', "hello", None):
        with pytest.raises(ProtocolError) as caught:
            read_hello(bad)
        assert caught.value.code == CLOSE_BAD_HELLO
    served = welcome("street", ["person", "car"], 8, 0.25, 0.7)
    assert read_welcome(json.dumps(served))["labels"] == ["person", "car"]
    with pytest.raises(ProtocolError, match="the server speaks protocol 2, this edgewatch speaks 1"):
        read_welcome(json.dumps({**served, "protocol": 2}))
    refusal = ProtocolError(CLOSE_VERSION, "this server speaks protocol 2").to_json()
    with pytest.raises(ProtocolError, match="this server speaks protocol 2") as caught:
        read_welcome(json.dumps(refusal))
    assert caught.value.code == CLOSE_VERSION


def test_a_close_reason_fits_a_close_frame():
    long = ProtocolError(CLOSE_BAD_FRAME, "é" * 200)
    assert len(long.close_reason.encode()) <= MAX_CLOSE_REASON and long.close_reason.endswith("...")
    assert long.to_json()["error"] == "é" * 200


def test_an_answer_holds_the_boxes_of_the_json_lines_and_turns_back_into_detections():
    detections = make_detections([[1, 2, 30, 40], [5.5, 6, 7, 8.25]], [0.9, 0.4], [1, 0], ["person", "car"])
    record = answer(3, 640, 360, detections, Times(1.0, 2.0, 3.0), dropped=2, batch=4)
    lines = detections_json(detections)
    assert record["detections"] == [{key: box[key] for key in ("label", "class_id", "score", "box")} for box in lines]
    assert (record["frame"], record["width"], record["height"], record["dropped"], record["batch"]) == (
        3,
        640,
        360,
        2,
        4,
    )
    assert record["times"] == {"decode_ms": 1.0, "queue_ms": 2.0, "model_ms": 3.0}
    back = answer_detections(read_answer(json.dumps(record)))
    np.testing.assert_allclose(back.xyxy, detections.xyxy)
    np.testing.assert_allclose(back.confidence, detections.confidence, atol=1e-4)
    assert back.class_id.tolist() == [1, 0] and back.data["class_name"].tolist() == ["car", "person"]
    empty = answer_detections(read_answer(json.dumps(answer(4, 10, 10, detections[[]], Times(0, 0, 0), 0))))
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4)


def test_a_classification_travels_in_the_answer():
    detections = make_detections(np.empty((0, 4)), [], [], ["closed", "open"])
    detections.metadata["classification"] = {"label": "open", "score": 0.97}
    record = answer(1, 64, 64, detections, Times(0, 0, 0), 0)
    assert answer_detections(record).metadata["classification"] == {"label": "open", "score": 0.97}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("remote://10.0.0.5:8765", ("ws://10.0.0.5:8765/v1/detect", None)),
        ("remote://gpu", ("ws://gpu:8765/v1/detect", None)),
        ("ws://10.0.0.5:8765", ("ws://10.0.0.5:8765/v1/detect", None)),
        ("wss://gpu.example/edge/v1?token=s3cret&x=1", ("wss://gpu.example/edge/v1?x=1", "s3cret")),
        ("ws://[::1]:9000/", ("ws://[::1]:9000/v1/detect", None)),
    ],
)
def test_a_server_address_stands_for_its_websocket_url(url: str, expected: tuple[str, str | None]):
    assert is_remote(url)
    assert endpoint(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("remote://", "names no host"),
        ("remote://gpu:port", "the port must be a number from 1 to 65535"),
        ("remote://gpu:0", "the port must be a number from 1 to 65535"),
        ("remote://gpu:8765/v1", "remote:// takes HOST:PORT only"),
        ("ws://user@gpu:8765?token=s3cret", "no user name"),
    ],
)
def test_a_bad_server_address_says_what_is_wrong_and_never_the_token(url: str, says: str):
    with pytest.raises(EdgewatchError) as caught:
        endpoint(url)
    assert says in caught.value.message and "s3cret" not in str(caught.value)
    assert not is_remote("street") and not is_remote("http://gpu:8765") and not is_remote("ws:gpu")
