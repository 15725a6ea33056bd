"""Objects from tracks: believed or thrown out, counted once however they flicker or hide, with the
sides they came and went by."""

from __future__ import annotations

import numpy as np
import pytest

from edgewatch.analytics.filters import DetectionFilter
from edgewatch.config import FilterConfig
from timelines import FPS, analytics, boxes, moving_box, of_type, run


def objects(events, phase):
    return [event for event in of_type(events, "object") if event["phase"] == phase]


def test_filters_drop_boxes_by_label_score_area_and_shape():
    found = boxes(
        ("person", (0, 0, 20, 60)),  # 1200 px², tall
        ("person", (0, 0, 4, 10)),  # too small (40 px²)
        ("person", (0, 0, 60, 20)),  # lying down: too wide for a person
        ("car", (0, 0, 300, 300)),  # more than a third of the 640×360 frame
        ("car", (0, 0, 100, 40)),
    )
    keep = DetectionFilter(
        {
            "person": FilterConfig(min_area=100, max_ratio=1.0),
            "car": FilterConfig(max_area=0.3, min_score=0.5),
        },
        min_score=0.3,
    )(found, 640, 360)
    assert keep.xyxy.tolist() == [[0, 0, 20, 60], [0, 0, 100, 40]]
    weak_car = boxes(("car", (0, 0, 100, 40)), score=0.4)
    assert len(DetectionFilter({"car": FilterConfig(min_score=0.5)}, min_score=0.3)(weak_car, 640, 360)) == 0
    assert len(DetectionFilter({}, min_score=0.3)(weak_car, 640, 360)) == 1


def scored_walk(scores, start=(0.0, 150.0), step=(4.0, 0.0)):
    return [
        boxes(("person", box), score=score)
        for box, score in zip(moving_box(start, step, len(scores)), scores, strict=True)
    ]


def test_a_track_of_weak_boxes_is_never_an_object():
    camera = analytics(threshold=0.7)
    events = run(camera, scored_walk([0.55] * 100))
    assert objects(events, "start") == [] and camera.stats()["unique"] == {}


def test_a_track_counts_once_the_median_of_its_recent_scores_passes_the_threshold():
    camera = analytics(threshold=0.7)
    events = run(camera, scored_walk([0.5] * 20 + [0.9] * 40 + [0.5] * 40))
    started = objects(events, "start")
    assert len(started) == 1 and len(objects(events, "end")) == 1  # and never again when scores sag
    assert camera.stats()["unique"] == {"person": 1}


def test_a_parked_car_with_flickering_detections_is_one_object_without_an_event_flood():
    rng = np.random.default_rng(3)
    parked = (300.0, 200.0, 400.0, 250.0)
    timeline = [boxes(("car", parked)) if rng.random() > 0.3 else boxes() for _ in range(int(20 * FPS))]
    camera = analytics()
    events = run(camera, timeline)
    assert [(event["phase"], event["entered"]) for event in of_type(events, "object")] == [
        ("start", "inside"),
        ("end", "inside"),
    ]
    assert objects(events, "end")[0]["exited"] is None  # still parked when the input ended
    assert camera.stats()["unique"] == {"car": 1}


def test_ids_are_never_shared_between_labels():
    spot = (300.0, 150.0, 340.0, 230.0)
    timeline = [boxes(("person", spot))] * 30 + [boxes(("dog", spot))] * 30
    events = run(analytics(), timeline)
    started = objects(events, "start")
    assert [event["label"] for event in started] == ["person", "dog"]
    assert started[0]["track_id"] != started[1]["track_id"]


def test_hidden_for_over_a_second_behind_a_post_is_still_the_same_object():
    path = moving_box((0.0, 150.0), (3.0, 0.0), 200)
    timeline = [boxes(("person", box)) if not 80 <= index < 112 else boxes() for index, box in enumerate(path)]
    camera = analytics()  # ByteTrack drops a track after 1 s; the object waits 2 s
    events = run(camera, timeline)
    assert camera.stats()["unique"] == {"person": 1}
    (end,) = objects(events, "end")
    assert (end["entered"], end["exited"]) == ("left", None)


def test_one_leaving_by_a_side_and_another_coming_in_there_are_two_objects():
    leaving = moving_box((60.0, 150.0), (-4.0, 0.0), 20)  # walks out on the left
    coming = moving_box((-18.0, 150.0), (4.0, 0.0), 40)  # a moment later someone walks in there
    timeline = [boxes(("person", box)) for box in leaving] + [boxes()] * 5 + [boxes(("person", b)) for b in coming]
    events = run(analytics(), timeline)
    assert len(objects(events, "start")) == 2
    assert next((event["entered"], event["exited"]) for event in objects(events, "end")) == ("inside", "left")


def in_view(box):
    """The part of a box inside the 640×360 frame, as a detector reports it, or None."""
    x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], 640), min(box[3], 360)
    return (x1, y1, x2, y2) if x2 - x1 >= 4 and y2 - y1 >= 4 else None


def test_entry_and_exit_sides_dwell_and_routes():
    car = moving_box((-100.0, 200.0), (5.0, 0.0), 160, size=(100, 40))  # left to right
    person = moving_box((400.0, -60.0), (0.0, 4.0), 110, size=(20, 60))  # top to bottom
    timeline = []
    for index in range(200):
        found = [("car", car[index]) if index < len(car) else None, ("person", person[index]) if index < 110 else None]
        timeline.append(boxes(*((label, in_view(box)) for label, box in filter(None, found) if in_view(box))))
    camera = analytics()
    events = run(camera, timeline)
    ends = {event["label"]: event for event in objects(events, "end")}
    assert (ends["car"]["entered"], ends["car"]["exited"]) == ("left", "right")
    assert (ends["person"]["entered"], ends["person"]["exited"]) == ("top", "bottom")
    seen = [index for index in range(len(car)) if in_view(car[index])]
    assert ends["car"]["dwell"] == pytest.approx((seen[-1] - seen[0]) / FPS, abs=0.2)
    assert camera.stats()["routes"] == {"car": {"left>right": 1}, "person": {"top>bottom": 1}}
