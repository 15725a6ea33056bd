import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from edgewatch import EdgewatchError, open_source
from edgewatch.sources.synthetic import StreetScene, SyntheticSource


def test_same_seed_same_pixels_other_seed_other_scene():
    a, b, c = StreetScene(seed=4), StreetScene(seed=4), StreetScene(seed=5)
    assert np.array_equal(a.render(100)[0], b.render(100)[0])
    assert a.render(100)[1] == b.render(100)[1]
    assert not np.array_equal(a.render(100)[0], c.render(100)[0])


def test_truth_boxes_cover_what_was_drawn():
    scene = StreetScene(seed=2, people=0, cars=3)
    empty = StreetScene(seed=2, people=0, cars=0)
    for frame in range(0, scene.frame_count, 25):
        image, truth = scene.render(frame)
        background, _ = empty.render(frame)
        changed = np.abs(image.astype(int) - background.astype(int)).max(axis=2) > 20
        covered = np.zeros_like(changed)
        for item in truth:
            x1, y1, x2, y2 = (round(v) for v in item.box)
            covered[max(0, y1 - 1) : y2 + 1, max(0, x1 - 1) : x2 + 1] = True
        assert not (changed & ~covered).any(), f"pixels drawn outside every truth box in frame {frame}"


def test_objects_appear_on_their_entry_side_and_leave_by_their_exit():
    scene = StreetScene(seed=3, seconds=40)
    for actor in scene.actors:
        if actor.last_frame >= scene.frame_count:
            continue  # still on screen when the scene ends
        boxes = [item.box for frame in range(actor.first_frame, actor.last_frame + 1)
                 for item in scene.render(frame)[1] if item.track_id == actor.track_id]  # fmt: skip
        if not boxes:
            continue
        edge = {"left": lambda b: b[0] == 0, "right": lambda b: b[2] == scene.width,
                "top": lambda b: b[1] == 0, "bottom": lambda b: b[3] == scene.height}  # fmt: skip
        assert edge[actor.entered](boxes[0]), (actor, boxes[0])
        assert edge[actor.exited](boxes[-1]), (actor, boxes[-1])


def test_the_post_hides_what_passes_behind_it():
    scene = StreetScene(seed=1)
    hidden = [item for frame in range(scene.frame_count) for item in scene.render(frame)[1] if item.visible < 1]
    assert hidden, "some object passes behind the post"
    assert min(item.visible for item in hidden) < 0.9


def test_cars_in_one_lane_never_overlap():
    scene = StreetScene(seed=6, cars=10, people=0, seconds=60)
    for frame in range(0, scene.frame_count, 5):
        boxes = sorted((item.box for item in scene.render(frame)[1]), key=lambda box: box[1])
        for a, b in pairwise(boxes):
            same_lane = a[1] == b[1]
            assert not (same_lane and a[0] < b[2] and b[0] < a[2]), (frame, a, b)


def test_stop_and_go_objects_stand_still_for_a_while():
    scene = StreetScene(seed=0, seconds=30)
    stopper = next(actor for actor in scene.actors if actor.pause_frames)
    corners = [stopper.corner(frame) for frame in range(stopper.first_frame, stopper.last_frame + 1)]
    still = sum(1 for a, b in pairwise(corners) if a == b)
    assert still >= stopper.pause_frames - 1


def test_synthetic_source_through_the_command(run_cli, tmp_path: Path):
    done = run_cli("run", "--source", "synthetic:street?seed=2&seconds=2", "--detector", "motion", "--json", "s.jsonl")
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(lines) == 50 and (lines[0]["width"], lines[0]["height"]) == (640, 360)


def test_synthetic_source_spec_errors():
    assert isinstance(open_source("synthetic:street?seconds=1"), SyntheticSource)
    with pytest.raises(EdgewatchError, match="unknown synthetic scene 'moon'"):
        open_source("synthetic:moon")
    with pytest.raises(EdgewatchError, match="unknown synthetic scene option 'speed'"):
        open_source("synthetic:street?speed=3")
