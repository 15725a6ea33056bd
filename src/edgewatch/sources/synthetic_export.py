"""Synthetic scenes written out as a video file and its ground truth, for tools and people that take
files: `<kind>.mp4` (H.264) and `<kind>.truth.json`.

Example:
    >>> video, truth = write_scene("pets", Path("out"), seed=2, seconds=10)  # doctest: +SKIP
    >>> json.loads(truth.read_text())["together"]["cat+dog2"]  # doctest: +SKIP
    [[1.52, 8.4]]
"""

from __future__ import annotations

import json
from dataclasses import asdict
from itertools import combinations
from pathlib import Path
from typing import Any

import supervision as sv

from edgewatch.annotate import Annotator
from edgewatch.errors import EdgewatchError
from edgewatch.frame import Frame
from edgewatch.pipeline.result import FrameResult
from edgewatch.sinks.video import VideoWriter
from edgewatch.sources.door import DoorScene
from edgewatch.sources.pets import LABELS as PET_LABELS
from edgewatch.sources.pets import PetsScene
from edgewatch.sources.synthetic import Scene, StreetScene

SCENES = {"street": StreetScene, "pets": PetsScene, "door": DoorScene}


def write_scene(kind: str, out_dir: Path, seed: int = 0, seconds: float | None = None) -> tuple[Path, Path]:
    """Write scene `kind` (`street`, `pets` or `door`) to `out_dir` as `<kind>.mp4` and
    `<kind>.truth.json`, and return both paths.

    The JSON always holds `kind`, `seed`, `fps`, `width`, `height` and `frame_count`, and then:
    street: `tracks` (one per object, as `StreetScene.tracks()`) and the `crossings` of a vertical
    `line` through the middle of the frame; pets: `tracks` (each with `boxes`, one
    `[frame, x1, y1, x2, y2]` per frame in view) and `together`, the intervals in seconds during which
    each pair of animals (`cat+dog2`) and all three are in view; door: `open_intervals` in seconds.

    Args:
        kind: which scene.
        out_dir: folder to write into (made when missing).
        seed: the scene's seed.
        seconds: its length; None for the scene's own default.

    Raises:
        EdgewatchError: for an unknown kind, or a video that cannot be written.
    """
    if kind not in SCENES:
        raise EdgewatchError(f"unknown synthetic scene '{kind}'", f"use one of {', '.join(SCENES)}")
    scene = SCENES[kind](seed=seed) if seconds is None else SCENES[kind](seed=seed, seconds=seconds)
    out_dir = Path(out_dir)
    video = _write_video(scene, kind, out_dir / f"{kind}.mp4")
    truth = {
        "kind": kind,
        "seed": seed,
        "fps": scene.fps,
        "width": scene.width,
        "height": scene.height,
        "frame_count": scene.frame_count,
        **_truth(scene),
    }
    truth_path = out_dir / f"{kind}.truth.json"
    truth_path.write_text(json.dumps(truth) + "\n", encoding="utf-8")
    return video, truth_path


def _write_video(scene: Scene, kind: str, path: Path) -> Path:
    writer = VideoWriter(path, scene.fps)
    annotator = Annotator()  # with no detections it draws nothing: the frames go out as rendered
    try:
        for index in range(scene.frame_count):
            frame = Frame(scene.render(index)[0], kind, index, index / scene.fps)
            writer.write(FrameResult(frame, sv.Detections.empty(), 0.0, annotator))
    finally:
        writer.close()
    return path


def _truth(scene: Scene) -> dict[str, Any]:
    if isinstance(scene, StreetScene):
        start, end = (scene.width / 2, 0.0), (scene.width / 2, float(scene.height))
        return {
            "tracks": [asdict(track) for track in scene.tracks()],
            "line": {"start": list(start), "end": list(end)},
            "crossings": [
                {"frame": frame, "track_id": track_id, "label": label, "direction": direction}
                for frame, track_id, label, direction in scene.crossings(start, end)
            ],
        }
    if isinstance(scene, PetsScene):
        return {"tracks": _pet_tracks(scene), "together": _together(scene)}
    if isinstance(scene, DoorScene):
        return {"open_intervals": [list(interval) for interval in scene.open_intervals()]}
    raise TypeError(f"no ground truth for {type(scene).__name__}")


def _pet_tracks(scene: PetsScene) -> list[dict[str, Any]]:
    boxes: dict[int, list[list[float]]] = {}
    for frame in range(scene.frame_count):
        for item in scene.truth(frame):
            boxes.setdefault(item.track_id, []).append([frame, *(round(value, 2) for value in item.box)])
    return [
        {
            "track_id": visit.track_id,
            "label": visit.label,
            "entered": visit.entered,
            "exited": visit.exited if visit.last_frame < scene.frame_count else None,
            "boxes": boxes[visit.track_id],
        }
        for visit in scene.visits
        if visit.track_id in boxes
    ]


def _together(scene: PetsScene) -> dict[str, list[list[float]]]:
    groups = [*combinations(PET_LABELS, 2), PET_LABELS]
    return {"+".join(group): [list(interval) for interval in scene.together(group)] for group in groups}
