"""The event recorder: clips as long as asked, snapshots and records that open, old media pruned, and a
full disk that costs a clip at most, never the pipeline."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from disks import tmpfs
from edgewatch import EdgewatchError, Frame, FrameResult
from edgewatch.analytics.camera import CameraAnalytics
from edgewatch.config import CameraConfig, RecordConfig, StorageConfig
from edgewatch.models import make_detections
from edgewatch.sinks.recorder import Recorder, prune
from edgewatch.sources.synthetic import LABELS, StreetScene

FPS = 10.0
WALL = "2026-11-23T13:08:27.012Z"
DAY = "2026-11-23"


class Street:
    """Synthetic street frames at FPS with their true boxes (tracked, as analytics would hand them on)."""

    def __init__(self, seed: int = 1, width: int = 320, height: int = 180, **scene: object) -> None:
        self.scene = StreetScene(width=width, height=height, fps=FPS, seed=seed, **scene)  # type: ignore[arg-type]

    def result(self, index: int, visible_only: bool = False) -> FrameResult:
        image, truth = self.scene.render(index)
        truth = [item for item in truth if not (visible_only and item.hidden)]
        xyxy = np.array([item.box for item in truth], np.float32).reshape(-1, 4)
        class_ids = np.array([LABELS.index(item.label) for item in truth], int)
        detections = make_detections(xyxy, np.full(len(truth), 0.9), class_ids, list(LABELS))
        detections.tracker_id = np.array([item.track_id for item in truth], int)
        return FrameResult(Frame(image, "street", index, index / FPS), detections, 0.0)


def feed(recorder: Recorder, street: Street, frames: range, events: dict[int, list[dict]] | None = None) -> None:
    """Frames in order, each frame's events right after it, as the pipeline delivers them."""
    for index in frames:
        recorder.write(street.result(index))
        for event in (events or {}).get(index, []):
            recorder.event(event)


def incident(phase: str, identifier: str, at: float, track_ids: list[int] | None = None) -> dict:
    event = {"type": "incident", "phase": phase, "camera": "street", "rule": "crowd", "labels": ["car"]}
    event |= {"track_ids": track_ids or [], "since": at, "id": identifier}
    if phase == "end":
        event |= {"until": at, "duration": 1.0}
    return event | {"time": at, "wall_time": WALL}


def recorder(tmp_path: Path, pre: float = 2.0, post: float = 3.0, **options: object) -> Recorder:
    events = options.pop("events", ["incident"])
    storage = StorageConfig(path=str(options.pop("path", tmp_path)), max_gb=options.pop("max_gb", None))
    config = RecordConfig(pre_seconds=pre, post_seconds=post, events=events)  # type: ignore[arg-type]
    return Recorder("street", config, storage, options.pop("fps", FPS), **options)  # type: ignore[arg-type]


def media(root: Path) -> Path:
    return root / "media" / "street" / DAY


