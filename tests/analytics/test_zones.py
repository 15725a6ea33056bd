"""Zones: membership, visits with dwell times, occupancy, and no flicker on the edge."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewatch.analytics.zones import ZoneMonitor
from edgewatch.config import ZoneConfig
from timelines import FPS, analytics, boxes, frame, moving_box, of_type, run

DOORWAY = {"polygon": [[200, 100], [400, 100], [400, 300], [200, 300]]}


def walk(start, step, frames, label="person"):
    return [boxes((label, box)) for box in moving_box(start, step, frames)]


def test_walking_through_a_zone_enters_once_and_exits_once_with_the_time_spent_inside():
    # bottom centre x = 10 + 4 i: inside [200, 400] for i in 48..97
    camera = analytics(zones={"doorway": DOORWAY})
    events = run(camera, walk((0, 180), (4, 0), 150))
    zone = of_type(events, "zone")
    assert [(event["phase"], event["track_id"]) for event in zone] == [("enter", 1), ("exit", 1)]
    assert zone[0]["time"] == pytest.approx(48 / FPS, abs=0.05)
    assert zone[1]["time"] == pytest.approx(98 / FPS, abs=0.05)
    assert zone[1]["dwell"] == pytest.approx(50 / FPS, abs=0.05)
    stats = camera.stats()["zones"]["doorway"]
    assert stats == {"occupancy": 0, "labels": {}, "max_occupancy": 1, "visits": 1}


def test_a_box_wobbling_on_the_edge_does_not_flicker_in_and_out():
    timeline = walk((0, 180), (4, 0), 56)  # inside from frame 48; ends at bottom centre x = 230
    for index in range(60):  # then wobbles 3 px either side of the edge x = 200, alternating every frame
        x = 190 + (3 if index % 2 else -3)
        timeline.append(boxes(("person", (x, 180, x + 20, 240))))
    events = run(analytics(zones={"doorway": DOORWAY}), timeline)
    assert [event["phase"] for event in of_type(events, "zone")] == ["enter", "exit"]  # exit: at the end


def test_occupancy_counts_who_is_inside_now_and_the_peak():
    camera = analytics(zones={"doorway": DOORWAY})
    inside = boxes(("person", (250, 150, 270, 210)), ("person", (330, 150, 350, 210)), ("car", (20, 250, 120, 290)))
    for index in range(40):
        camera.update(*_frame_and(index, inside))
    stats = camera.stats()["zones"]["doorway"]
    assert stats["occupancy"] == 2 and stats["labels"] == {"person": 2} and stats["max_occupancy"] == 2


def test_an_object_that_ends_inside_leaves_the_zone():
    camera = analytics(zones={"doorway": DOORWAY})
    timeline = [boxes(("person", (250, 150, 270, 210)))] * 30 + [boxes()] * 80  # vanishes inside
    events = run(camera, timeline)
    zone = of_type(events, "zone")
    assert [event["phase"] for event in zone] == ["enter", "exit"]
    assert zone[1]["time"] == pytest.approx(29 / FPS)


def test_zone_labels_limit_who_is_watched():
    zone = {**DOORWAY, "labels": ["car"]}
    events = run(analytics(zones={"doorway": zone}), walk((0, 180), (4, 0), 150))
    assert of_type(events, "zone") == []


def _frame_and(index, detections):
    return frame(index), detections


@st.composite
def convex_polygons(draw):
    points = draw(st.lists(st.tuples(st.floats(0, 640), st.floats(0, 360)), min_size=3, max_size=8))
    hull = cv2.convexHull(np.array(points, np.float32)).reshape(-1, 2)
    area = cv2.contourArea(hull)
    if len(hull) < 3 or area < 50:
        return draw(st.nothing())
    return hull


@settings(max_examples=200, deadline=None)
@given(polygon=convex_polygons(), x=st.floats(0, 640), y=st.floats(0, 360))
def test_membership_agrees_with_the_half_planes_of_a_convex_polygon(polygon, x, y):
    zone = ZoneMonitor("z", ZoneConfig(polygon=[tuple(map(float, p)) for p in polygon]), 640, 360)
    edges = np.roll(zone.polygon, -1, axis=0) - zone.polygon
    offsets = np.array([x, y], np.float32) - zone.polygon
    cross = edges[:, 0] * offsets[:, 1] - edges[:, 1] * offsets[:, 0]
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    if np.any(np.abs(cross) / lengths < 1e-2):
        return  # on an edge (to float precision): either answer is right
    inside = bool(np.all(cross > 0) or np.all(cross < 0))
    assert zone.contains(np.array([x, y])) == inside


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.floats(-15, 15), st.floats(-15, 15)), min_size=5, max_size=80))
def test_visits_alternate_enter_and_exit_and_occupancy_matches(steps):
    camera = analytics(zones={"doorway": DOORWAY}, tracking={"confirm_frames": 1})
    x, y, timeline = 300.0, 150.0, []
    for dx, dy in steps:
        x, y = float(np.clip(x + dx, 0, 600)), float(np.clip(y + dy, 0, 290))
        timeline.append(boxes(("person", (x, y, x + 20, y + 60))))
    events = []
    for index, detections in enumerate(timeline):
        events += camera.update(*_frame_and(index, detections)).events
    phases = [event["phase"] for event in of_type(events, "zone")]
    assert all(a != b for a, b in itertools.pairwise(phases))
    assert phases[:1] in ([], ["enter"])
    assert camera.stats()["zones"]["doorway"]["occupancy"] == (1 if phases and phases[-1] == "enter" else 0)
