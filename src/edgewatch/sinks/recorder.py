"""Clips and snapshots of what mattered: the seconds before an event, the event, and the seconds after.

The recorder keeps the last `pre_seconds` of frames in memory as JPEG, so a clip can start before
the event that triggers it. Each recorded event becomes one group of files under
`<storage>/media/<camera>/<YYYY-MM-DD>/`: `<id>.mp4`, `<id>.jpg`, `<id>-boxes.jpg` and `<id>.json`
(docs/recording.md). Encoding and writing run in a background stage, so the delivery thread only pays
for one JPEG encoding per frame.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import json
import logging
import os
import re
import shutil
import statistics
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import supervision as sv

from edgewatch.analytics.events import event_id
from edgewatch.annotate import Annotator
from edgewatch.config import RecordConfig, StorageConfig
from edgewatch.errors import EdgewatchError
from edgewatch.models.base import make_detections
from edgewatch.pipeline.result import FrameResult
from edgewatch.pipeline.stage import Channel, Stage
from edgewatch.sinks.video import VIDEO_CODECS, _fit

log = logging.getLogger(__name__)

#: JPEG quality of buffered frames: about 10x smaller than raw, and no visible loss once in H.264
JPEG_QUALITY = 85
#: the buffer holds this much more than `pre_seconds`: some events are stamped before the frame that
#: raises them (an object is confirmed a few frames after its first sighting), and still get a full pre-roll
LATE_SECONDS = 1.0
#: the same encoder settings as `VideoWriter` (docs/formats.md), so clips play wherever `--out` videos do
H264_OPTIONS = {"preset": "veryfast", "crf": "23"}
#: errors that mean the disk (or the user's quota) is full: make room, if deleting old clips can, and try once more
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
#: blocks asked for beyond a group's own, when making room: the new day folder, the rename's directory entries
_SPARE_BLOCKS = 4
#: a phase that starts a lasting thing, and the one that ends it; events without a phase are instants
_STARTS, _ENDS = frozenset({"start", "enter"}), frozenset({"end", "exit"})
#: files of one event group, by how their names end; anything else under media/ is left alone
_GROUP_SUFFIXES = ("-boxes.jpg", ".mp4", ".jpg", ".json")
_TEMPORARY = ".tmp"
_EPS = 1e-6  # video times are sums of floats: a frame at 2.0000000001 s is the frame at 2 s


@dataclass(frozen=True, slots=True)
class _Still:
    """One buffered frame: its JPEG and the boxes found in it (for the boxes snapshot)."""

    index: int
    time: float
    jpeg: bytes
    detections: sv.Detections


@dataclass(slots=True)
class _Clip:
    """An event being recorded: frames from `start` (inclusive) to `end` (exclusive, None until known)."""

    id: str
    kind: str
    key: str  # how its later phases find it: the event id, or the zone and object for zone visits
    start: float
    wall_time: str  # the first event's, which names the day folder
    events: list[dict[str, Any]]
    frames: list[_Still]
    end: float | None = None
    unfinished: str | None = None  # why it was saved before its planned end


class Recorder:
    """A sink that saves a clip, snapshots and a JSON record for each event of the chosen types.

    A clip runs from `pre_seconds` before the event to `post_seconds` after it ends (for incidents,
    objects and zone visits, the end event with the same id, or the same zone and object) or after the
    event itself (line crossings, state changes). Clips of overlapping events are separate files.

    Args:
        camera: the camera's name: the folder under `<storage>/media/`.
        config: seconds before and after, the event types that start a clip, and whether to save snapshots.
        storage: where media goes, and how long / how much of it is kept.
        fps: the rate of the frames this sink receives; None estimates it from their times.
        on_saved: called with the paths of an event's files once they are all complete, on the
            recorder's own thread (an uploader can queue them; it must not take long).
        max_clip_seconds: a clip is saved as it stands once this long; its frames wait in memory as JPEG
            until then (about 1.5 MB/s at 720p and 15 fps).

    Example:
        >>> from edgewatch.config import RecordConfig, StorageConfig
        >>> recorder = Recorder("street", RecordConfig(pre_seconds=2), StorageConfig(path="data"), fps=15)  # doctest: +SKIP
        >>> pipeline = Pipeline(source, detector, camera="street", analytics=analytics, sinks=[recorder])  # doctest: +SKIP
        >>> pipeline.run(); recorder.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        camera: str,
        config: RecordConfig,
        storage: StorageConfig,
        fps: float | None,
        on_saved: Callable[[list[Path]], None] | None = None,
        *,
        max_clip_seconds: float = 300.0,
    ) -> None:
        if fps is not None and not fps > 0:
            raise EdgewatchError(f"cannot record {camera} at {fps} frames/s", "give a positive fps, or None")
        self.camera = camera
        self.config = config
        self.storage = storage
        self.fps = fps
        self.max_clip_seconds = max_clip_seconds
        self.media_root = Path(storage.path) / "media"
        #: event groups saved, and clips dropped (full disk, unwritable folder)
        self.saved = 0
        self.dropped = 0
        self._on_saved = on_saved
        folder = self.media_root / _safe_name(camera)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EdgewatchError(
                f"cannot create folder {folder}: {error.strerror}", "choose a writable storage: path"
            ) from None
        for stale in folder.glob(f"*/.*{_TEMPORARY}"):  # left by a crash: never a finished file
            stale.unlink(missing_ok=True)
        prune(self.media_root, storage.max_days, storage.max_gb)
        self._buffer: deque[_Still] = deque()
        self._open: dict[str, _Clip] = {}
        self._latest: float | None = None
        self._annotator = Annotator()
        self._stop = threading.Event()
        self._clips: Channel[_Clip] = Channel(8, stop=self._stop)
        self._writer = Stage(f"{camera}:record", self._clips, self._save, None, self._stop)
        self._writer.start()
        self._closed = False

    # --- the delivery thread ----------------------------------------------------------------------

    def write(self, result: FrameResult) -> None:
        """Buffer the frame, and add it to the clips being recorded."""
        if self._closed:
            return
        self._raise_writer_error()
        frame = result.frame
        if self._latest is not None and frame.time < self._latest - _EPS:
            self._new_timeline()  # a looped or restarted source: earlier frames belong to another time line
        self._latest = frame.time
        ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise EdgewatchError(f"cannot encode frame {frame.index} of {self.camera} as JPEG", "check the source")
        still = _Still(frame.index, frame.time, jpeg.tobytes(), result.detections)
        self._buffer.append(still)
        horizon = frame.time - self.config.pre_seconds - LATE_SECONDS - _EPS
        while self._buffer[0].time < horizon:
            self._buffer.popleft()
        for clip in list(self._open.values()):
            if clip.end is not None and frame.time >= clip.end - _EPS:
                self._finish(clip)
                continue
            if frame.time - clip.start >= self.max_clip_seconds - _EPS:
                clip.unfinished = f"longer than {self.max_clip_seconds:g} s"
                self._finish(clip)
                continue
            clip.frames.append(still)

    def event(self, event: dict[str, Any]) -> None:
        """Start, extend or end the clip of an event (see docs/formats.md for the event shapes)."""
        kind = event.get("type")
        if self._closed or kind not in self.config.events:
            return
        phase = event.get("phase")
        key = _lasting_key(event)
        time = float(event["time"])
        if phase is not None and phase not in _STARTS:  # update or end of something being recorded
            clip = self._open.get(key) if key is not None else None
            if clip is None:
                return  # it started before the recorder did, or its clip was saved already
            clip.events.append(event)
            if phase in _ENDS:
                clip.end = time + self.config.post_seconds
                self._finish_if_past(clip)
            return
        if key is not None and key in self._open:
            return  # started twice: the first start's clip goes on
        identifier = str(event.get("id") or event_id())
        start = time - self.config.pre_seconds
        clip = _Clip(
            id=identifier,
            kind=str(kind),
            key=key or identifier,
            start=start,
            wall_time=str(event.get("wall_time", "")),
            events=[event],
            frames=[still for still in self._buffer if still.time >= start - _EPS],
        )
        if phase is None:
            clip.end = time + self.config.post_seconds
        self._open[clip.key] = clip
        self._finish_if_past(clip)

    def close(self) -> None:
        """Save the clips still open (their end never came), wait for every file, and stop."""
        if self._closed:
            return
        self._closed = True
        for clip in list(self._open.values()):
            # an instant's clip whose last frame is in is complete, even if no later frame came to say so
            interval = 1 / (self.fps or _estimate_fps(clip.frames))
            if clip.end is None or self._latest is None or self._latest + interval < clip.end - _EPS:
                clip.unfinished = "the recorder closed first"
            self._finish(clip)
        self._clips.close()
        self._writer.join()
        self._buffer.clear()
        self._raise_writer_error()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def buffered_bytes(self) -> int:
        """Bytes of JPEG held for the pre-event buffer (frames of open clips share them)."""
        return sum(len(still.jpeg) for still in self._buffer)

    @property
    def buffered_frames(self) -> int:
        return len(self._buffer)

    def _finish_if_past(self, clip: _Clip) -> None:
        # an object's end comes `gone_after` seconds after its last sighting: its clip may be due already
        if clip.end is not None and self._latest is not None and self._latest >= clip.end - _EPS:
            self._finish(clip)

    def _finish(self, clip: _Clip) -> None:
        del self._open[clip.key]
        if clip.end is not None:
            clip.frames = [still for still in clip.frames if still.time < clip.end - _EPS]
        if not self._clips.put(clip):
            self._raise_writer_error()

    def _new_timeline(self) -> None:
        for clip in list(self._open.values()):
            clip.unfinished = "the source's time went back"
            self._finish(clip)
        self._buffer.clear()

    def _raise_writer_error(self) -> None:
        if self._writer.error is not None:
            raise self._writer.error

    # --- the recorder's own thread ----------------------------------------------------------------

    def _save(self, clip: _Clip) -> None:
        if not clip.frames:
            log.warning("%s: no frames for the clip of %s %s; nothing saved", self.camera, clip.kind, clip.id)
            self.dropped += 1
            return
        try:
            # encoded in memory first: the bytes a full disk must find room for are then known exactly
            files = self._render(clip)
        except (OSError, av.error.FFmpegError) as error:
            log.warning("%s: dropped the clip of %s %s: %s", self.camera, clip.kind, clip.id, error)
            self.dropped += 1
            return
        folder = self.media_root / _safe_name(self.camera) / _day(clip.wall_time)
        for attempt in (1, 2):
            try:
                paths = _write_group(folder, files)
                break
            except OSError as error:
                if error.errno in DISK_FULL and attempt == 1:
                    needed = _disk_bytes(folder, [len(data) for _, data in files])
                    deleted = _make_room(self.media_root, needed, quota=error.errno == errno.EDQUOT)
                    if deleted is not None:
                        if deleted:
                            log.warning(
                                "%s: disk full; deleted the oldest %s (%.1f MB) to save %s %s", self.camera,
                                f"{len(deleted)} clips" if len(deleted) > 1 else "clip",
                                sum(group.disk for group in deleted) / 1e6, clip.kind, clip.id,
                            )  # fmt: skip
                        continue
                    log.warning(
                        "%s: dropped the clip of %s %s: %s; it needs %.1f MB, more than the disk would have "
                        "with every saved clip deleted, so they are all kept",
                        self.camera, clip.kind, clip.id, error.strerror, needed / 1e6,
                    )  # fmt: skip
                else:
                    log.warning("%s: dropped the clip of %s %s: %s", self.camera, clip.kind, clip.id, error)
                self.dropped += 1
                return
        self.saved += 1
        if self._on_saved is not None:
            try:
                self._on_saved(paths)
            except Exception:  # an uploader's failure must not stop the recording
                log.warning("%s: on_saved failed for %s", self.camera, clip.id, exc_info=True)
        prune(self.media_root, self.storage.max_days, self.storage.max_gb, keep=paths)

    def _render(self, clip: _Clip) -> list[tuple[str, bytes]]:
        """The clip's files, as (name, bytes), the record last."""
        name = _safe_name(clip.id)
        fps = self.fps or _estimate_fps(clip.frames)
        rendered = [(f"{name}.mp4", _encode(clip.frames, fps))]
        files = {"video": f"{name}.mp4"}
        snapshot_frame = None
        if self.config.snapshots:
            still, boxes = self._snapshot(clip)
            drawn = self._annotator.draw(_decode(still.jpeg), boxes)
            rendered += [(f"{name}.jpg", still.jpeg), (f"{name}-boxes.jpg", _jpeg(drawn))]
            files |= {"snapshot": f"{name}.jpg", "boxes": f"{name}-boxes.jpg"}
            snapshot_frame = still.index
        record = _record(self.camera, clip, fps, files, snapshot_frame)
        rendered.append((f"{name}.json", (json.dumps(record, indent=1, default=str) + "\n").encode()))
        return rendered

    def _snapshot(self, clip: _Clip) -> tuple[_Still, sv.Detections]:
        """The frame that shows the event best, and the event's boxes in it."""
        first, last = clip.events[0], clip.events[-1]
        best_frame = last.get("best_frame") if clip.kind == "object" else None
        if best_frame is not None:
            best = next((still for still in clip.frames if still.index == best_frame), None)
            if best is not None:
                return best, _event_boxes(best, last)
        still = min(clip.frames, key=lambda still: abs(still.time - float(first["time"])))
        return still, _event_boxes(still, first)