def video(path: Path) -> tuple[int, float, tuple[int, int]]:
    """Frames decoded, duration in seconds, and (width, height) of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return frames, container.duration / av.time_base, (stream.width, stream.height)


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(".tmp")]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_incident_gives_a_clip_from_pre_before_it_to_post_after_it_with_snapshots_and_a_record(tmp_path: Path):
    street, saved = Street(seed=4), []
    (car,) = street.scene.truth(40)  # a car well inside the picture
    cars = [car.track_id]
    with recorder(tmp_path, pre=2, post=3, on_saved=saved.append) as rec:
        feed(rec, street, range(110), {40: [incident("start", "crowd1", 4.0, cars)], 60: [incident("end", "crowd1", 6.0, cars)]})  # fmt: skip
    folder = media(tmp_path)
    frames, seconds, size = video(folder / "crowd1.mp4")
    assert abs(frames - 7 * FPS) <= 1 and abs(seconds - 7.0) <= 1 / FPS  # 2 s before + 2 s long + 3 s after
    assert size == (320, 180)
    record = json.loads((folder / "crowd1.json").read_text())
    assert [event["phase"] for event in record["events"]] == ["start", "end"]
    assert (record["start"], record["end"], record["frames"], record["complete"]) == (2.0, 9.0, frames, True)
    assert record["files"] == {"video": "crowd1.mp4", "snapshot": "crowd1.jpg", "boxes": "crowd1-boxes.jpg"}
    assert record["snapshot_frame"] == 40  # an incident's snapshot is its start
    snapshot, boxes = cv2.imread(str(folder / "crowd1.jpg")), cv2.imread(str(folder / "crowd1-boxes.jpg"))
    assert snapshot.shape == boxes.shape == (180, 320, 3)
    x1, y1, _, y2 = (int(v) for v in car.box)
    changed = np.abs(boxes.astype(int) - snapshot.astype(int)).max(axis=2) > 60
    assert changed[y1 : y2 + 1, max(0, x1 - 1) : x1 + 3].mean() > 0.5  # the car's box edge is drawn
    assert saved == [[folder / name for name in ("crowd1.mp4", "crowd1.jpg", "crowd1-boxes.jpg", "crowd1.json")]]
    assert leftovers(tmp_path) == []


def test_a_line_crossing_is_an_instant_recorded_pre_before_to_post_after(tmp_path: Path):
    crossing = {"type": "line_crossing", "camera": "street", "line": "middle", "direction": "in", "label": "car"}
    crossing |= {"track_id": 1, "time": 5.0, "wall_time": WALL}
    with recorder(tmp_path, pre=2, post=3, events=["line_crossing"]) as rec:
        feed(rec, street := Street(), range(100), {50: [crossing]})
        feed(rec, street, range(100, 101), {100: [incident("start", "ignored", 10.0)]})  # not a recorded type
    (clip,) = media(tmp_path).glob("*.mp4")
    frames, seconds, _ = video(clip)
    assert abs(frames - 5 * FPS) <= 1 and abs(seconds - 5.0) <= 1 / FPS
    record = json.loads(clip.with_suffix(".json").read_text())
    assert record["events"] == [crossing] and record["type"] == "line_crossing"
    assert (record["start"], record["end"]) == (3.0, 8.0)
    assert record["id"] == clip.stem  # an instant has no id of its own: the recorder gives it one


def test_overlapping_incidents_get_a_clip_each(tmp_path: Path):
    events = {
        30: [incident("start", "first", 3.0)],
        40: [incident("start", "second", 4.0)],
        50: [incident("end", "first", 5.0)],
        70: [incident("end", "second", 7.0)],
    }
    with recorder(tmp_path, pre=1, post=1) as rec:
        feed(rec, Street(), range(100), events)
    folder = media(tmp_path)
    assert sorted(path.name for path in folder.glob("*.mp4")) == ["first.mp4", "second.mp4"]
    assert abs(video(folder / "first.mp4")[0] - 4 * FPS) <= 1  # 2.0 .. 6.0
    assert abs(video(folder / "second.mp4")[0] - 5 * FPS) <= 1  # 3.0 .. 8.0
    assert leftovers(tmp_path) == []


def test_an_object_clip_follows_its_start_and_end_and_its_snapshot_is_the_best_frame(tmp_path: Path):
    """Events from real analytics: the start is stamped at the first sighting, frames after it was
    seen; the end comes `gone_after` seconds after the last sighting, later than the clip's end."""
    street = Street(seed=3, seconds=3, cars=1, people=0)
    analytics = CameraAnalytics("street", CameraConfig(source="street.mp4"), fps=FPS)
    events: list[dict] = []
    with recorder(tmp_path, pre=1, post=1, events=["object"]) as rec:
        for index in range(street.scene.actors[0].last_frame + 40):
            result = street.result(index, visible_only=True)
            analysis = analytics.update(result.frame, result.detections)
            result.detections = analysis.detections
            rec.write(result)
            for event in analysis.events:
                rec.event(event)
            events += analysis.events
    start, end = (event for event in events if event["type"] == "object")
    assert end["phase"] == "end" and end["exited"] == "right"
    folder = tmp_path / "media" / "street" / start["wall_time"][:10]  # real analytics stamp the real day
    record = json.loads((folder / f"{start['id']}.json").read_text())
    assert abs(record["start"] - (start["time"] - 1)) <= 1 / FPS
    assert abs(record["end"] - (end["time"] + 1)) <= 1 / FPS
    frames, seconds, _ = video(folder / f"{start['id']}.mp4")
    assert abs(seconds - (end["time"] - start["time"] + 2)) <= 1 / FPS and frames == record["frames"]
    assert record["snapshot_frame"] == end["best_frame"]
    snapshot = cv2.imread(str(folder / f"{start['id']}.jpg")).astype(int)
    best, other = street.scene.render(end["best_frame"])[0], street.scene.render(end["best_frame"] - 10)[0]
    assert np.abs(snapshot - best).mean() < np.abs(snapshot - other).mean()


def test_close_saves_a_clip_whose_end_never_came(tmp_path: Path):
    rec = recorder(tmp_path, pre=2, post=3)
    feed(rec, Street(), range(61), {30: [incident("start", "open", 3.0)]})
    rec.close()
    record = json.loads((media(tmp_path) / "open.json").read_text())
    assert (record["start"], record["end"], record["frames"]) == (1.0, 6.1, 51)
    assert record["complete"] is False and [event["phase"] for event in record["events"]] == ["start"]
    assert video(media(tmp_path) / "open.mp4")[0] == 51


