"""`edgewatch data sample`: the frames kept are the ones worth labelling (the rare open door, the
moving object), the drafts read back in every format, and bad input ends in one line and exit 2."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgewatch.data.datasets import FORMATS, load
from edgewatch.data.sample import sample
from edgewatch.models import DOOR_CLASSIFIER
from edgewatch.sources import Picture, Source, SourceInfo
from edgewatch.sources.door import DoorScene
from edgewatch.sources.synthetic import SyntheticSource
from media import write_video

#: ten minutes of a 5 fps camera on a door that is open about 5% of the time (six times, 3 to 7 s each)
RARE_DOOR = {"seed": 6, "seconds": 600, "fps": 5, "open_share": 0.05}


def manifest(target: Path) -> dict:
    return json.loads((target / "manifest.json").read_text())


def kept_frames(target: Path) -> list[int]:
    return [entry["frame"] for entry in manifest(target)["frames"]]


def test_diverse_and_surprise_find_the_rarely_open_door_that_frames_at_a_fixed_interval_miss(tmp_path):
    shares = {}
    for by in ("time", "diverse", "surprise"):
        scene = DoorScene(**RARE_DOOR)
        result = sample(SyntheticSource(scene, "door"), tmp_path / by, budget=40, by=by, detector="door")
        assert (result.frames_read, result.kept) == (scene.frame_count, 40)
        assert sum(result.balance.values()) == 40 and set(result.balance) <= {"closed", "open"}
        shares[by] = np.mean([scene.state(frame) == "open" for frame in kept_frames(tmp_path / by)])
    truth = np.mean([scene.state(frame) == "open" for frame in range(scene.frame_count)])
    print(
        f"\nopen door in {truth:.1%} of the frames; share of open frames among 40 kept: "
        + ", ".join(f"{by} {share:.0%}" for by, share in shares.items())
    )
    assert shares["time"] < 0.15  # a fixed interval keeps the open door about as rarely as it happens
    assert shares["diverse"] >= 0.3
    assert shares["surprise"] >= 0.3


def test_the_command_keeps_frames_with_scored_draft_boxes_and_says_why(run_cli, tmp_path):
    done = run_cli(
        "data", "sample", "synthetic:street?seconds=8", "out", "--budget", "6", "--by", "surprise",
        "--detector", "street", "--to", "coco",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    line = done.stdout.decode().strip()
    assert line.startswith("200 frames read, 6 kept by surprise in out (") and "person" in line, line
    out = tmp_path / "out"
    images = sorted((out / "images").glob("*.jpg"))
    dataset, skipped = load("coco", out)
    assert len(images) == len(dataset) == 6 and skipped == []
    boxes = [detections for detections in dataset.annotations.values() if len(detections)]
    assert boxes and all(((d.confidence > 0) & (d.confidence <= 1)).all() for d in boxes)
    record = manifest(out)
    assert (record["method"], record["budget"], record["frames_read"], record["model"]) == (
        "surprise",
        6,
        200,
        "street",
    )
    for entry in record["frames"]:
        assert (out / entry["file"]).is_file() and entry["file"] == f"images/frame_{entry['frame']:06d}.jpg"
        assert entry["time"] == pytest.approx(entry["frame"] / 25, abs=1e-3)
        assert entry["why"]["reason"] == "surprise" and entry["why"]["kind"] in ("flip", "unsure", "change", "rare")
        assert entry["prediction"]["boxes"] == sum(entry["prediction"]["labels"].values())
    frames = [entry["frame"] for entry in record["frames"]]
    assert frames == sorted(frames) and all(later - earlier > 1 for earlier, later in pairwise(frames))
    kept = cv2.imread(str(images[0]))
    assert kept.shape == (360, 640, 3)  # the frame as read, not a thumbnail


@pytest.mark.parametrize("format", FORMATS)
def test_the_drafts_read_back_in_every_format_with_every_image(tmp_path, format):
    result = sample(
        "synthetic:street?seconds=4", tmp_path / "out", budget=3, by="time", detector="street", format=format
    )
    # CSV has no row for an image without boxes: its images are named, as for any CSV dataset
    dataset, skipped = load(format, tmp_path / "out", images=tmp_path / "out" / "images" if format == "csv" else None)
    assert len(dataset) == result.kept == 3 and skipped == []
    assert sum(result.balance.values()) == sum(len(detections) for detections in dataset.annotations.values())
    assert kept_frames(tmp_path / "out") == [0, 34, 67]  # every 33⅓ frames of 100, from the first


def moving_square(path: Path, frames: int = 100, moving: range = range(40, 60)) -> Path:
    """A still scene in which a square moves (8 px a frame) only during `moving`."""
    background = np.tile(np.linspace(30, 120, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    images = []
    for index in range(frames):
        x = 20 + 8 * (min(max(index, moving.start), moving.stop) - moving.start)
        image = background.copy()
        image[100:140, x : x + 40] = (255, 255, 255)
        images.append(image)
    return write_video(path, images)


def test_motion_keeps_the_frames_where_something_moves(tmp_path):
    video = moving_square(tmp_path / "square.mp4")
    result = sample(video, tmp_path / "out", budget=5, by="motion")
    frames = kept_frames(tmp_path / "out")
    assert result.kept == 5 and all(41 <= frame <= 60 for frame in frames), frames
    assert all(later - earlier > 1 for earlier, later in pairwise(frames))  # spread out: no neighbours
    assert all(entry["why"]["change"] > 1 for entry in manifest(tmp_path / "out")["frames"])


class Stream(Source):
    """A stream of unknown length, as a camera or an RTSP feed gives it: small frames of a still scene
    in which a square moves only during `moving`."""

    def __init__(self, frames: int, moving: range) -> None:
        self.frames, self.moving, self.index = frames, moving, 0
        self.info = SourceInfo(uri="stream", fps=25.0, width=80, height=60, frame_count=None, live=False)

    def read(self) -> Picture | None:
        if self.index >= self.frames:
            return None
        image = np.full((60, 80, 3), 60, np.uint8)
        x = 2 + 2 * (min(max(self.index, self.moving.start), self.moving.stop) - self.moving.start)
        image[20:30, x : x + 10] = 255
        self.index += 1
        return Picture(image)


def test_a_stream_of_unknown_length_is_sampled_evenly_and_its_one_burst_of_motion_found(tmp_path):
    sample(Stream(3000, range(0)), tmp_path / "time", budget=8, by="time")
    frames = kept_frames(tmp_path / "time")
    gaps = np.diff(frames)
    assert len(frames) == 8 and gaps.max() - gaps.min() <= gaps.min() / 2 and frames[-1] >= 2500, frames
    # far more frames than candidates: windows merge on the way, each keeping its biggest change
    sample(Stream(3000, range(2500, 2515)), tmp_path / "motion", budget=2, by="motion")
    assert all(2501 <= frame <= 2515 for frame in kept_frames(tmp_path / "motion"))
    assert [path.name for path in (tmp_path / "motion").iterdir() if path.name.startswith(".")] == []


def test_a_budget_above_the_frames_there_are_keeps_them_all_and_says_so(tmp_path, image_folder):
    result = sample(image_folder, tmp_path / "out", budget=10, by="diverse")
    assert result.kept == 3 and "all 3 kept (fewer than the budget of 10)" in result.summary()
    record = manifest(tmp_path / "out")
    assert [entry["source_file"] for entry in record["frames"]] == ["a.jpg", "b.jpeg", "c.png"]
    assert all(entry["time"] is None for entry in record["frames"])  # pictures, not a video: no clock


@pytest.mark.parametrize(
    ("case", "args", "says"),
    [
        ("missing", ["nowhere.mp4", "out", "--budget", "5"], "nowhere.mp4"),
        ("corrupt", ["broken.mp4", "out", "--budget", "5"], "broken.mp4"),
        ("no model", ["synthetic:door?seconds=1", "out", "--budget", "5", "--by", "surprise"], "--detector"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, case, args, says):
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    done = run_cli("data", "sample", *args)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0] and "Traceback" not in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_empty_is_left_alone_without_force(run_cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels.txt").write_text("mine")
    done = run_cli("data", "sample", "synthetic:door?seconds=2", "out", "--budget", "3")
    assert done.returncode == 2 and "--force" in done.stderr.decode()
    assert [path.name for path in out.iterdir()] == ["labels.txt"] and (out / "labels.txt").read_text() == "mine"
    forced = run_cli(
        "data", "sample", "synthetic:door?seconds=2", "out", "--budget", "3", "--model", str(DOOR_CLASSIFIER),
        "--to", "yolo", "--force",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr.decode()
    assert len(list((out / "images").glob("*.jpg"))) == 3 and (out / "labels.txt").read_text() == "mine"
    # a classifier draws no boxes: its label per frame is in the manifest, and the balance on the line
    assert re.search(r"\((closed|open) \d", forced.stdout.decode()), forced.stdout.decode()
    predictions = [entry["prediction"] for entry in manifest(out)["frames"]]
    assert [set(prediction) for prediction in predictions] == [{"label", "score"}] * 3
    assert all((out / "labels" / f"frame_{frame:06d}.txt").read_text() == "" for frame in kept_frames(out))
