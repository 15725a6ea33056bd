import json
from pathlib import Path

import cv2
import pytest

from edgewatch import EdgewatchError
from edgewatch.sources.door import DoorScene
from edgewatch.sources.pets import PetsScene
from edgewatch.sources.synthetic_export import write_scene

COMMON = {"kind", "seed", "fps", "width", "height", "frame_count"}


def decoded_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    count, size = 0, (0, 0)
    while True:
        ok, image = capture.read()
        if not ok:
            break
        count, size = count + 1, (image.shape[1], image.shape[0])
    capture.release()
    return count, size


@pytest.mark.parametrize(("kind", "keys"), [("street", {"tracks", "line", "crossings"}),
                                            ("pets", {"tracks", "together"}), ("door", {"open_intervals"})])  # fmt: skip
def test_writes_a_video_and_its_truth(tmp_path: Path, kind, keys):
    video, truth_path = write_scene(kind, tmp_path / "out", seed=3, seconds=2)
    assert (video.name, truth_path.name) == (f"{kind}.mp4", f"{kind}.truth.json")
    assert decoded_frames(video) == (50, (640, 360))
    truth = json.loads(truth_path.read_text())
    assert set(truth) == COMMON | keys
    assert (truth["kind"], truth["seed"], truth["fps"], truth["frame_count"]) == (kind, 3, 25.0, 50)
    assert (truth["width"], truth["height"]) == (640, 360)


def test_pets_truth_has_every_box_and_every_meeting(tmp_path: Path):
    _, truth_path = write_scene("pets", tmp_path, seed=1, seconds=4)
    truth = json.loads(truth_path.read_text())
    scene = PetsScene(seed=1, seconds=4)
    assert set(truth["together"]) == {"cat+dog1", "cat+dog2", "dog1+dog2", "cat+dog1+dog2"}
    assert truth["together"]["cat+dog2"] == [list(pair) for pair in scene.together(["cat", "dog2"])]
    boxes = {(track["track_id"], row[0]): row[1:] for track in truth["tracks"] for row in track["boxes"]}
    expected = {(item.track_id, frame): item.box for frame in range(scene.frame_count) for item in scene.truth(frame)}
    assert boxes.keys() == expected.keys()
    assert all(abs(a - b) <= 0.01 for key, box in boxes.items() for a, b in zip(box, expected[key], strict=True))
    assert all(track["label"] in {"cat", "dog1", "dog2"} for track in truth["tracks"])


def test_street_and_door_truth(tmp_path: Path):
    street = json.loads(write_scene("street", tmp_path, seed=0, seconds=4)[1].read_text())
    assert street["line"] == {"start": [320.0, 0.0], "end": [320.0, 360.0]}
    assert all(set(track) >= {"track_id", "label", "first_frame", "last_frame"} for track in street["tracks"])
    assert all(crossing["direction"] in ("in", "out") for crossing in street["crossings"])
    door = json.loads(write_scene("door", tmp_path, seed=5, seconds=4)[1].read_text())
    assert door["open_intervals"] == [list(pair) for pair in DoorScene(seed=5, seconds=4).open_intervals()]


def test_unknown_kind(tmp_path: Path):
    with pytest.raises(EdgewatchError, match="unknown synthetic scene 'moon'"):
        write_scene("moon", tmp_path)
