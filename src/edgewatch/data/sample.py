"""Choosing the frames of a video or stream worth labelling (`edgewatch data sample`).

A camera that watches a door spends most of its time on a shut door: frames taken at a fixed interval
are nearly all alike, and a labeller's hour goes on frames that teach a model nothing new. Each method
reads the source once, in order, and keeps `budget` frames:

* `time`: frames at a fixed interval over what was read. The baseline, and what a camera saving a frame
  every so often gives. For a stream of unknown length (every-N-th, not a reservoir) the candidates are
  every N-th frame, N doubling whenever more than four times the budget have gathered; the frames kept
  are then evenly spaced to within one candidate, however long the stream ran.
* `diverse`: frames unlike the ones already kept. A frame's feature is a HOG descriptor of a small grey
  copy with the whole picture as one block, so that one normalisation takes out the light's overall
  level and flat wall cannot count as much as an edge, beside a hue-saturation histogram (soft bins, at
  half the weight: light shifts and clips colours more than it moves edges) of the pixels that are not
  near black (where hue is noise). Farthest-point (k-center) selection takes the frame furthest from
  every kept one, until the furthest is no further than `NOVELTY` times what neighbouring frames
  differ by (noise, drifting light): all that is left then is a near copy of something kept, and the
  rest of the budget goes round the groups of near copies in turn, so that a rare look (the open door)
  gets as many frames as a common one (the shut door) rather than a share by frequency.
* `motion`: the frames that changed most from the frame before (mean absolute difference of small grey
  copies), the biggest change of each stretch of frames, and no two from neighbouring stretches.
* `surprise` (needs a model): where the model is likely wrong. First short-lived class flips (the top
  class changes and changes back within `FLIP_SECONDS`), then unsure predictions (a classification or
  a box scoring inside `UNSURE_BAND`), then lasting changes of the top class, each group by how unsure
  the model was, spread out in time. When fewer frames than the budget are surprising, the rest of it
  goes to the frames of the rarest predicted classes: a labeller learns more from them than from more
  of the common class.

Memory stays bounded for a long video: a method keeps one candidate per stretch of frames, at most
`MAX_CANDIDATES` at a time (or twice the budget, if more; `time` needs only four times the budget),
as a feature vector (3 KB) or a model prediction in memory and as a JPEG in a scratch folder inside
the output (removed at the end), never as a decoded frame. When a stream of unknown length fills the
pool, neighbouring stretches merge pairwise and the pool halves. A live source can be stopped with
Ctrl-C; what was read is kept.

The output folder gets `images/frame_<index>.jpg` (the frames as read, no drawings, JPEG quality 95),
draft annotations in the chosen format (the model's boxes above its default minimum score, with their
scores; none without a model, or for a classifier, whose label goes in the manifest instead) and
`manifest.json`: the source, method, budget, seed, frames read and, per kept frame, its file, frame
index, time, why it was kept and what the model predicted.

Example:
    >>> result = sample("door.mp4", "to-label/", budget=40, by="diverse", detector="door")  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
    3000 frames read, 40 kept by diverse in to-label (closed 22, open 18)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from edgewatch.data.datasets import check_format, check_target, write_annotations
from edgewatch.errors import EdgewatchError
from edgewatch.models import Detector, load_model
from edgewatch.progress import progress_bar
from edgewatch.sources import Source, open_source

__all__ = ["FLIP_SECONDS", "MAX_CANDIDATES", "METHODS", "UNSURE_BAND", "SampleResult", "frame_feature", "sample"]

log = logging.getLogger(__name__)

METHODS = ("time", "diverse", "motion", "surprise")
#: candidates kept at once (features in memory, JPEGs in the scratch folder), unless twice the budget is more
MAX_CANDIDATES = 1000
#: a classification or a box scoring inside this band could have gone either way
UNSURE_BAND = (0.2, 0.8)
#: a top class that comes back within this many seconds of video was a flip, not a change
FLIP_SECONDS = 1.0
#: `diverse` stops seeking the furthest frame once it is this many times nearer than neighbouring frames
#: differ by (the median step between consecutive candidates)
NOVELTY = 5.0
JPEG_QUALITY = 95  # near-lossless: these frames are training data
#: the small copy that motion and features are measured on (fixed, so mixed image sizes compare)
THUMB_SIZE = (160, 90)
DARK_BELOW = 40  # V of HSV: hue and saturation of darker pixels are noise
#: the colour histogram's length beside the HOG descriptor's 1: light shifts colours (and clips them to
#: white) far more than it moves edges, and a frame should not count as new for its light alone
COLOUR_WEIGHT = 0.5

_HOG = cv2.HOGDescriptor((64, 64), (64, 64), (8, 8), (8, 8), 9)  # one block: one normalisation per frame
_TIERS = {"flip": 0, "unsure": 1, "change": 2, "rare": 3}


@dataclass
class SampleResult:
    """What `sample` read and kept.

    Attributes:
        source: the source as opened (a URL without its password).
        method: `time`, `diverse`, `motion` or `surprise`.
        target: the output folder.
        budget: frames asked for.
        frames_read: frames read from the source.
        kept: frames kept (fewer than `budget` when fewer were read).
        balance: with a model, predicted classes of the kept set: frames per label for a classifier,
            boxes per label for a detector; None without a model.
        balance_of: `frames` or `boxes`, what `balance` counts.
        reasons: kept frames per reason (`surprise` counts its kinds: flip, unsure, change, rare).

    Example:
        >>> SampleResult("a.mp4", "time", Path("out"), 40, 1200, 40, {"closed": 38, "open": 2}).summary()
        '1200 frames read, 40 kept by time in out (closed 38, open 2)'
    """

    source: str
    method: str
    target: Path
    budget: int
    frames_read: int
    kept: int
    balance: dict[str, int] | None = None
    balance_of: str = "frames"
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: frames read and kept, the method, the folder and, with a model, the class balance."""
        kept = f"{'all ' if self.kept == self.frames_read else ''}{self.kept} kept"
        if self.kept < self.budget:
            kept += f" (fewer than the budget of {self.budget})"
        line = f"{self.frames_read} frames read, {kept} by {self.method} in {self.target}"
        if self.balance is not None:
            counts = ", ".join(f"{label} {count}" for label, count in self.balance.items()) or "nothing"
            line += f" ({counts}{' boxes' if self.balance_of == 'boxes' and self.balance else ''})"
        return line