def test_a_clip_that_goes_on_too_long_is_saved_as_it_stands(tmp_path: Path):
    saved: list[list[Path]] = []
    rec = recorder(tmp_path, pre=1, post=1, max_clip_seconds=3.0, on_saved=saved.append)
    feed(rec, Street(), range(60), {20: [incident("start", "long", 2.0)]})
    wait_until(lambda: bool(saved))  # saved while the input goes on, not at the end
    rec.close()
    record = json.loads((media(tmp_path) / "long.json").read_text())
    assert (record["start"], record["end"], record["complete"]) == (1.0, 4.0, False)
    assert "longer than 3 s" in record["unfinished"]


def test_a_slow_disk_does_not_hold_up_the_frames(tmp_path: Path):
    release, threads = threading.Event(), []

    def slow(paths: list[Path]) -> None:  # an uploader stuck on the network: the recorder's thread waits
        threads.append(threading.current_thread().name)
        release.wait(30)

    rec = recorder(tmp_path, pre=1, post=1, on_saved=slow)
    street = Street()
    feed(rec, street, range(40), {10: [incident("start", "a", 1.0)], 15: [incident("end", "a", 1.5)]})
    wait_until(lambda: bool(threads))
    started = time.monotonic()
    feed(rec, street, range(40, 100), {50: [incident("start", "b", 5.0)], 55: [incident("end", "b", 5.5)]})
    assert time.monotonic() - started < 10  # 60 frames and a finished clip went on meanwhile
    release.set()
    rec.close()
    assert threads == ["street:record", "street:record"]
    assert (media(tmp_path) / "b.mp4").exists()


