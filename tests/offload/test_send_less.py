"""Send less on a remote detector: `min_change` (a number, or auto) / `max_skip` leave frames that hardly
changed unsent, their boxes the server's last ones moved by optical flow; `max_kbps` keeps a bandwidth
budget; the camera's stats say what was sent, and how. A real `edgewatch serve`, a real `edgewatch run`,
a real Mosquitto carrying the stats."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv

from brokers import Mosquitto, Subscriber
from edgewatch.evaluate.detection import evaluate
from edgewatch.sources import open_source
from media import write_video
from offload_servers import Served, json_lines, one_line_error

STATS = "edgewatch/site/gate/stats"
STREET_FRAMES = 150  # synthetic:street?seconds=6 at 25 fps
#: from the thumbnails of the synthetic street: frames 1/25 s apart differ by 0.4-1.3, 3 apart by 1-3
SKIPPING = 1.5


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield mosquitto
    mosquitto.stop()


def _run(
    run_cli: Callable[..., Any],
    tmp_path: Path,
    served: Served,
    broker: Mosquitto,
    source: str,
    frames: int,
    name: str,
    send_less: str = "",
    camera: str = "stats_interval: 60",
    stats: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """`edgewatch run` of `source` on the server: its frame lines, the detector's part of its last stats,
    and the frames the server says it answered this client; every stats message goes to `stats`."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        "instance: site\n"
        f"cameras:\n  gate: {{source: '{source}', detector: big, {camera}}}\n"
        f"detectors:\n  big: {{type: remote, url: '{served.url}', timeout: 10{send_less}}}\n"
        f"storage: {{path: {tmp_path / 'data'}}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
    )  # fmt: skip
    clients_before = served.log.count(" left: ")
    subscriber = Subscriber(broker.port, STATS)
    try:
        done = run_cli("run", config.name, "--json", f"{name}.jsonl", "--quiet")
        assert done.returncode == 0, done.stderr.decode()

        def final() -> dict[str, Any] | None:  # the stats at the end of the input: every frame counted
            payload = subscriber.latest(STATS)
            detector = json.loads(payload)["detector"] if payload is not None else None
            return detector if detector and detector["sent"] + detector["skipped"] == frames else None

        assert subscriber.wait_for(final), subscriber.messages
        detector = final()
        if stats is not None:
            stats.extend(json.loads(payload) for topic, payload, _ in subscriber.messages if topic == STATS)
    finally:
        subscriber.close()
    deadline = time.monotonic() + 10
    while served.log.count(" left: ") == clients_before and time.monotonic() < deadline:
        time.sleep(0.05)
    answered = int(re.findall(r" left: (\d+) frames answered", served.log)[-1])
    return json_lines(tmp_path / f"{name}.jsonl"), detector, answered


def _boxes(lines: list[dict[str, Any]]) -> dict[str, sv.Detections]:
    boxes = {}
    for line in lines:
        found = line["detections"]
        boxes[f"{line['frame']}.jpg"] = sv.Detections(
            xyxy=np.array([item["box"] for item in found], dtype=float).reshape(-1, 4),
            class_id=np.array([item["class_id"] for item in found], dtype=int),
            confidence=np.array([item["score"] for item in found], dtype=float),
        )
    return boxes


