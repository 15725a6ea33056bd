from pathlib import Path

import pytest

from edgewatch import EdgewatchError
from edgewatch.config import load_config, parse_config

GOOD = """
cameras:
  street:
    source: street.mp4
    fps: 10
    detector: moving
    min_score: 0.5
    labels: [person, car]
  cam0:
    source: 0
detectors:
  moving: {type: motion, min_area: 500}
"""


def test_a_good_config_is_read_with_defaults_filled_in():
    config = parse_config(GOOD)
    street = config.cameras["street"]
    assert (street.fps, street.stride, street.min_score, street.labels) == (10, 1, 0.5, ["person", "car"])
    assert config.cameras["cam0"].source == 0
    assert config.cameras["cam0"].detector == "hog"
    assert config.detectors["moving"].options() == {"min_area": 500}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("    labels:", "    lables:"), "<config>:8: unknown key 'lables' in cameras.street"),
        (GOOD.replace("fps: 10", "fps: -1"), "<config>:5: cameras.street.fps: Input should be greater than 0"),
        (
            GOOD.replace("type: motion", "type: yolo"),
            "<config>:12: detectors.moving.type: unknown detector type 'yolo'",
        ),
        (
            GOOD.replace("detector: moving", "detector: moved"),
            "<config>:6: cameras.street.detector: unknown detector 'moved'",
        ),
        (GOOD.replace("  street:", "  street cam:"), "<config>:3: cameras.street cam"),
        ("cameras: {}", "cameras: Dictionary should have at least 1 item"),
        ("- just a list", "must be a mapping"),
        ("cameras:\n  a:\n    source: [x\n", "<config>:4: malformed YAML"),
    ],
)
def test_errors_name_the_key_and_the_line(text: str, expected: str):
    with pytest.raises(EdgewatchError) as caught:
        parse_config(text)
    assert expected in str(caught.value)


def test_unknown_key_lists_the_allowed_ones():
    with pytest.raises(EdgewatchError) as caught:
        parse_config("cameras:\n  a: {source: x.mp4, mqtt: 1}\n")
    assert "allowed keys there: source, detector, fps" in caught.value.hint


def test_load_config_reads_a_file_and_names_it_in_errors(tmp_path: Path):
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n  a:\n    source: x.mp4\n    stride: 2\n    fps: 3\n")
    with pytest.raises(EdgewatchError, match=r"site.yaml:2: cameras.a: give fps or stride, not both"):
        load_config(path)
