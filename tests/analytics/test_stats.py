"""Stats at a fixed interval of video time, and events and stats reaching every sink that wants them."""

from __future__ import annotations

import edgewatch as ew
from edgewatch.analytics.camera import CameraAnalytics
from edgewatch.config import CameraConfig
from edgewatch.sources.synthetic import StreetScene, SyntheticSource
from timelines import FPS, analytics, boxes, frame, moving_box


def test_stats_come_every_interval_of_video_time_with_the_counts_so_far():
    camera = analytics(stats_interval=2.0, lines={"gate": {"points": [[300, 0], [300, 360]]}})
    path = moving_box((200.0, 150.0), (4.0, 0.0), int(9 * FPS))
    due = []
    for index, box in enumerate(path):
        stats = camera.update(frame(index), boxes(("person", box))).stats
        if stats is not None:
            due.append((stats["time"], stats["unique"], stats["lines"]["gate"]["in"]))
    assert [time for time, _, _ in due] == [2.0, 4.0, 6.0, 8.0]
    assert due[0][1:] == ({"person": 1}, 1)  # crossed at about 1 s
    assert camera.finish().stats["current"] == {}


class Collector:
    """A sink that keeps what it is given, as MQTT or the store will."""

    def __init__(self) -> None:
        self.frames, self.events, self.stats_seen = 0, [], []

    def write(self, result) -> None:
        self.frames += 1

    def event(self, event: dict) -> None:
        self.events.append(event)

    def stats(self, stats: dict) -> None:
        self.stats_seen.append(stats)

    def close(self) -> None:
        pass


def test_a_pipeline_hands_events_and_stats_to_its_sinks_and_closes_what_is_open_at_the_end():
    scene = StreetScene(seed=2, seconds=12)
    collector = Collector()
    config = CameraConfig(source="synthetic:street", stats_interval=5.0)
    pipeline = ew.Pipeline(
        SyntheticSource(scene),
        ew.load_detector("street"),
        camera="street",
        sinks=[collector],
        analytics=CameraAnalytics("street", config, min_score=0.25, fps=scene.fps, threshold=0.7),
    )
    pipeline.run()
    assert collector.frames == scene.frame_count
    assert [stats["time"] for stats in collector.stats_seen] == [5.0, 10.0, 11.96]  # the last: end of input
    phases = [(event["track_id"], event["phase"]) for event in collector.events if event["type"] == "object"]
    started = {track for track, phase in phases if phase == "start"}
    assert started and started == {track for track, phase in phases if phase == "end"}
    assert collector.stats_seen[-1]["unique"] == pipeline.final_stats["unique"]