def sample(
    source: str | int | Path | Source,
    target: str | Path,
    budget: int,
    by: str = "diverse",
    detector: str | None = None,
    model: str | Path | None = None,
    format: str = "voc",
    max_frames: int | None = None,
    seed: int = 0,
    force: bool = False,
) -> SampleResult:
    """Read `source` and keep the `budget` frames most worth labelling, with the model's drafts.

    Args:
        source: anything `open_source` opens (video file, image folder, camera index, stream URL,
            `synthetic:door?seed=3`), or a source already open (it is closed at the end).
        target: the output folder; it must be new or empty unless `force`.
        budget: frames to keep; all are kept when fewer are read.
        by: `time`, `diverse`, `motion` or `surprise` (see the module docstring).
        detector: a built-in model (`door`, `street`, `hog`, ...) for drafts, and for `surprise`.
        model: a model file instead (`.onnx`, or OpenVINO `.xml`).
        format: the drafts' format: `voc`, `csv`, `sagemaker`, `coco` or `yolo`.
        max_frames: read at most this many frames.
        seed: ties are broken the same way for the same seed.
        force: write into a folder that is not empty (replacing `images/`, `manifest.json` and the
            annotations of `format`).

    Returns:
        What was read and kept; `summary()` gives it as one line.

    Raises:
        EdgewatchError: a bad option, `surprise` without a model, a target that is not empty without
            `force`, a source that is missing or unreadable or has no frames.

    Example:
        >>> result = sample("synthetic:door?seed=3&seconds=60", "to-label/", budget=20, by="time")  # doctest: +SKIP
        >>> print(result.summary())  # doctest: +SKIP
        1500 frames read, 20 kept by time in to-label
    """
    if by not in METHODS:
        raise EdgewatchError(f"unknown sampling method '{by}'", f"use one of {', '.join(METHODS)}")
    if budget < 1:
        raise EdgewatchError(f"budget {budget} keeps nothing", "give a budget of 1 frame or more")
    if max_frames is not None and max_frames < 1:
        raise EdgewatchError(f"max_frames {max_frames} reads nothing", "give 1 or more, or leave it out")
    if detector is not None and model is not None:
        raise EdgewatchError("give a detector or a model, not both", "--model runs a model file instead")
    if by == "surprise" and detector is None and model is None:
        raise EdgewatchError(
            "sampling by surprise needs a model to be surprised",
            "add --detector NAME (e.g. door) or --model FILE.onnx, or sample --by diverse",
        )
    check_format(format)
    target = Path(target)
    check_target(target, force)
    opened = source if isinstance(source, Source) else open_source(source)
    with opened:
        found = _load_model(detector, model) if detector is not None or model is not None else None
        try:
            return _sample(opened, target, budget, by, found, format, max_frames, seed, force)
        finally:
            if found is not None:
                found.detector.close()


