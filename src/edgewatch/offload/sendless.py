"""Send less: which frames a remote detector sends, the boxes of those it does not, and the size and
quality of those it does.

* `SendLess` decides per frame: a frame that hardly changed since the last one sent (`change`, on
  64-px-wide grayscale thumbnails) is not sent, and gets the last answer's boxes moved to where their
  content is now (`BoxMover`, sparse optical flow). With `min_change="auto"` it tunes the threshold
  itself from short runs of frames sent in a row (`choose_threshold`).
* `Budget` keeps the kilobits sent per second under `max_kbps` by lowering the JPEG quality, then the
  frame size.

Nothing here does I/O: the remote detector sends what it is told to.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import supervision as sv

from edgewatch.evaluate.detection import match

#: the width of the grayscale thumbnails `change` compares: wide enough for a person, small enough that
#: sensor noise and JPEG artefacts average out
THUMBNAIL_WIDTH = 64
#: the width of the grayscale copy optical flow runs on: half of 640, where a walking person moves a
#: pixel or two per frame at 25 fps, well inside the Lucas-Kanade window
FLOW_WIDTH = 320
#: corners looked for per box; the median of a dozen survives a few on the background
FLOW_WINDOW = 15
CORNERS_PER_BOX = 24
#: a box moves by the flow of the corners in its middle (this fraction of its width and height left off
#: each side), where its own object is, not the background its corners show
BOX_MARGIN = 0.05
#: a box with fewer tracked corners than this keeps its last place
MIN_POINTS = 3

#: the thresholds `min_change="auto"` tries: frame-to-frame noise on a fixed camera is under 1, so from
#: half of that, about x1.5 a step, to a change no moving scene stays under for long
CANDIDATES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
#: frames sent in a row to calibrate on, as a multiple of max_skip: the longest skip fits twice
WINDOW_SKIPS = 2
#: a calibration starts this many frames after the previous one started: 20 s at 25 fps, so a window of
#: 20 frames costs 4% of the frames (sent whatever they look like)
CALIBRATE_EVERY = 500
#: a calibration whose answers (pooled with the earlier ones') hold fewer boxes than this says too little:
#: F1 0.9 measured on 30 boxes is +-0.055. Then PRIOR stands, and the next calibration starts after
#: CALIBRATE_SOON windows, not CALIBRATE_EVERY frames
MIN_EVIDENCE = 30
CALIBRATE_SOON = 3
#: the threshold before evidence: the change that sensor noise and JPEG artefacts stay under
PRIOR = 1.0
#: each calibration weighs the earlier ones in the pool by this (the scene changes); with 0.7 a scene
#: of one object (19 boxes a run) has enough at its second calibration
EVIDENCE_DECAY = 0.7
DEFAULT_TARGET_F1 = 0.9
#: IoU at which a moved box counts as the server's box in calibration, as evaluate's default
MATCH_IOU = 0.5

Threshold = float | Literal["auto"]


def thumbnail(image: np.ndarray) -> np.ndarray:
    """`image` as a small grayscale picture, THUMBNAIL_WIDTH wide, for `change` to compare."""
    return _gray(image, THUMBNAIL_WIDTH)


def change(before: np.ndarray, after: np.ndarray) -> float:
    """How much two thumbnails differ: their mean absolute difference, 0-255 (inf for other sizes)."""
    if before.shape != after.shape:
        return float("inf")
    return float(cv2.absdiff(before, after).mean())


class BoxMover:
    """Moves boxes from one frame to the next by the sparse optical flow of the corners inside them.

    Corners are found once for all boxes (`cv2.goodFeaturesToTrack` masked to their middles) on a
    grayscale copy FLOW_WIDTH wide, followed to the next frame with `cv2.calcOpticalFlowPyrLK`, and
    each box is shifted by the median flow of its own corners; a box with fewer than MIN_POINTS keeps
    its place. Chain it frame to frame, so each step is small.

    Example:
        >>> mover = BoxMover()
        >>> before = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
        >>> after = np.roll(before, 6, axis=1)  # 6 px to the right
        >>> mover.move(mover.small(before), mover.small(after), np.array([[100.0, 100, 200, 200]]), 640).round()
        array([[106., 100., 206., 200.]])
    """

    def __init__(self, width: int = FLOW_WIDTH) -> None:
        self.width = width

    def small(self, image: np.ndarray) -> np.ndarray:
        """The grayscale copy of `image` that `move` takes (never larger than the image)."""
        return _gray(image, min(self.width, image.shape[1]))

    def move(self, before: np.ndarray, after: np.ndarray, xyxy: np.ndarray, frame_width: int) -> np.ndarray:
        """`xyxy`, boxes in the pixels of a frame `frame_width` wide, moved from the small copy `before`
        of that frame to the small copy `after` of the next."""
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        if len(xyxy) == 0:
            return xyxy
        points, flow = self.flow(before, after, xyxy, frame_width)
        return shift(xyxy, points, flow)

    def flow(
        self, before: np.ndarray, after: np.ndarray, xyxy: np.ndarray, frame_width: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corners of `before` inside the middles of `xyxy` and how far each moved to `after`, both in
        frame pixels (N x 2 each; none where nothing could be followed)."""
        factor = before.shape[1] / frame_width
        boxes = _middles(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)) * factor
        height, width = before.shape[:2]
        mask = np.zeros((height, width), np.uint8)
        corners = np.clip(np.round(boxes).astype(int), 0, [width, height, width, height])
        for x1, y1, x2, y2 in corners:  # a few rectangles; one corner search then serves them all
            mask[y1:y2, x1:x2] = 255
        found = cv2.goodFeaturesToTrack(before, CORNERS_PER_BOX * len(boxes), 0.01, 3, mask=mask, blockSize=5)
        if found is None:
            return np.empty((0, 2)), np.empty((0, 2))
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            before, after, found, None, winSize=(FLOW_WINDOW, FLOW_WINDOW), maxLevel=2
        )
        kept = status.reshape(-1) == 1
        start = found.reshape(-1, 2)[kept]
        return start / factor, (moved.reshape(-1, 2)[kept] - start) / factor


