"""Incidents and states on constructed timelines: each knob (min_duration, end_after, repeat_after)
and each condition, raised once with a timestamp, ended once."""

from __future__ import annotations

import numpy as np
import pytest

from edgewatch.analytics.rules import IncidentRule, StateTracker
from edgewatch.analytics.tracking import TrackedObject
from edgewatch.config import RuleConfig, StateConfig
from timelines import FPS, analytics, boxes, frame, of_type, run

STEP = 0.1  # seconds between frames of the constructed timelines


def animal(identity: int, label: str) -> TrackedObject:
    box = np.array([0.0, 0.0, 10.0, 10.0])
    return TrackedObject(identity, label, 0, box, box, 0.0, 0.0, None, None, 0.9, 0, box)


CAT, DOG1, DOG2 = animal(1, "cat"), animal(2, "dog1"), animal(3, "dog2")


def feed(rule: IncidentRule, spans: list[tuple[float, float, list[TrackedObject]]], until: float):
    """`spans`: (from, to, objects present) in seconds; nobody outside them. Returns (phase, time)."""
    changes = []
    for step in range(round(until / STEP) + 1):
        time = round(step * STEP, 6)
        present = next((objects for start, end, objects in spans if start <= time < end), [])
        changes += [(change.phase, time, change) for change in rule.update(present, time)]
    return changes + [(change.phase, until, change) for change in rule.finish()]


def phases(changes):
    return [(phase, time) for phase, time, _ in changes]


def test_all_present_starts_when_the_cat_and_dog2_meet_and_ends_once_after_they_part():
    rule = IncidentRule(RuleConfig(name="meet", all_present=["cat", "dog2"], end_after=1.0))
    changes = feed(rule, [(0, 2, [CAT, DOG1]), (2, 5, [CAT, DOG1, DOG2]), (5, 9, [CAT])], until=9)
    assert phases(changes) == [("start", 2.0), ("end", 5.9)]  # last together at 4.9, + end_after
    start, end = changes[0][2], changes[1][2]
    assert sorted(item.label for item in start.objects) == ["cat", "dog2"]  # dog1 is not part of it
    assert end.since == 2.0 and end.until == pytest.approx(4.9)


def test_min_duration_waits_and_a_shorter_meeting_raises_nothing():
    rule = IncidentRule(RuleConfig(name="meet", all_present=["cat", "dog2"], min_duration=1.5, end_after=0.5))
    changes = feed(rule, [(1, 2, [CAT, DOG2]), (4, 8, [CAT, DOG2])], until=10)
    assert phases(changes) == [("start", 5.5), ("end", 8.4)]
    assert changes[0][2].since == 4.0


def test_a_gap_shorter_than_end_after_neither_ends_nor_restarts_the_incident():
    rule = IncidentRule(RuleConfig(name="meet", all_present=["cat", "dog2"], end_after=2.0))
    changes = feed(rule, [(1, 3, [CAT, DOG2]), (4.5, 6, [CAT, DOG2])], until=10)
    assert phases(changes) == [("start", 1.0), ("end", 7.9)]


def test_repeat_after_re_alerts_on_schedule_while_it_lasts():
    rule = IncidentRule(RuleConfig(name="meet", any_present=["dog2"], repeat_after=2.0, end_after=0.5))
    changes = feed(rule, [(1, 7.05, [DOG2])], until=9)
    assert phases(changes) == [("start", 1.0), ("update", 3.0), ("update", 5.0), ("update", 7.0), ("end", 7.5)]
    assert {change.number for _, _, change in changes} == {1}


def test_each_new_incident_gets_its_number_and_the_input_ending_closes_one_still_open():
    rule = IncidentRule(RuleConfig(name="dogs", any_present=["dog1", "dog2"], end_after=0.5))
    changes = feed(rule, [(1, 2, [DOG1]), (4, 20, [DOG2])], until=6)
    assert phases(changes) == [("start", 1.0), ("end", 2.4), ("start", 4.0), ("end", 6.0)]
    assert [change.number for _, _, change in changes] == [1, 1, 2, 2]
    assert changes[-1][2].until == pytest.approx(6.0)


def test_count_above_counts_only_its_labels():
    rule = IncidentRule(RuleConfig(name="pack", count_above=1, labels=["dog1", "dog2"], end_after=0.2))
    changes = feed(rule, [(0, 2, [CAT, DOG1]), (2, 3, [CAT, DOG1, DOG2])], until=4)
    assert phases(changes) == [("start", 2.0), ("end", 3.1)]


def test_rules_run_on_tracked_objects_and_a_zone_limits_them():
    # a cat and a dog2 sit still for 3 s; the dog2 is outside the zone
    together = boxes(("cat", (100, 100, 140, 140)), ("dog2", (400, 100, 460, 160)))
    camera = analytics(
        zones={"corner": {"polygon": [[0, 0], [300, 0], [300, 360], [0, 360]]}},
        rules=[
            {"name": "meet", "all_present": ["cat", "dog2"], "end_after": 0.5},
            {"name": "meet_in_corner", "all_present": ["cat", "dog2"], "zone": "corner"},
        ],
    )
    events = run(camera, [together] * int(3 * FPS) + [boxes()] * int(2 * FPS))
    incidents = of_type(events, "incident")
    assert [(event["rule"], event["phase"]) for event in incidents] == [("meet", "start"), ("meet", "end")]
    assert incidents[0]["labels"] == ["cat", "dog2"] and incidents[0]["track_ids"] == [1, 2]
    assert incidents[0]["id"] == incidents[1]["id"]
    assert incidents[1]["duration"] == pytest.approx(incidents[1]["until"] - incidents[1]["since"])


def test_a_state_changes_only_after_the_new_label_holds_and_each_change_is_one_event():
    state = StateTracker(StateConfig(min_duration=1.0, min_score=0.6))
    timeline = [("closed", 0.9)] * 20 + [("open", 0.9)] * 5 + [("closed", 0.9)] * 10  # a 0.5 s flicker
    timeline += [("open", 0.9)] * 15 + [("open", 0.3)] * 10 + [("closed", 0.5)] * 20  # unsure frames
    changes = []
    for step, (label, score) in enumerate(timeline):
        change = state.update(label, score, step * STEP)
        if change is not None:
            changes.append((change, round(step * STEP, 6)))
    assert changes == [((None, "closed", 0.0), 1.0), (("closed", "open", 3.5), 4.5)]
    assert state.state == "open"


def test_a_classifier_camera_reports_state_changes_as_events():
    camera = analytics(state={"min_duration": 0.4})
    events = []
    for index in range(60):
        detections = boxes()
        detections.metadata["classification"] = {"label": "open" if 20 <= index < 40 else "closed", "score": 0.9}
        events += camera.update(frame(index), detections).events
    states = of_type(events, "state")
    assert [(event["from"], event["to"]) for event in states] == [
        (None, "closed"),
        ("closed", "open"),
        ("open", "closed"),
    ]
    assert [event["since"] for event in states] == [0.0, 0.8, 1.6]
    assert camera.stats()["state"] == "closed"
