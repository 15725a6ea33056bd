"""Events and object ids through the `edgewatch` command, on a synthetic street with its trained
detector: what a user of --events and --json gets."""

from __future__ import annotations

import json
from collections import Counter

from edgewatch.sources.synthetic import StreetScene

SEED, FRAMES = 1, 375  # 15 s
CONFIG = f"""
cameras:
  street:
    source: synthetic:street?seed={SEED}&seconds=30
    max_frames: {FRAMES}
    lines:
      middle: {{points: [[0.5, 0.0], [0.5, 1.0]]}}
    zones:
      pavement: {{polygon: [[0.0, 0.8], [1.0, 0.8], [1.0, 1.0], [0.0, 1.0]], labels: [person]}}
    rules:
      - name: busy
        count_above: 2
        end_after: 1.0
"""


def lines_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_file_has_crossings_objects_zones_and_incidents_in_the_contract_shape(run_cli, tmp_path):
    (tmp_path / "street.yaml").write_text(CONFIG)
    done = run_cli("run", "street.yaml", "--events", "events.jsonl", "--json", "frames.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    events = lines_of(tmp_path / "events.jsonl")
    kinds = Counter(event["type"] for event in events)
    assert {"object", "line_crossing", "zone", "incident"} <= set(kinds)
    for event in events:
        assert event["camera"] == "street" and event["wall_time"].endswith("Z") and "time" in event

    crossings = [event for event in events if event["type"] == "line_crossing"]
    keys = {"type", "camera", "line", "direction", "label", "track_id", "time", "wall_time", "id", "message_id"}
    assert set(crossings[0]) == keys
    assert len({event["message_id"] for event in events}) == len(events)
    truth = Counter(
        (label, direction)
        for frame, _, label, direction in StreetScene(seed=SEED, seconds=30).crossings((320, 0), (320, 360))
        if frame < FRAMES
    )
    assert Counter((event["label"], event["direction"]) for event in crossings) == truth

    objects = [event for event in events if event["type"] == "object"]
    starts = {event["id"]: event for event in objects if event["phase"] == "start"}
    ends = {event["id"]: event for event in objects if event["phase"] == "end"}
    assert starts.keys() == ends.keys()  # every object that started ended, under the same id
    assert all(ends[key]["track_id"] == starts[key]["track_id"] for key in starts)

    incidents: dict[str, list[str]] = {}
    for event in events:
        if event["type"] == "incident":
            incidents.setdefault(event["id"], []).append(event["phase"])
    assert incidents and all(phases == ["start", "end"] for phases in incidents.values())  # raised once, ended once

    frames = lines_of(tmp_path / "frames.jsonl")
    track_ids = [box["track_id"] for line in frames for box in line["detections"]]
    assert -1 not in track_ids  # a box not (yet) an object has no id
    assert {event["track_id"] for event in crossings} <= set(track_ids)


def test_a_rule_with_two_conditions_is_refused_with_its_line(run_cli, tmp_path):
    bad = CONFIG.replace("count_above: 2", "count_above: 2\n        any_present: [car]")
    (tmp_path / "bad.yaml").write_text(bad)
    done = run_cli("run", "bad.yaml", "--quiet")
    assert done.returncode == 2
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1 and "bad.yaml:11" in message and "exactly one of" in message