# --- what is kept of a frame ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Model:
    detector: Detector
    name: str


@dataclass(slots=True)
class _Prediction:
    """What the model said of one frame.

    `label` is a classifier's class, or the label of a detector's best box (None without boxes);
    `unsure` whether the classification or a box scored inside `UNSURE_BAND`; `doubtful` is the score
    nearest 0.5 (a detector's most doubtful box), and `doubt` 1 for a score of 0.5, falling to 0 at 0
    and 1; `drafts` are the boxes above the detector's default minimum score."""

    label: str | None
    score: float | None
    unsure: bool
    doubtful: float | None
    drafts: sv.Detections
    classifier: bool

    @property
    def doubt(self) -> float:
        return 1 - 2 * abs(self.doubtful - 0.5) if self.doubtful is not None else 0.0

    def manifest(self) -> dict[str, Any]:
        if self.classifier:
            return {"label": self.label, "score": _round(self.score)}
        labels = Counter(str(name) for name in self.drafts.data.get("class_name", []))
        return {"boxes": len(self.drafts), "labels": dict(labels), "top": self.label, "score": _round(self.score)}


@dataclass(slots=True)
class _Candidate:
    """The frame that stands for one stretch (window) of the source: its JPEG in the scratch folder and
    what a method needs of it, never the decoded picture."""

    index: int
    window: int
    file: Path
    name: str | None = None  # the image file it came from, for an image folder
    change: float = 0.0  # motion: mean absolute difference from the frame before, in grey levels
    feature: np.ndarray | None = None  # diverse
    prediction: _Prediction | None = None  # surprise


def _load_model(detector: str | None, model: str | Path | None) -> _Model:
    spec = str(detector if detector is not None else model)
    return _Model(load_model(spec), Path(spec).name)


def _predict(detector: Detector, image: np.ndarray) -> _Prediction:
    detections = detector.detect(image)
    classification = detections.metadata.get("classification")
    if classification is not None:
        score = float(classification["score"])
        return _Prediction(str(classification["label"]), score, *_doubtful(np.array([score])), detections, True)
    scores = detections.confidence if detections.confidence is not None else np.ones(len(detections))
    shown = scores >= detector.default_min_score
    drafts = detections[shown] if len(detections) else detections
    label, score = None, None
    if len(drafts):
        best = int(np.argmax(scores[shown]))
        label, score = str(drafts.data["class_name"][best]), float(scores[shown][best])
    return _Prediction(label, score, *_doubtful(scores), drafts, False)


def _doubtful(scores: np.ndarray) -> tuple[bool, float | None]:
    """Whether a score is inside `UNSURE_BAND`, and the score nearest 0.5 (None without scores)."""
    if len(scores) == 0:
        return False, None
    inside = bool(np.any((scores > UNSURE_BAND[0]) & (scores < UNSURE_BAND[1])))
    return inside, float(scores[np.argmin(np.abs(scores - 0.5))])


