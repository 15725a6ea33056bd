"""Counting lines: direction convention, hysteresis, and the failures users of other tools report."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewatch.analytics.lines import LineCounter
from edgewatch.analytics.tracking import TrackedObject
from edgewatch.config import LineConfig
from timelines import analytics, boxes, frame, moving_box, of_type, run

VERTICAL = {"points": [[300, 0], [300, 360]]}  # walked top to bottom: its left-hand side is the right


def crossings(events):
    return [(event["direction"], event["label"], event["track_id"]) for event in of_type(events, "line_crossing")]


def walk(label, start, step, frames, size=(20.0, 60.0)):
    return [boxes((label, box)) for box in moving_box(start, step, frames, size)]


def test_left_to_right_across_a_line_drawn_downwards_is_in_and_the_reverse_out():
    events = run(analytics(lines={"gate": VERTICAL}), walk("person", (200, 150), (4, 0), 60))
    assert crossings(events) == [("in", "person", 1)]
    events = run(analytics(lines={"gate": {"points": [[300, 360], [300, 0]]}}), walk("person", (200, 150), (4, 0), 60))
    assert crossings(events) == [("out", "person", 1)]


def test_moving_down_across_a_line_drawn_left_to_right_is_out():
    line = {"points": [[0, 200], [640, 200]]}
    events = run(analytics(lines={"kerb": line}), walk("person", (300, 60), (0, 4), 40))
    assert crossings(events) == [("out", "person", 1)]


def test_fractions_of_the_frame_work_like_pixels():
    events = run(analytics(lines={"gate": {"points": [[0.5, 0], [0.5, 1]]}}), walk("person", (250, 150), (4, 0), 40))
    assert crossings(events) == [("in", "person", 1)]


def test_counts_when_the_bottom_centre_crosses_though_the_box_straddles_the_line():
    # A tall box on a horizontal line: its top never crosses (the "all four corners" tools miss it).
    line = {"points": [[640, 200], [0, 200]]}
    timeline = walk("person", (300, 0), (0, 2), 40, size=(30, 180))  # bottom 180 → 258, top 0 → 78
    assert crossings(run(analytics(lines={"kerb": line}), timeline)) == [("in", "person", 1)]
    top = {**line, "anchor": "top_center"}
    assert crossings(run(analytics(lines={"kerb": top}), timeline)) == []


def test_a_box_jittering_on_the_line_counts_once():
    rng = np.random.default_rng(0)
    timeline = walk("person", (200, 150), (4, 0), 25)  # bottom centre reaches x = 306
    for _ in range(50):  # then wobbles ±1.5 px about x = 300 (margin 2 px)
        x = 290 + rng.uniform(-1.5, 1.5)
        timeline.append(boxes(("person", (x, 150 + 0, x + 20, 210))))
    timeline += walk("person", (290, 150), (4, 0), 20)
    assert crossings(run(analytics(lines={"gate": VERTICAL}), timeline)) == [("in", "person", 1)]


def test_crossing_and_coming_back_counts_in_then_out():
    timeline = walk("person", (240, 150), (3, 0), 30) + walk("person", (330, 150), (-3, 0), 40)
    camera = analytics(lines={"gate": VERTICAL})
    assert crossings(run(camera, timeline)) == [("in", "person", 1), ("out", "person", 1)]
    assert camera.stats()["lines"]["gate"]["labels"] == {"person": {"in": 1, "out": 1}}


def test_unconfirmed_tracks_never_count():
    # two frames either side of the line: never confirmed (3 frames), so never an object
    timeline = [boxes(("person", (280, 150, 300, 210))), boxes(("person", (300, 150, 320, 210))), boxes()]
    camera = analytics(lines={"gate": VERTICAL})
    events = run(camera, timeline)
    assert crossings(events) == [] and camera.stats()["unique"] == {}


def test_lost_for_two_frames_near_the_line_and_seen_past_it_still_counts():
    before = walk("person", (230, 150), (3, 0), 20)  # bottom centre ends at x = 297
    after = walk("person", (299, 150), (3, 0), 20)  # first seen again at x = 309
    events = run(analytics(lines={"gate": VERTICAL}), [*before, boxes(), boxes(), *after])
    assert crossings(events) == [("in", "person", 1)]


def test_people_crossing_side_by_side_each_count():
    timeline = []
    for index in range(50):
        x = 200 + 4 * index
        timeline.append(boxes(*(("person", (x, y, x + 20, y + 60)) for y in (20, 120, 220))))
    events = run(analytics(lines={"gate": VERTICAL}), timeline)
    assert sorted(crossings(events)) == [("in", "person", 1), ("in", "person", 2), ("in", "person", 3)]


def test_passing_beyond_the_end_of_the_line_does_not_count():
    short = {"points": [[300, 0], [300, 100]]}
    assert crossings(run(analytics(lines={"gate": short}), walk("person", (200, 150), (4, 0), 60))) == []


def test_labels_filter_what_a_line_counts():
    line = {**VERTICAL, "labels": ["car"]}
    timeline = [
        boxes(("person", person), ("car", car))
        for person, car in zip(
            moving_box((200, 40), (4, 0), 60), moving_box((150, 200), (5, 0), 60, (80, 40)), strict=True
        )
    ]
    assert [
        (direction, label) for direction, label, _ in crossings(run(analytics(lines={"gate": line}), timeline))
    ] == [("in", "car")]


def _object(box) -> TrackedObject:
    box = np.asarray(box, float)
    return TrackedObject(1, "person", 0, box, box, 0.0, 0.0, None, None, 0.9, 0, box)


@settings(max_examples=150, deadline=None)
@given(
    angle=st.floats(0, 2 * math.pi),
    steps=st.lists(st.floats(-12, 12), min_size=2, max_size=60),
)
def test_crossings_alternate_and_follow_every_sure_change_of_side(angle, steps):
    """For any line orientation and any walk across it: a crossing is counted exactly when the anchor
    is found more than `margin` past the line on the other side, and crossings alternate in / out."""
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    centre = np.array([320.0, 180.0])
    line = LineCounter(
        "l", LineConfig(points=(tuple(centre - 1e4 * direction), tuple(centre + 1e4 * direction))), 640, 360
    )
    item = _object((0, 0, 0, 0))
    offset, expected, side, directions = 0.0, 0, 0, []
    for step in steps:
        offset += step
        anchor = centre + offset * normal  # a zero-size box: every anchor is this point
        item.box = np.array([*anchor, *anchor])
        found = line.update([item], frame(0))
        distance = float(line.signed_distance(anchor)[0])
        if abs(distance) > line.config.margin:
            new_side = 1 if distance > 0 else -1
            expected += side != 0 and new_side != side
            side = new_side
        directions += [crossing.direction for crossing in found]
    assert len(directions) == expected
    assert all(a != b for a, b in itertools.pairwise(directions))