def prune(
    media_root: str | Path,
    max_days: float | None,
    max_gb: float | None,
    *,
    keep: Collection[Path] = (),
    now: datetime | None = None,
) -> list[Path]:
    """Delete whole event file groups, oldest first: those older than `max_days`, then as many as it
    takes to bring the total under `max_gb` (10^9 bytes).

    A group is the files of one event (`<id>.mp4`, `.jpg`, `-boxes.jpg`, `.json`); its age is its
    newest file's modification time. Other files are left alone, as are the groups in `keep`.

    Returns:
        The paths deleted.

    Example:
        >>> prune("edgewatch-data/media", max_days=30, max_gb=50)  # doctest: +SKIP
        []
    """
    root = Path(media_root)
    if max_days is None and max_gb is None:
        return []
    kept = {Path(path) for path in keep}
    groups = _groups(root)
    total = sum(group.size for group in groups)
    oldest_allowed = ((now or datetime.now(UTC)) - timedelta(days=max_days)).timestamp() if max_days else None
    removed: list[Path] = []
    for group in groups:
        too_old = oldest_allowed is not None and group.modified < oldest_allowed
        too_big = max_gb is not None and total > max_gb * 1e9
        if not (too_old or too_big):
            break  # the rest are newer, and the total fits
        if kept.intersection(group.files):
            continue
        removed += group.delete()
        total -= group.size
    _remove_empty_days(root)
    return removed