def _thumb(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(_thumb(image), cv2.COLOR_BGR2GRAY)


def frame_feature(image: np.ndarray) -> np.ndarray:
    """The `diverse` feature of a BGR frame: HOG of a 64×64 grey copy (576 values, L2-normalised as
    one block) beside an 18×8 hue-saturation histogram of its pixels that are not near black
    (L2-normalised, then scaled to `COLOUR_WEIGHT`), as float32.

    Example:
        >>> frame_feature(np.zeros((360, 640, 3), np.uint8)).shape
        (720,)
    """
    small = _thumb(image)
    hog = _HOG.compute(cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (64, 64), interpolation=cv2.INTER_AREA))
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    lit = cv2.inRange(hsv, (0, 0, DARK_BELOW), (180, 255, 255))
    colours = cv2.calcHist([hsv], [0, 1], lit, [18, 8], [0, 180, 0, 256])
    # Soft bins: a wall whose saturation sits on a bin edge must not jump bins with a grey level of
    # light. Hue is a circle, so its ends are joined before the blur.
    colours = cv2.GaussianBlur(np.pad(colours, ((2, 2), (0, 0)), mode="wrap"), (5, 5), 1.0)[2:-2]
    hog, colours = (part.ravel() / (np.linalg.norm(part) + 1e-9) for part in (hog, colours))
    return np.concatenate([hog, COLOUR_WEIGHT * colours]).astype(np.float32)


# --- reading ------------------------------------------------------------------------------------


