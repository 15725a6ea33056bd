"""Which model answers a remote detector's camera: a `detector` event per change and a `detector` stats key,
from what the pipeline stamps on each frame's detections."""

from __future__ import annotations

from timelines import analytics, boxes, frame, of_type

SERVER = "ws://10.0.0.5:8765"


def answered(in_use: str | None, reason: str | None = None, dropped: int = 0):
    detections = boxes()
    if in_use is not None:
        detections.metadata["detector"] = {"in_use": in_use, "server": SERVER, "fallback": "street",
                                           "dropped": dropped, "reason": reason}  # fmt: skip
    return detections


def test_each_change_of_model_is_one_event_at_its_first_frame_and_the_stats_follow():
    camera = analytics(stats_interval=0.2)
    timeline = ["remote"] * 10 + ["fallback"] * 10 + ["remote"] * 10
    events, stats = [], []
    for index, in_use in enumerate(timeline):
        analysis = camera.update(frame(index), answered(in_use, None if in_use == "remote" else "lost", index // 10))
        events += analysis.events
        if analysis.stats is not None:
            stats.append(analysis.stats["detector"])
    changes = of_type(events, "detector")
    assert [(e["from"], e["to"], e["reason"], e["time"]) for e in changes] == [
        ("remote", "fallback", "lost", 0.4),
        ("fallback", "remote", None, 0.8),
    ]
    assert all(e["server"] == SERVER and e["fallback"] == "street" and e["camera"] == "test" for e in changes)
    assert [s["in_use"] for s in stats] == ["remote", "fallback", "fallback", "remote", "remote"]  # at 0.2 s, 0.4, ...
    assert stats[-1] == {"in_use": "remote", "server": SERVER, "fallback": "street", "dropped": 2}


def test_a_start_on_the_fallback_is_one_event_and_a_start_on_the_server_none():
    on_fallback = analytics()
    first = on_fallback.update(frame(0), answered("fallback", "refused")).events
    assert [(e["from"], e["to"]) for e in of_type(first, "detector")] == [(None, "fallback")]
    assert not of_type(on_fallback.update(frame(1), answered("fallback", "refused")).events, "detector")
    on_server = analytics()
    assert not of_type(on_server.update(frame(0), answered("remote")).events, "detector")


def test_a_local_detector_has_no_detector_events_or_stats_key():
    camera = analytics(stats_interval=0.1)
    events = []
    for index in range(10):
        events += camera.update(frame(index), answered(None)).events
    assert not of_type(events, "detector")
    assert "detector" not in camera.finish().stats