def _group(folder: Path, name: str, size: int, age_days: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.mp4", folder / f"{name}.json"]
    moment = time.time() - age_days * 86400
    for path, part in zip(paths, (size - 100, 100), strict=True):
        path.write_bytes(b"x" * part)
        os.utime(path, (moment, moment))
    return paths


def test_prune_deletes_whole_groups_oldest_first(tmp_path: Path):
    root = tmp_path / "media"
    ages = {"a": 9.0, "b": 7.0, "c": 3.0, "d": 2.0, "e": 1.0}
    groups = {name: _group(root / "cam" / f"2026-01-0{i + 1}", name, 1000, age) for i, (name, age) in enumerate(ages.items())}  # fmt: skip
    (root / "cam" / "notes.txt").write_text("not media")
    removed = prune(root, max_days=5, max_gb=None)
    assert sorted(removed) == sorted(groups["a"] + groups["b"])
    assert not (root / "cam" / "2026-01-01").exists()  # an emptied day folder goes too
    removed = prune(root, max_days=None, max_gb=2500 / 1e9)
    assert sorted(removed) == sorted(groups["c"])  # 3000 bytes left over 2500: the oldest group goes, whole
    assert all(path.exists() for path in groups["d"] + groups["e"]) and (root / "cam" / "notes.txt").exists()


def test_retention_by_size_keeps_the_newest_clip(tmp_path: Path):
    with recorder(tmp_path, pre=1, post=1, max_gb=1e-9) as rec:  # smaller than any one clip
        feed(rec, street := Street(), range(30), {10: [incident("start", "old", 1.0)], 15: [incident("end", "old", 1.5)]})  # fmt: skip
        wait_until(lambda: rec.saved == 1)
        feed(rec, street, range(30, 60), {40: [incident("start", "new", 4.0)], 45: [incident("end", "new", 4.5)]})
    assert sorted(path.name for path in media(tmp_path).iterdir()) == [
        "new-boxes.jpg",
        "new.jpg",
        "new.json",
        "new.mp4",
    ]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs."""
    with tmpfs(tmp_path / "disk", 3 * 1024) as mount:
        yield mount


def fill(disk: Path) -> None:
    with (disk / "ballast").open("ab") as ballast:
        try:
            while True:
                ballast.write(b"\0" * 65536)
                ballast.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_full_disk_costs_the_oldest_media_or_one_clip_never_the_run(small_disk: Path, caplog):
    rec = recorder(small_disk, pre=1, post=1, path=small_disk)
    street, index = Street(), 0

    def clip(name: str) -> None:
        nonlocal index
        at = index / FPS + 1
        feed(rec, street, range(index, index + 40), {index + 10: [incident("start", name, at)], index + 15: [incident("end", name, at + 0.5)]})  # fmt: skip
        index += 40

    clip("old1")
    clip("old2")
    wait_until(lambda: rec.saved == 2)
    fill(small_disk)
    with caplog.at_level(logging.WARNING):
        clip("new")
        wait_until(lambda: rec.saved + rec.dropped == 3)
    folder = media(small_disk)
    assert rec.saved == 3 and (folder / "new.mp4").exists() and (folder / "new.json").exists()
    assert not (folder / "old1.mp4").exists() and not (folder / "old1.json").exists()  # the oldest made room
    assert "disk full" in caplog.text
    assert leftovers(small_disk) == []

    for path in folder.iterdir():  # nothing left to delete: the clip is dropped, and recording goes on
        path.unlink()
    fill(small_disk)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        clip("doomed")
        wait_until(lambda: rec.dropped == 1)
    assert "dropped the clip of incident doomed" in caplog.text and "No space left" in caplog.text
    assert list(folder.iterdir()) == [] and leftovers(small_disk) == []

    (small_disk / "ballast").unlink()
    clip("after")
    rec.close()
    assert sorted(path.name for path in folder.iterdir()) == [
        "after-boxes.jpg",
        "after.jpg",
        "after.json",
        "after.mp4",
    ]


#: seconds each incident lasts, in the order they happen: 640x360 clips of about 0.5, 0.9, 0.5, 2.0, 0.5 MB
DURATIONS = (2.0, 6.0, 2.0, 16.0, 2.0)


def offer_clips(root: Path) -> Iterator[tuple[str, bool]]:
    """Feed the recorder one incident after another as the pipeline would, each in its own stretch of
    frames; yields each clip's name, and whether it was saved, once its save is over."""
    street, index = Street(width=640, height=360), 0
    with recorder(root, pre=1, post=1, path=root) as rec:
        for number, seconds in enumerate(DURATIONS):
            name, at = f"clip{number}", index / FPS + 1
            end = index + 10 + round(seconds * FPS)
            feed(rec, street, range(index, end + 20), {index + 10: [incident("start", name, at)], end: [incident("end", name, at + seconds)]})  # fmt: skip
            index = end + 20
            wait_until(lambda: rec.saved + rec.dropped == number + 1)  # noqa: B023 (called at once)
            yield name, (media(root) / f"{name}.json").exists()


def on_disk(root: Path) -> dict[str, int]:
    """Bytes each saved clip takes on the disk (whole blocks), by name."""
    sizes: dict[str, int] = {}
    for path in media(root).glob("clip*"):
        name = path.name.split(".")[0].removesuffix("-boxes")
        sizes[name] = sizes.get(name, 0) + path.stat().st_blocks * 512
    return sizes


@pytest.fixture(scope="module")
def clip_sizes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """What each clip of `offer_clips` takes on a disk with room for all of them."""
    root = tmp_path_factory.mktemp("roomy")
    assert all(saved for _, saved in offer_clips(root))
    return on_disk(root)


@pytest.mark.parametrize("megabytes", [1, 2, 3, 5])
def test_a_full_disk_keeps_every_clip_that_fits_and_never_loses_one_for_a_clip_it_cannot_save(
    tmp_path: Path, megabytes: int, clip_sizes: dict[str, int]
):
    slack = 64 * 1024  # block rounding and the recorder's margin
    with tmpfs(tmp_path / "disk", megabytes * 1024) as disk:
        capacity = os.statvfs(disk).f_blocks * os.statvfs(disk).f_frsize
        before: dict[str, int] = {}
        order: list[str] = []
        for name, saved in offer_clips(disk):
            after = on_disk(disk)
            if clip_sizes[name] < capacity - slack:
                assert saved, f"{name} ({clip_sizes[name]} bytes) fits on an empty {megabytes} MB disk but was dropped"
            if not saved:
                assert after == before, f"{name} was dropped, and saved clips went with it"
                continue
            order.append(name)
            kept = [old for old in order if old in after]
            assert kept == order[len(order) - len(kept) :], "only the oldest clips make room"
            deleted = [old for old in order if old in before and old not in after]  # oldest first
            if deleted:  # the newest of those deleted could not have stayed beside the new clip
                assert sum(after.values()) + before[deleted[-1]] > capacity - slack, (
                    f"{deleted[-1]} deleted for nothing"
                )
            before = after
        assert leftovers(disk) == []
        print(f"{megabytes} MB: kept {sorted(before)} of {order}")


def test_bad_settings_are_clear_errors(tmp_path: Path):
    with pytest.raises(EdgewatchError, match="positive fps"):
        recorder(tmp_path, fps=0.0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EdgewatchError, match="cannot create folder"):
        recorder(tmp_path, path=blocker)