def shift(xyxy: np.ndarray, points: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Each box shifted by the median `flow` of the `points` in its middle; by nothing with fewer than
    MIN_POINTS there."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if len(xyxy) == 0 or len(points) == 0:
        return xyxy.copy()
    middles = _middles(xyxy)
    inside = (
        (points[None, :, 0] >= middles[:, None, 0]) & (points[None, :, 0] <= middles[:, None, 2])
        & (points[None, :, 1] >= middles[:, None, 1]) & (points[None, :, 1] <= middles[:, None, 3])
    )  # fmt: skip
    counted = inside.sum(axis=1)
    flows = np.where(inside[:, :, None], flow[None, :, :], np.nan)  # boxes x points x (dx, dy)
    with warnings.catch_warnings():  # a box without points has an all-NaN median: it stays
        warnings.simplefilter("ignore", RuntimeWarning)
        step = np.nanmedian(flows, axis=1)
    step[(counted < MIN_POINTS) | np.isnan(step).any(axis=1)] = 0.0
    return xyxy + np.tile(step, 2)


@dataclass
class _Seen:
    """A frame of a calibration run: its thumbnail, its small copy, and the server's answer."""

    thumbnail: np.ndarray
    small: np.ndarray
    width: int  # of the frame, whose pixels the answer's boxes are in
    answer: sv.Detections


class SendLess:
    """Which frames a remote detector sends, and the boxes of those it does not.

    A frame whose thumbnail differs from the last sent one's by less than the threshold is not sent
    (unless max_skip - 1 in a row were not): it gets the last boxes, moved by optical flow from the
    frame before. With `min_change="auto"`, the first `2 * max_skip` frames, and as many every
    CALIBRATE_EVERY frames, are all sent; from their answers the threshold becomes the highest of
    CANDIDATES up to which skipping with moved boxes would have kept F1 (IoU 0.5, against the answers)
    at `target_f1` or more. `min_change=0` sends every frame and costs nothing.

    Example:
        >>> send_less = SendLess(min_change=2.0)
        >>> frame = np.zeros((360, 640, 3), np.uint8)
        >>> send_less.boxes(frame) is None  # nothing sent yet: send it
        True
        >>> send_less.answered(frame, sv.Detections(xyxy=np.array([[10.0, 10, 50, 90]]), class_id=np.array([0])))
        >>> send_less.boxes(frame).xyxy  # the same picture: not sent, the boxes of its answer
        array([[10., 10., 50., 90.]])
    """

    def __init__(
        self,
        min_change: Threshold = 0.0,
        max_skip: int = 10,
        target_f1: float = DEFAULT_TARGET_F1,
        min_score: float = 0.0,
    ) -> None:
        self.auto = min_change == "auto"
        #: the threshold in use (auto: PRIOR until a calibration says more)
        self.threshold = PRIOR if self.auto else float(min_change)
        self.max_skip = max_skip
        self.target_f1 = target_f1
        #: calibration counts the boxes the pipeline keeps: a box below it flickers and is dropped anyway
        self.min_score = min_score
        self.window = WINDOW_SKIPS * max_skip
        self._mover = BoxMover()
        self._last_sent: np.ndarray | None = None  # the thumbnail of the last frame sent
        self._boxes: sv.Detections | None = None  # the last frame's boxes: the answer, moved since
        self._small: np.ndarray | None = None  # the last frame's small copy, where _boxes are
        self._pending: tuple[np.ndarray, np.ndarray] | None = None  # this frame's thumbnail and small copy
        self._skipped_in_row = 0
        self._run: list[_Seen] | None = None  # the calibration run under way
        self._since = 0  # frames since the last calibration started
        self._next = 0  # frames after the start of one calibration that the next is due
        self._evidence = np.zeros((len(CANDIDATES), 3))  # pooled rows of `replay`
        self._seen_boxes = False  # whether the last answer had boxes the pipeline keeps

    @property
    def active(self) -> bool:
        """Whether frames may go unsent (a threshold, or auto)."""
        return self.auto or self.threshold > 0

    @property
    def calibrating(self) -> bool:
        """Whether a calibration run is under way (its frames are all sent)."""
        return self._run is not None

    def boxes(self, image: np.ndarray) -> sv.Detections | None:
        """The boxes of `image` when it need not be sent; None when it must be (then give its answer to
        `answered`)."""
        if not self.active:
            return None
        self._pending = (thumbnail(image), self._mover.small(image))
        if self.auto and self._run is None and self._since >= self._next and self._seen_boxes:
            self._run, self._since = [], 0  # due, and boxes to measure on: a calibration run starts here
        self._since += 1
        if self.calibrating or self._boxes is None or self._last_sent is None or self._small is None:
            return None
        if self._skipped_in_row >= self.max_skip - 1 or change(self._last_sent, self._pending[0]) >= self.threshold:
            return None
        small = self._pending[1]
        moved = copy.deepcopy(self._boxes)  # the pipeline sets tracker ids on what it gets
        if len(moved):
            xyxy = self._mover.move(self._small, small, moved.xyxy, image.shape[1])
            moved.xyxy = np.clip(xyxy, 0, [image.shape[1], image.shape[0]] * 2).astype(moved.xyxy.dtype)
        self._boxes, self._small = moved, small
        self._skipped_in_row += 1
        return copy.deepcopy(moved)

    def answered(self, image: np.ndarray, answer: sv.Detections) -> None:
        """The server's `answer` to `image`, the frame `boxes` just said to send."""
        if not self.active:
            return
        if self._pending is None:
            self._pending = (thumbnail(image), self._mover.small(image))
        (self._last_sent, self._small), self._pending = self._pending, None
        self._boxes = copy.deepcopy(answer)
        self._skipped_in_row = 0
        kept = answer[answer.confidence >= self.min_score] if answer.confidence is not None else answer
        self._seen_boxes = len(kept) > 0
        if self._run is not None:
            self._run.append(_Seen(self._last_sent, self._small, image.shape[1], kept))
            if len(self._run) >= self.window:
                self._calibrated()

    def _calibrated(self) -> None:
        """Pool the replay of the run that just ended with what earlier ones said (each run weighs those
        before by EVIDENCE_DECAY), and choose the threshold once the pool holds MIN_EVIDENCE boxes; until
        then keep PRIOR and calibrate again soon."""
        self._evidence = self._evidence * EVIDENCE_DECAY + replay(self._run, self.max_skip, self._mover)
        self._run = None
        if self._evidence[0, 1] >= MIN_EVIDENCE:
            self.threshold = choose_threshold(self._evidence, self.target_f1)
            self._next = CALIBRATE_EVERY
        else:
            self.threshold = max(self.threshold, PRIOR)
            self._next = CALIBRATE_SOON * self.window

    def reset(self) -> None:
        """The frame just given was not answered (or the server is away): the next one is sent, and a
        calibration under way starts again."""
        self._last_sent = self._boxes = self._small = self._pending = None
        if self._run is not None:
            self._run, self._since = None, self._next


def replay(run: Sequence[_Seen], max_skip: int, mover: BoxMover | None = None) -> np.ndarray:
    """What skipping at each of CANDIDATES would have given on `run` (frames sent in a row, and their
    answers): one row per candidate of (boxes matched at IoU 0.5, boxes answered, boxes returned)."""
    mover = mover or BoxMover()
    steps = []  # between frames i and i + 1: the corners near the answer's boxes and their flow
    for before, after in itertools.pairwise(run):
        grown = _grown(before.answer.xyxy)
        steps.append(mover.flow(before.small, after.small, grown, before.width) if len(grown) else None)
    return np.array([_replay_one(run, steps, candidate, max_skip) for candidate in CANDIDATES], dtype=float)


def choose_threshold(counts: np.ndarray, target_f1: float) -> float:
    """The highest of CANDIDATES up to which every one keeps F1 >= `target_f1` by `counts` (rows of
    `replay`); 0 (send all) when the lowest does not."""
    true, expected, returned = counts.T
    f1 = np.divide(2 * true, expected + returned, out=np.ones(len(counts)), where=expected + returned > 0)
    failing = np.flatnonzero(f1 < target_f1)
    kept = failing[0] if len(failing) else len(CANDIDATES)
    return CANDIDATES[kept - 1] if kept else 0.0


def _replay_one(
    run: Sequence[_Seen], steps: Sequence[tuple[np.ndarray, np.ndarray] | None], threshold: float, max_skip: int
) -> tuple[int, int, int]:
    true = expected = returned = 0
    last, sent, skipped = run[0].thumbnail, run[0].answer, 0
    boxes = sent.xyxy
    for seen, step in zip(run[1:], steps, strict=True):
        expected += len(seen.answer)
        if skipped < max_skip - 1 and change(last, seen.thumbnail) < threshold:
            boxes = shift(boxes, *step) if step is not None else boxes
            skipped += 1
            true += int(match(seen.answer, sv.Detections(xyxy=boxes, class_id=sent.class_id), MATCH_IOU).sum())
            returned += len(boxes)
        else:  # sent: its answer is the truth itself
            last, sent, skipped = seen.thumbnail, seen.answer, 0
            boxes = sent.xyxy
            true += len(sent)
            returned += len(sent)
    return true, expected, returned


class Budget:
    """Keeps the kilobits sent per second under `max_kbps`, by the JPEG quality, then the frame scale.

    After each frame sent, the rate it would make is its size times the frames sent in the last second
    (of the wall clock: a budget is the link's, and the link runs on it); over the budget, the next frame
    goes a step lower (quality by 10 down to QUALITY_FLOOR, then the scale by x0.8 down to SCALE_FLOOR),
    and under WELL_UNDER of it a step higher, back to the quality asked for and the full size.

    Example:
        >>> budget = Budget(max_kbps=100, quality=90)
        >>> budget.sent(now=0.0, size=20_000)  # 160 kbit a frame: over 100
        >>> budget.quality, budget.scale
        (80, 1.0)
    """

    QUALITY_FLOOR = 40
    SCALE_FLOOR = 0.25
    #: raise a step only under this fraction of the budget: a step lower saves 15-35%, so the step back
    #: up lands under the budget again
    WELL_UNDER = 0.6

    def __init__(self, max_kbps: float | None, quality: int) -> None:
        self.max_kbps = max_kbps
        qualities = [*range(quality, self.QUALITY_FLOOR, -10), min(quality, self.QUALITY_FLOOR)]
        scales, scale = [], 0.8
        while scale >= self.SCALE_FLOOR - 1e-9:
            scales.append(round(scale, 3))
            scale *= 0.8
        self._steps = [(q, 1.0) for q in qualities] + [(qualities[-1], s) for s in scales]
        self._step = 0
        self._times: deque[float] = deque()

    @property
    def quality(self) -> int:
        return self._steps[self._step][0]

    @property
    def scale(self) -> float:
        return self._steps[self._step][1]

    def sent(self, now: float, size: int) -> None:
        """A frame of `size` bytes was sent at `now` (seconds)."""
        if self.max_kbps is None:
            return
        self._times.append(now)
        while self._times[0] <= now - 1.0:
            self._times.popleft()
        kbps = size * 8 / 1000 * len(self._times)
        if kbps > self.max_kbps and self._step < len(self._steps) - 1:
            self._step += 1
        elif kbps < self.WELL_UNDER * self.max_kbps and self._step > 0:
            self._step -= 1


def _gray(image: np.ndarray, width: int) -> np.ndarray:
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def _middles(xyxy: np.ndarray) -> np.ndarray:
    size = np.tile(xyxy[:, 2:] - xyxy[:, :2], 2)
    return xyxy + size * np.array([BOX_MARGIN, BOX_MARGIN, -BOX_MARGIN, -BOX_MARGIN])


def _grown(xyxy: np.ndarray) -> np.ndarray:
    """Boxes grown by a quarter each side: in a replay, the corners near a box that has drifted count too."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    size = np.tile(xyxy[:, 2:] - xyxy[:, :2], 2)
    return xyxy + size * np.array([-0.25, -0.25, 0.25, 0.25])
