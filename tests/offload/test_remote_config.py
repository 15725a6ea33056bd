"""`detectors: {type: remote}` in the config: what it needs, and what is refused with the key's line."""

from __future__ import annotations

import pytest

from brokers import free_port
from edgewatch.app import named_detector
from edgewatch.config import parse_config
from edgewatch.errors import EdgewatchError

SITE = """\
cameras:
  gate: {source: "synthetic:street", detector: big}
detectors:
  big: {type: remote, url: "ws://10.0.0.5:8765", fallback: small, timeout: 2, quality: 80}
  small: {type: motion, min_area: 400}
"""


def test_a_remote_detector_names_its_server_and_fallback():
    config = parse_config(SITE)
    big = config.detectors["big"]
    assert big.options() == {"url": "ws://10.0.0.5:8765", "fallback": "small", "timeout": 2.0, "quality": 80}
    assert parse_config('cameras:\n  gate: {source: x.mp4, detector: "remote://10.0.0.5:8765"}\n')


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('url: "ws://10.0.0.5:8765", ', ""), "<config>:4: detectors.big.url: a detector of type remote needs url:"),
        (("ws://10.0.0.5:8765", "ws://10.0.0.5:x"), "<config>:4: detectors.big.url: bad server address ws://10.0.0.5:x"),
        (("fallback: small", "fallback: smal"), "<config>:4: detectors.big.fallback: unknown detector 'smal'; use one of small, hog"),
        (("fallback: small", "fallback: big"), "detectors.big.fallback: 'big' is remote too"),
        (("timeout: 2", "timeout: 0"), "detectors.big.timeout: Input should be greater than 0"),
        (("quality: 80", "quality: 101"), "detectors.big.quality: Input should be less than or equal to 100"),
        (("{type: motion,", "{type: motion, fallback: hog,"), "detectors.small: fallback: only for a detector of type remote"),
        (("detector: big", 'detector: "remote://10.0.0.5:port"'), "<config>:2: cameras.gate.detector: bad server address"),
    ],
    ids=["no-url", "bad-url", "unknown-fallback", "remote-fallback", "timeout", "quality", "not-remote", "camera-url"],
)  # fmt: skip
def test_a_bad_remote_detector_names_the_key_and_the_line(change: tuple[str, str], expected: str):
    with pytest.raises(EdgewatchError) as caught:
        parse_config(SITE.replace(*change))
    assert expected in str(caught.value)


def test_the_fallback_is_made_with_the_remote_detector_and_answers_while_the_server_is_away():
    config = parse_config(SITE.replace("ws://10.0.0.5:8765", f"ws://127.0.0.1:{free_port()}"))
    detector = named_detector(config, "big")
    try:
        assert detector.in_use == "fallback" and detector.fallback_name == "small"
        assert detector.labels == ["motion"] and detector.fallback.name == "motion"
    finally:
        detector.close()