class _Pool:
    """The candidates: one frame per window of `step` frames, `step` doubling (windows merging in
    pairs) whenever more than `cap` have gathered.

    Args:
        scratch: where candidates' JPEGs wait.
        cap: candidates kept at most (one more may wait for a window pair to close).
        total: frames the source will give, when known: `step` is then set for `cap` candidates at once.
        better: whether a candidate beats another of the same merged window; None keeps the earlier.
    """

    def __init__(
        self,
        scratch: Path,
        cap: int,
        total: int | None,
        better: Callable[[_Candidate, _Candidate], bool] | None,
    ) -> None:
        self.scratch = scratch
        self.cap = cap
        self.step = max(1.0, total / cap) if total else 1.0
        self.better = better
        self.candidates: list[_Candidate] = []

    def window(self, index: int) -> int:
        return int(index // self.step)

    def add(self, candidate: _Candidate, next_window: int | None) -> None:
        """Take `candidate`; merge windows if the pool is full and `next_window`, the one being read
        next, starts a pair (a window being read must not be split). None: nothing follows."""
        self.candidates.append(candidate)
        if len(self.candidates) > self.cap and next_window is not None and next_window % 2 == 0:
            merged: dict[int, _Candidate] = {}
            for item in self.candidates:
                item.window //= 2
                held = merged.get(item.window)
                if held is None or (self.better is not None and self.better(item, held)):
                    merged[item.window] = item
                    if held is not None:
                        held.file.unlink()
                else:
                    item.file.unlink()
            self.candidates = list(merged.values())
            self.step *= 2

    def save(self, index: int, window: int, image: np.ndarray, name: str | None) -> _Candidate:
        file = self.scratch / f"{index:08d}.jpg"
        if not cv2.imwrite(str(file), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise EdgewatchError(f"cannot write {file}", "check the output folder is writable and has space")
        return _Candidate(index, window, file, name)


def _read(
    source: Source,
    pool: _Pool,
    max_frames: int | None,
    every_frame: bool,
    finish: Callable[[_Candidate, np.ndarray], None],
) -> int:
    """Read the source into `pool`; return the number of frames read.

    Each window's first frame stands for it, or, with `every_frame` (motion), the frame that changed
    most from the one before; the other frames of a window are skipped without decoding where the
    source can. `finish` adds what the method needs of a candidate from its picture."""
    index, previous = 0, None
    held: tuple[int, int, np.ndarray, str | None, float] | None = None  # the open window's best frame

    def close_window(next_window: int | None) -> None:
        nonlocal held
        (held_index, held_window, image, name, change), held = held, None
        candidate = pool.save(held_index, held_window, image, name)
        candidate.change = change
        finish(candidate, image)
        pool.add(candidate, next_window)

    counts = [count for count in (source.info.frame_count, max_frames) if count]
    bar = progress_bar(min(counts) if counts and not source.info.live else None, "sample", "frame")
    try:
        while max_frames is None or index < max_frames:
            bar.update(index - bar.n)
            window = pool.window(index)
            same = held is not None and held[1] == window
            if same and not every_frame:
                if not source.skip():
                    break
                index += 1
                continue
            picture = source.read()
            if picture is None:
                break
            change = 0.0
            if every_frame:
                grey = _grey(picture.image)
                change = float(cv2.absdiff(grey, previous).mean()) if previous is not None else 0.0
                previous = grey
            if not same:
                if held is not None:
                    close_window(window)
                    window = pool.window(index)  # windows may have merged
                held = (index, window, picture.image, picture.name, change)
            elif change > held[4]:
                held = (index, window, picture.image, picture.name, change)
            index += 1
    except KeyboardInterrupt:
        if not source.info.live:
            raise
        log.info("stopped reading %s after %d frames", source.info.uri, index)
    finally:
        bar.close()
    if held is not None:
        close_window(None)
    return index


# --- choosing ------------------------------------------------------------------------------------


def _evenly(count: int, budget: int) -> list[int]:
    """`budget` of `count` positions at a fixed interval from the first (all of them if fewer), as a
    camera saving a frame every so often would keep them."""
    if count <= budget:
        return list(range(count))
    return [int(position) for position in np.arange(budget) * count // budget]


def _farthest_first(features: np.ndarray, budget: int) -> tuple[list[int], list[float]]:
    """Positions of `budget` rows of `features`, and each one's distance from those taken before it:
    farthest-point selection from the most typical row, until the farthest row is within `NOVELTY`
    steps between consecutive rows; then the rows nearest each taken one (its group) take turns."""
    count = len(features)
    steps = np.linalg.norm(np.diff(features, axis=0), axis=1)
    floor = NOVELTY * float(np.median(steps)) if len(steps) else 0.0
    first = int(np.argmin(np.linalg.norm(features - features.mean(axis=0), axis=1)))
    taken, distances = [first], [0.0]
    nearest = np.linalg.norm(features - features[first], axis=1)
    group = np.zeros(count, dtype=int)
    kept = np.zeros(count, dtype=bool)
    kept[first] = True

    def take(position: int) -> np.ndarray:
        to_new = np.linalg.norm(features - features[position], axis=1)
        taken.append(position)
        distances.append(float(nearest[position]))
        kept[position] = True
        return to_new

    while len(taken) < budget:
        position = int(np.argmax(np.where(kept, -1.0, nearest)))
        if nearest[position] <= floor:
            break
        to_new = take(position)
        group[to_new < nearest] = len(taken) - 1
        np.minimum(nearest, to_new, out=nearest)
    groups = len(taken)
    while len(taken) < budget:
        for member_of in range(groups):
            left = np.flatnonzero((group == member_of) & ~kept)
            if len(left) and len(taken) < budget:
                np.minimum(nearest, take(int(left[np.argmax(nearest[left])])), out=nearest)
    return taken, distances


def _spread(order: np.ndarray, windows: np.ndarray, budget: int) -> list[int]:
    """The first `budget` positions of `order` (best first) with no two in neighbouring windows; then,
    if that leaves budget over, the next best whatever their neighbours."""
    taken: list[int] = []
    blocked: set[int] = set()
    for position in order:
        if len(taken) == budget:
            return taken
        if int(windows[position]) not in blocked:
            taken.append(int(position))
            blocked.update((int(windows[position]) - 1, int(windows[position]), int(windows[position]) + 1))
    chosen = set(taken)
    taken += [int(position) for position in order if int(position) not in chosen][: budget - len(taken)]
    return taken


def _surprises(candidates: list[_Candidate], fps: float | None) -> list[dict[str, Any]]:
    """Why each candidate would surprise a labeller: its kind (flip, unsure, change, rare), with the
    class it changed from."""
    predictions = [candidate.prediction for candidate in candidates]
    labels = [prediction.label for prediction in predictions]
    starts = [0] + [position for position in range(1, len(labels)) if labels[position] != labels[position - 1]]
    ends = [*starts[1:], len(labels)]
    reasons: list[dict[str, Any]] = [{"kind": "rare"} for _ in candidates]
    for position in range(len(labels)):
        if predictions[position].unsure:
            reasons[position] = {"kind": "unsure"}
    for run, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if run == 0:
            continue
        before = labels[start - 1]
        span = candidates[end - 1].index - candidates[start].index + 1
        short = end - start == 1 or (fps is not None and span <= FLIP_SECONDS * fps)
        comes_back = end < len(labels) and labels[end] == before
        if short and comes_back:
            for position in range(start, end):
                reasons[position] = {"kind": "flip", "from": before}
        elif reasons[start]["kind"] != "unsure":
            reasons[start] = {"kind": "change", "from": before}
    return reasons


def _choose(
    method: str, candidates: list[_Candidate], budget: int, fps: float | None, rng: np.random.Generator
) -> list[tuple[int, dict[str, Any]]]:
    """(position in `candidates`, reason) of each frame kept."""
    if method == "time":
        return [(position, {"reason": "time"}) for position in _evenly(len(candidates), budget)]
    if method == "diverse":
        features = np.stack([candidate.feature for candidate in candidates])
        taken, distances = _farthest_first(features, min(budget, len(candidates)))
        return [
            (position, {"reason": "diverse", "distance": round(distance, 4)})
            for position, distance in zip(taken, distances, strict=True)
        ]
    windows = np.array([candidate.window for candidate in candidates])
    tiebreak = rng.permutation(len(candidates))
    if method == "motion":
        changes = np.array([candidate.change for candidate in candidates])
        order = np.lexsort((tiebreak, -changes))
        return [
            (position, {"reason": "motion", "change": round(float(changes[position]), 3)})
            for position in _spread(order, windows, budget)
        ]
    reasons = _surprises(candidates, fps)
    frequency = Counter(candidate.prediction.label for candidate in candidates)
    tiers = np.array([_TIERS[reason["kind"]] for reason in reasons])
    rarity = np.array([frequency[candidate.prediction.label] for candidate in candidates])
    doubt = np.array([candidate.prediction.doubt for candidate in candidates])
    order = np.lexsort((tiebreak, -doubt, np.where(tiers == _TIERS["rare"], rarity, 0), tiers))
    chosen = []
    for position in _spread(order, windows, budget):
        prediction = candidates[position].prediction
        reason = {"reason": "surprise", **reasons[position], "label": prediction.label}
        # an unsure frame is kept for its doubtful score (a detector's box near 0.5), not its best one
        reason["score"] = _round(prediction.doubtful if reason["kind"] == "unsure" else prediction.score)
        chosen.append((position, reason))
    return chosen


# --- the whole run --------------------------------------------------------------------------------


def _sample(
    source: Source,
    target: Path,
    budget: int,
    method: str,
    model: _Model | None,
    format: str,
    max_frames: int | None,
    seed: int,
    force: bool,
) -> SampleResult:
    info = source.info
    total = info.frame_count if not info.live and info.frame_count else None
    if total is not None and max_frames is not None:
        total = min(total, max_frames)
    cap = 4 * budget if method == "time" else max(MAX_CANDIDATES, 2 * budget)
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    if force:
        for stale in target.glob(".sampling-*"):  # the scratch of a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=".sampling-", dir=target))
    try:
        better = (lambda a, b: a.change > b.change) if method == "motion" else None
        pool = _Pool(scratch, cap, total, better)

        def finish(candidate: _Candidate, image: np.ndarray) -> None:
            if method == "diverse":
                candidate.feature = frame_feature(image)
            elif method == "surprise":
                candidate.prediction = _predict(model.detector, image)

        frames_read = _read(source, pool, max_frames, method == "motion", finish)
        if frames_read == 0:
            raise EdgewatchError(f"{info.uri} gave no frames", "check it plays, or name another source")
        candidates = pool.candidates
        chosen = _choose(method, candidates, budget, info.fps, np.random.default_rng(seed))
        chosen.sort(key=lambda item: candidates[item[0]].index)
        return _write(
            info.uri, info.fps, target, method, budget, seed, frames_read, model, format, force,
            [(candidates[position], reason) for position, reason in chosen],
        )  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if created and not any(target.iterdir()):  # a failed run leaves no empty folder behind
            target.rmdir()


def _write(
    uri: str,
    fps: float | None,
    target: Path,
    method: str,
    budget: int,
    seed: int,
    frames_read: int,
    model: _Model | None,
    format: str,
    force: bool,
    kept: list[tuple[_Candidate, dict[str, Any]]],
) -> SampleResult:
    images = target / "images"
    manifest = target / "manifest.json"
    if force:  # what an earlier run wrote; the annotations of `format` are swapped in whole below
        shutil.rmtree(images, ignore_errors=True)
        manifest.unlink(missing_ok=True)
    images.mkdir()
    paths, frames = [], []
    for candidate, reason in kept:
        path = images / f"frame_{candidate.index:06d}.jpg"
        os.replace(candidate.file, path)
        if model is not None and candidate.prediction is None:
            # the drafts are of the picture the labeller sees: the saved JPEG
            candidate.prediction = _predict(model.detector, cv2.imread(str(path)))
        entry: dict[str, Any] = {
            "file": f"images/{path.name}",
            "frame": candidate.index,
            "time": round(candidate.index / fps, 3) if fps else None,
            "why": reason,
        }
        if candidate.name is not None:
            entry["source_file"] = candidate.name
        if candidate.prediction is not None:
            entry["prediction"] = candidate.prediction.manifest()
        paths.append(str(path))
        frames.append(entry)
    predictions = [candidate.prediction for candidate, _ in kept if candidate.prediction is not None]
    classifier = model is not None and any(prediction.classifier for prediction in predictions)
    classes = _classes(model, predictions) if model is not None and not classifier else []
    annotations = {
        path: _drafts(candidate.prediction, classes) for path, (candidate, _) in zip(paths, kept, strict=True)
    }
    write_annotations(sv.DetectionDataset(classes=classes, images=paths, annotations=annotations), format, target)
    record = {
        "source": uri,
        "method": method,
        "budget": budget,
        "seed": seed,
        "frames_read": frames_read,
        "fps": fps,
        "model": model.name if model is not None else None,
        "format": format,
        "frames": frames,
    }
    manifest.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    reasons = Counter(entry["why"].get("kind", entry["why"]["reason"]) for entry in frames)
    result = SampleResult(uri, method, target, budget, frames_read, len(kept), reasons=dict(reasons))
    if model is not None:
        if classifier:
            counts = Counter(prediction.label for prediction in predictions)
            order = [label for label in model.detector.labels if label in counts] + sorted(
                str(label) for label in counts if label not in model.detector.labels
            )
            result.balance = {label: counts[label] for label in order}
        else:
            boxes = Counter(str(name) for p in predictions for name in p.drafts.data.get("class_name", []))
            result.balance = {label: boxes[label] for label in classes if boxes[label]}
            result.balance_of = "boxes"
    return result


def _classes(model: _Model, predictions: list[_Prediction]) -> list[str]:
    """The detector's labels, then any label its boxes carry beyond them (`class_N`)."""
    classes = list(model.detector.labels)
    for prediction in predictions:
        for name in prediction.drafts.data.get("class_name", []):
            if str(name) not in classes:
                classes.append(str(name))
    return classes


def _drafts(prediction: _Prediction | None, classes: list[str]) -> sv.Detections:
    """The boxes as a dataset holds them: class ids of `classes`, with their scores."""
    if prediction is None or prediction.classifier or len(prediction.drafts) == 0:
        return sv.Detections.empty()
    drafts = prediction.drafts
    return sv.Detections(
        xyxy=drafts.xyxy.astype(np.float32),
        confidence=drafts.confidence.astype(np.float32) if drafts.confidence is not None else None,
        class_id=np.array([classes.index(str(name)) for name in drafts.data["class_name"]], dtype=int),
    )


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None