def _f1(every: list[dict[str, Any]], fewer: list[dict[str, Any]]) -> float:
    """F1 at IoU 0.5 of `fewer`'s boxes against `every`'s, frame by frame."""
    labels = {item["class_id"]: item["label"] for line in every for item in line["detections"]}
    classes = [labels.get(index, "?") for index in range(max(labels, default=0) + 1)]
    scores = evaluate(_boxes(every), _boxes(fewer), classes).overall
    assert scores.expected > 100, scores
    return scores.f1 or 0.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_frames_that_hardly_changed_are_not_sent_and_moved_boxes_stay_close_to_sending_all(
    seed: int, street_server: Served, broker: Mosquitto, run_cli, tmp_path: Path
):
    source = f"synthetic:street?seconds=6&seed={seed}"
    every, every_stats, every_answered = _run(run_cli, tmp_path, street_server, broker, source, STREET_FRAMES, "all")
    fixed, fixed_stats, fixed_answered = _run(run_cli, tmp_path, street_server, broker, source, STREET_FRAMES,
                                              "fixed", f", min_change: {SKIPPING}")  # fmt: skip
    auto, auto_stats, auto_answered = _run(run_cli, tmp_path, street_server, broker, source, STREET_FRAMES,
                                           "auto", ", min_change: auto")  # fmt: skip

    assert every_stats["sent"] == every_answered == STREET_FRAMES and every_stats["skipped"] == 0
    assert (every_stats["min_change"], every_stats["quality"], every_stats["scale"]) == (0.0, 90, 1.0)
    for stats, answered in ((fixed_stats, fixed_answered), (auto_stats, auto_answered)):
        assert stats["sent"] == answered and stats["skipped"] == STREET_FRAMES - answered
        assert answered >= STREET_FRAMES / 10  # max_skip 10 by default
    assert fixed_stats["min_change"] == SKIPPING and 0 <= auto_stats["min_change"] <= 8

    # the bar: 60% fewer bytes, F1 0.9 against sending every frame. A fixed threshold reaches it
    # with the boxes moved by optical flow (0.8-0.9 F1 without; measured 0.26-0.32 of the bytes here)
    assert fixed_stats["sent_bytes"] < 0.4 * every_stats["sent_bytes"], (fixed_stats, every_stats)
    assert _f1(every, fixed) >= 0.9
    # auto keeps F1 (0.94-0.97 measured), but from a cold start on 6 s its calibration (20 frames sent in
    # a row, then more while too few boxes were seen) falls on people and cars coming in, which skipping
    # misses, so it chooses low thresholds: 0.5-0.8 of the bytes here, not the 0.4
    assert auto_stats["sent_bytes"] < 0.9 * every_stats["sent_bytes"], (auto_stats, every_stats)
    assert _f1(every, auto) >= 0.9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_bandwidth_budget_is_kept_by_lower_quality_and_smaller_frames_and_boxes_still_come(
    seed: int, street_server: Served, broker: Mosquitto, run_cli, tmp_path: Path
):
    source = f"synthetic:street?seconds=4&seed={seed}"
    every, every_stats, _ = _run(run_cli, tmp_path, street_server, broker, source, 100, "all")
    every_kbps = every_stats["sent_bytes"] * 8 / 1000 / 4
    budget = round(every_kbps / 4)  # a quarter of what every frame at quality 90 takes, 25 a second
    stats: list[dict[str, Any]] = []
    kept, kept_stats, _ = _run(run_cli, tmp_path, street_server, broker, source, 100, "budget", f", max_kbps: {budget}",
                               "stats_interval: 0.5, realtime: true", stats)  # fmt: skip

    assert kept_stats["sent"] == 100 and kept_stats["quality"] < 90
    # this run's stats only: the broker's retained stats of the run before come first
    ours = [item for item in stats if item["detector"]["sent_bytes"] <= kept_stats["sent_bytes"]]
    sent = sorted({(item["time"], item["detector"]["sent_bytes"]) for item in ours})
    windows = [(t2 - t1, b2 - b1) for t1, b1 in sent for t2, b2 in sent if t1 >= 1.0 and 0.95 <= t2 - t1 <= 1.05]
    assert len(windows) >= 3, sent
    kbps = [bytes_ * 8 / 1000 / seconds for seconds, bytes_ in windows]
    assert max(kbps) < 1.15 * budget, (kbps, budget, every_kbps)
    # boxes still come, in the frame's pixels: most of sending every frame's match
    assert _f1(every, kept) >= 0.8


def test_a_still_scene_is_sent_every_max_skip_th_frame(
    street_server: Served, broker: Mosquitto, run_cli, tmp_path: Path
):
    with open_source("synthetic:street?seconds=3") as source:
        image = [source.read().image for _ in range(60)][-1]  # people and cars are in by then
    video = write_video(tmp_path / "still.mp4", [image] * 40)
    lines, stats, answered = _run(run_cli, tmp_path, street_server, broker, str(video), 40, "still",
                                  ", min_change: 1, max_skip: 8")  # fmt: skip
    assert (stats["sent"], stats["skipped"], answered) == (5, 35, 5)  # frames 0, 8, 16, 24, 32
    assert stats["sent_bytes"] > 5 * 1000
    boxes = [[item["box"] for item in line["detections"]] for line in lines]
    assert boxes[0] and all(found == boxes[index - index % 8] for index, found in enumerate(boxes))  # the last sent's


@pytest.mark.parametrize(
    ("detector", "expected"),
    [
        ("{type: remote, url: 'ws://127.0.0.1:9', min_change: -1}", "detectors.big.min_change: Input should be greater than or equal to 0"),
        ("{type: remote, url: 'ws://127.0.0.1:9', min_change: 300}", "detectors.big.min_change: Input should be less than or equal to 255"),
        ("{type: remote, url: 'ws://127.0.0.1:9', max_skip: 0}", "detectors.big.max_skip: Input should be greater than or equal to 1"),
        ("{type: onnx, path: model.onnx, min_change: 2}", "detectors.big: min_change: only for a detector of type remote"),
        ("{type: remote, url: 'ws://127.0.0.1:9', min_change: fast}", "detectors.big.min_change: Input should be a number from 0 to 255, or auto"),
        ("{type: remote, url: 'ws://127.0.0.1:9', min_change: auto, target_f1: 1.5}", "detectors.big.target_f1: Input should be less than or equal to 1"),
        ("{type: remote, url: 'ws://127.0.0.1:9', min_change: 2, target_f1: 0.9}", "detectors.big.target_f1: only with min_change: auto"),
        ("{type: remote, url: 'ws://127.0.0.1:9', max_kbps: 0}", "detectors.big.max_kbps: Input should be greater than 0"),
        ("{type: motion, max_kbps: 500}", "detectors.big: max_kbps: only for a detector of type remote"),
    ],
    ids=["min-change-negative", "min-change-over-255", "max-skip-0", "not-remote", "min-change-word",
         "target-f1-over-1", "target-f1-without-auto", "max-kbps-0", "max-kbps-not-remote"],
)  # fmt: skip
def test_a_bad_send_less_option_is_one_line_and_exit_2(detector: str, expected: str, run_cli, tmp_path: Path):
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  gate: {{source: 'synthetic:street', detector: big}}\ndetectors:\n  big: {detector}\n"
    )
    assert expected in one_line_error(run_cli("run", "site.yaml", "--quiet"))