@dataclass(slots=True)
class _Group:
    files: list[Path] = field(default_factory=list)
    size: int = 0
    disk: int = 0  # bytes its files take on the disk, whole blocks: what deleting it frees
    modified: float = 0.0

    def delete(self) -> list[Path]:
        for path in self.files:
            path.unlink(missing_ok=True)  # another camera's recorder may be pruning the same folder
        return self.files


def _groups(root: Path) -> list[_Group]:
    """Event file groups under `root/<camera>/<day>/`, oldest first."""
    groups: dict[tuple[Path, str], _Group] = {}
    for path in root.glob("*/*/*"):
        suffix = next((suffix for suffix in _GROUP_SUFFIXES if path.name.endswith(suffix)), None)
        if suffix is None or path.name.startswith("."):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        group = groups.setdefault((path.parent, path.name[: -len(suffix)]), _Group())
        group.files.append(path)
        group.size += stat.st_size
        group.disk += stat.st_blocks * 512  # st_blocks counts 512-byte units on every file system
        group.modified = max(group.modified, stat.st_mtime)
    return sorted(groups.values(), key=lambda group: group.modified)


def _write_group(folder: Path, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write every file under a temporary name, then rename them all in order (the record last); on
    any error, remove what this group wrote and nothing else, so a group is whole or absent."""
    written: list[tuple[Path, Path]] = []
    renamed = 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            written.append((folder / f".{name}{_TEMPORARY}", folder / name))
            written[-1][0].write_bytes(data)
        for done, (temporary, final) in enumerate(written):
            temporary.replace(final)
            renamed = done + 1
    except BaseException:
        for done, (temporary, final) in enumerate(written):
            temporary.unlink(missing_ok=True)
            if done < renamed:
                final.unlink(missing_ok=True)
        raise
    return [final for _, final in written]


def _disk_bytes(folder: Path, sizes: Sequence[int]) -> int:
    """What files of these sizes take on the disk of `folder`: whole blocks, and a few more for the
    folder entries and file system bookkeeping."""
    probe = next((path for path in (folder, *folder.parents) if path.exists()), Path("/"))
    block = os.statvfs(probe).f_frsize or 4096
    return sum(-(-size // block) * block for size in sizes) + _SPARE_BLOCKS * block


def _make_room(root: Path, needed: int, quota: bool = False) -> list[_Group] | None:
    """Delete the oldest groups that free enough for `needed` bytes, and only those.

    Args:
        quota: the user's quota is what ran out, which the disk's free space does not show: count only
            what deleting frees.

    Returns:
        The groups deleted (none when the disk has room now), or None when not even deleting every
        group would make room: nothing is deleted then.
    """
    free = 0 if quota else shutil.disk_usage(root).free
    groups, freed = [], 0
    for group in _groups(root):
        if free + freed >= needed:
            break
        groups.append(group)
        freed += group.disk
    if free + freed < needed:
        return None
    for group in groups:
        group.delete()
    _remove_empty_days(root)
    return groups


def _remove_empty_days(root: Path) -> None:
    # recent day folders stay: a recorder may have just made one to write into
    recent = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    for day in root.glob("*/*"):
        if day.is_dir() and day.name < recent and not any(day.iterdir()):
            with contextlib.suppress(OSError):
                day.rmdir()


def _encode(stills: Sequence[_Still], fps: float) -> bytes:
    """An H.264 MP4 of the stills; each frame's time stamp follows its video time, so a clip whose
    source dropped frames still lasts as long as what it shows."""
    rate = Fraction(fps).limit_denominator(1001)
    buffer = io.BytesIO()
    container = av.open(buffer, mode="w", format="mp4")
    try:
        stream = container.add_stream(VIDEO_CODECS[".mp4"], rate=rate, options=H264_OPTIONS)
        height, width = _decode(stills[0].jpeg).shape[:2]
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        pts, origin = -1, stills[0].time
        for still in stills:
            frame = av.VideoFrame.from_ndarray(_fit(_decode(still.jpeg), stream.width, stream.height), format="bgr24")
            pts = max(pts + 1, round((still.time - origin) * rate))
            frame.pts, frame.time_base = pts, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    except BaseException:
        with contextlib.suppress(OSError, av.error.FFmpegError):  # the first error is the one to report
            container.close()
        raise
    container.close()
    return buffer.getvalue()


def _record(camera: str, clip: _Clip, fps: float, files: dict[str, str], snapshot_frame: int | None) -> dict[str, Any]:
    return {
        "id": clip.id,
        "camera": camera,
        "type": clip.kind,
        "start": round(clip.frames[0].time, 3),
        "end": round(clip.frames[-1].time + 1 / fps, 3),
        "frames": len(clip.frames),
        "fps": round(fps, 3),
        "complete": clip.unfinished is None,
        **({"unfinished": clip.unfinished} if clip.unfinished else {}),
        "files": files,
        "snapshot_frame": snapshot_frame,
        "events": clip.events,
    }


def _event_boxes(still: _Still, event: dict[str, Any]) -> sv.Detections:
    """The event's objects in the frame: the best box an object's end names, else the boxes of its
    track ids; every box when the event names no object."""
    if event.get("best_box") is not None and event.get("best_frame") == still.index:
        boxes = make_detections(np.array([event["best_box"]]), np.array([event.get("score", 1.0)]), np.array([0]),
                                [str(event.get("label", ""))])  # fmt: skip
        boxes.tracker_id = np.array([-1 if event.get("track_id") is None else event["track_id"]])
        return boxes
    ids = event.get("track_ids") or ([event["track_id"]] if event.get("track_id") is not None else [])
    detections = still.detections
    if not ids:
        return detections
    if detections.tracker_id is None:
        return sv.Detections.empty()
    return detections[np.isin(detections.tracker_id, ids)]


def _lasting_key(event: dict[str, Any]) -> str | None:
    """What ties the phases of a lasting thing together: its id, or for zone visits (which have none)
    the zone and the object."""
    if event.get("phase") is None:
        return None
    if event.get("type") == "zone":
        return f"zone:{event.get('zone')}:{event.get('track_id')}"
    return str(event["id"]) if event.get("id") is not None else None


def _estimate_fps(stills: Sequence[_Still]) -> float:
    gaps = [b.time - a.time for a, b in itertools.pairwise(stills) if b.time > a.time]
    return 1 / statistics.median(gaps) if gaps else 1.0


def _day(wall_time: str) -> str:
    """The UTC day of an event's wall time (today's when it has none)."""
    try:
        moment = datetime.fromisoformat(wall_time)
    except ValueError:
        moment = datetime.now(UTC)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date().isoformat()


def _safe_name(text: str) -> str:
    # ids and camera names become file names: nothing that could leave the folder
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".") or "_"


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def _jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(errno.EIO, "cannot encode the snapshot as JPEG")
    return encoded.tobytes()
