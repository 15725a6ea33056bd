"""A synthetic room with pets: a cat and two dogs come and go, wander about and meet, with exact
ground truth, for incident rules such as "the cat and the big dog are in the room together".

Example:
    >>> scene = PetsScene(seed=0)
    >>> image, truth = scene.render(500)
    >>> image.shape, {item.label for item in truth} <= set(LABELS)
    ((360, 640, 3), True)
    >>> len(scene.together(["cat", "dog2"])) >= 2
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise

import cv2
import numpy as np

from edgewatch.sources.synthetic import TruthBox

LABELS = ("cat", "dog1", "dog2")
#: sprite size (width, height) of each animal, seen from the side
SIZES = {"cat": (60, 42), "dog1": (96, 66), "dog2": (128, 86)}
#: walking speed range of each animal, in pixels per frame
SPEEDS = {"cat": (2.5, 4.0), "dog1": (2.5, 4.5), "dog2": (2.5, 4.0)}
#: two animals whose boxes overlap by more than this share of the smaller box are on top of each other
HEAVY_OVERLAP = 0.5
#: ... which may last this many seconds at most (passing each other), never longer
LONGEST_OVERLAP = 1.0
#: scenes at least this long always have the cat and dog2 together twice (see `PetsScene.together`)
MEETINGS_FROM = 40.0
_KEY = (255, 0, 255)  # sprite background, a colour no animal has


@dataclass(eq=False, slots=True)
class Visit:
    """One stay of one animal: it comes in, wanders about (pausing now and then) and leaves.

    Attributes:
        track_id: the stay's own id (an animal coming back is a new track).
        label: which animal.
        first_frame: the frame of `corners[0]` (it may be just outside the frame then).
        corners: top-left corner of the animal's box at each frame from `first_frame`, shape (n, 2).
        facing: +1 when it faces right, -1 when it faces left, per frame.
        moving: whether it walks (legs swing) or stands, per frame.
        entered, exited: `left`, `right` (the frame's sides) or `door` (the doorway in the back wall).
    """

    track_id: int
    label: str
    first_frame: int
    corners: np.ndarray
    facing: np.ndarray
    moving: np.ndarray
    entered: str
    exited: str

    @property
    def last_frame(self) -> int:
        return self.first_frame + len(self.corners) - 1

    @property
    def size(self) -> tuple[int, int]:
        return SIZES[self.label]


@dataclass
class PetsScene:
    """A room seen from the side: a back wall with a doorway near one end, a floor with a rug, and a
    cat (small, grey, pointed ears), `dog1` (brown, medium, floppy ears) and `dog2` (large, white with
    black patches). Each comes in through the doorway or a side of the picture, wanders on smooth
    paths with pauses, leaves, and may come back; two animals never stay on top of each other for
    more than a moment.

    Args:
        width, height: frame size.
        fps: frames per second of the scene's clock.
        seconds: length of the scene.
        seed: the same seed gives the same scene, pixel for pixel.
    """

    width: int = 640
    height: int = 360
    fps: float = 25.0
    seconds: float = 60.0
    seed: int = 0
    visits: list[Visit] = field(init=False)
    door: tuple[int, int, int, int] = field(init=False)  # x1, y1, x2, y2 of the doorway
    floor_top: int = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.floor_top = int(self.height * 0.38)
        door_w, door_h = int(self.width * 0.22), int(self.height * 0.34)
        door_x = int(self.width * 0.05) if rng.random() < 0.5 else int(self.width * 0.95) - door_w
        self.door = (door_x, self.floor_top - door_h, door_x + door_w, self.floor_top + 4)
        self._room = self._paint_room(rng)
        self._noise = rng.integers(-6, 7, size=(8, self.height, self.width, 1), dtype=np.int16)
        for _ in range(200):  # redraw the comings and goings until cat and dog2 meet twice (see MEETINGS_FROM)
            self.visits = self._schedule(rng)
            if self.seconds < MEETINGS_FROM or _meet_twice(self.together(["cat", "dog2"])):
                break

    @property
    def frame_count(self) -> int:
        return int(self.seconds * self.fps)

    def empty_room(self) -> np.ndarray:
        """The room with no animal in it and no noise."""
        return self._room.copy()

    def render(self, frame: int) -> tuple[np.ndarray, list[TruthBox]]:
        """The picture at `frame` and the ground truth of every animal at least partly in view."""
        image = self._room.copy()
        truth = self.truth(frame)
        by_id = {visit.track_id: visit for visit in self.visits}
        for item in truth:
            visit = by_id[item.track_id]
            step = frame - visit.first_frame
            x, y = (round(float(v)) for v in visit.corners[step])
            phase = (frame // 3) % 4 if visit.moving[step] else 4
            _paste(image, *_sprite(visit.label, int(phase), bool(visit.facing[step] < 0)), x, y)
        noisy = image.astype(np.int16) + self._noise[frame % len(self._noise)]
        return np.clip(noisy, 0, 255).astype(np.uint8), truth

    def truth(self, frame: int) -> list[TruthBox]:
        """The ground truth at `frame` without drawing it, in drawing order (the animal furthest back
        first)."""
        truth = []
        for visit in self.visits:
            if not visit.first_frame <= frame <= visit.last_frame:
                continue
            x, y = (float(v) for v in visit.corners[frame - visit.first_frame])
            w, h = visit.size
            box = (max(0.0, x), max(0.0, y), min(float(self.width), x + w), min(float(self.height), y + h))
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                truth.append(TruthBox(visit.track_id, visit.label, box, 1.0))
        return sorted(truth, key=lambda item: (item.box[3], item.track_id))

    def in_view(self, label: str) -> np.ndarray:
        """Per frame of the scene, whether the animal `label` is at least partly in view."""
        if label not in LABELS:
            raise ValueError(f"no animal '{label}' in the pets scene; there are {', '.join(LABELS)}")
        seen = np.zeros(self.frame_count, bool)
        for visit in self.visits:
            if visit.label != label:
                continue
            frames = np.arange(visit.first_frame, visit.last_frame + 1)
            w, h = visit.size
            x, y = visit.corners[:, 0], visit.corners[:, 1]
            visible = (np.minimum(x + w, self.width) - np.maximum(x, 0) >= 1) & (
                np.minimum(y + h, self.height) - np.maximum(y, 0) >= 1
            )
            inside = frames < self.frame_count
            seen[frames[visible & inside]] = True
        return seen

    def together(self, labels: Sequence[str]) -> list[tuple[float, float]]:
        """The times (first frame's, last frame's, in seconds) between which every animal of `labels`
        is in view at once: the ground truth of a "cat and dog2 together" incident.

        Example:
            >>> PetsScene(seed=0, seconds=60).together(["cat", "dog2"])[:2]
            [(2.0, 10.8), (19.84, 30.8)]
        """
        everyone = np.ones(self.frame_count, bool)
        for label in labels:
            everyone &= self.in_view(label)
        return time_intervals(everyone, self.fps)

    def _paint_room(self, rng: np.random.Generator) -> np.ndarray:
        w, h, top = self.width, self.height, self.floor_top
        image = np.zeros((h, w, 3), np.uint8)
        wall = tuple(int(c) for c in rng.integers(-12, 13, 3) + np.array([175, 212, 228]))
        image[:top] = wall  # pale yellow, BGR
        for x in range(0, w, 24):  # faint wallpaper stripes
            image[: top - 8, x : x + 2] = np.clip(np.array(wall) - 14, 0, 255)
        image[top - 8 : top] = (120, 130, 140)  # skirting board
        floor = tuple(int(c) for c in rng.integers(-10, 11, 3) + np.array([112, 128, 86]))
        image[top:] = floor  # green-grey carpet
        for y in range(top + 14, h, 22):  # carpet seams
            image[y : y + 1] = np.clip(np.array(floor) - 18, 0, 255)
        rug_x = int(rng.uniform(0.3, 0.6) * w)
        cv2.ellipse(image, (rug_x, int(h * 0.78)), (int(w * 0.16), int(h * 0.09)), 0, 0, 360, (70, 60, 160), -1)
        cv2.ellipse(image, (rug_x, int(h * 0.78)), (int(w * 0.13), int(h * 0.06)), 0, 0, 360, (90, 120, 190), 3)
        x1, y1, x2, y2 = self.door
        cv2.rectangle(image, (x1 - 6, y1 - 6), (x2 + 6, y2), (150, 120, 100), -1)  # casing
        cv2.rectangle(image, (x1, y1), (x2, y2), (38, 34, 30), -1)  # the dark hall beyond
        picture_x = x2 + 60 if x1 < w // 2 else x1 - 160
        cv2.rectangle(image, (picture_x, int(h * 0.08)), (picture_x + 100, int(h * 0.24)), (60, 70, 80), -1)
        cv2.rectangle(
            image, (picture_x + 6, int(h * 0.08) + 6), (picture_x + 94, int(h * 0.24) - 6), (200, 160, 90), -1
        )
        return image

    def _schedule(self, rng: np.random.Generator) -> list[Visit]:
        """Each animal's stays one after another, placed so that none sits on an animal placed before."""
        visits: list[Visit] = []
        for label in LABELS:
            start = int(rng.uniform(0, 8) * self.fps)
            while start < self.frame_count:
                visit = self._place(label, start, len(visits) + 1, visits, rng)
                visits.append(visit)
                start = visit.last_frame + 1 + int(rng.uniform(3, 10) * self.fps)
        return visits

    def _place(self, label: str, start: int, track_id: int, others: list[Visit], rng: np.random.Generator) -> Visit:
        """The stay, of several drawn, that overlaps the animals already placed the least (none of them,
        nearly always)."""
        best, best_overlap = None, np.inf
        for _ in range(40):
            visit = self._wander(label, start, track_id, rng)
            overlap = _longest_overlap(visit, others)
            if overlap < best_overlap:
                best, best_overlap = visit, overlap
            if overlap <= LONGEST_OVERLAP * self.fps:
                break
        return best

    def _wander(self, label: str, start: int, track_id: int, rng: np.random.Generator) -> Visit:
        w, h = SIZES[label]
        speed = float(rng.uniform(*SPEEDS[label]))
        entered, exited = (str(side) for side in rng.choice(["left", "right", "door"], 2, p=[0.3, 0.3, 0.4]))

        def floor_point() -> np.ndarray:
            feet = rng.uniform(self.floor_top + 14, self.height - 4)
            return np.array([rng.uniform(10, self.width - w - 10), feet - h])

        def outside(side: str) -> np.ndarray:
            if side == "door":  # standing on the threshold, in front of the dark doorway
                x1, _, x2, _ = self.door
                return np.array([(x1 + x2 - w) / 2, self.floor_top + 6 - h])
            feet = rng.uniform(self.floor_top + 40, self.height - 4)
            return np.array([-w - 2.0 if side == "left" else self.width + 2.0, feet - h])

        def frames_between(a: np.ndarray, b: np.ndarray) -> int:
            return max(2, int(np.ceil(np.hypot(*(b - a)) / speed)))

        stay = int(rng.uniform(6, 16) * self.fps)
        way_out = outside(exited)
        keys: list[tuple[int, np.ndarray]] = [(0, outside(entered))]
        while True:
            t, here = keys[-1]
            target = floor_point()
            arrive = t + frames_between(here, target)
            if arrive + frames_between(target, way_out) > stay and len(keys) > 1:
                break
            keys.append((arrive, target))
            if rng.random() < 0.35:  # stands still a while
                keys.append((arrive + int(rng.uniform(0.5, 2.5) * self.fps), target))
        t, here = keys[-1]
        keys.append((t + frames_between(here, way_out), way_out))
        times = np.array([key[0] for key in keys], float)
        points = np.array([key[1] for key in keys])
        corners = _smooth_path(times, points)
        step = np.diff(corners[:, 0], prepend=corners[0, 0])
        moving = np.hypot(*np.diff(corners, axis=0, prepend=corners[:1]).T) > 0.3
        facing = _forward_fill(np.sign(step), first=float(np.sign(points[1, 0] - points[0, 0]) or 1.0))
        return Visit(track_id, label, start, corners, facing, moving, entered, exited)


def _smooth_path(times: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Positions at every frame from key positions at key frames: each leg eases in and out
    (smoothstep), so animals slow down before they turn or stop."""
    frames = np.arange(int(times[-1]) + 1, dtype=float)
    leg = np.clip(np.searchsorted(times, frames, side="right") - 1, 0, len(times) - 2)
    length = times[leg + 1] - times[leg]
    u = np.clip((frames - times[leg]) / np.where(length > 0, length, 1), 0, 1)
    eased = u * u * (3 - 2 * u)
    return points[leg] + (points[leg + 1] - points[leg]) * eased[:, None]


def _forward_fill(signs: np.ndarray, first: float) -> np.ndarray:
    """Each zero (standing still) replaced by the last direction before it."""
    signs = signs.copy()
    signs[0] = signs[0] or first
    index = np.where(signs != 0, np.arange(len(signs)), 0)
    return signs[np.maximum.accumulate(index)]


def _longest_overlap(visit: Visit, others: list[Visit]) -> int:
    """The longest run of frames in which `visit` lies mostly on top of (or under) another animal."""
    heavy = np.zeros(len(visit.corners), bool)
    w, h = visit.size
    for other in others:
        first = max(visit.first_frame, other.first_frame)
        last = min(visit.last_frame, other.last_frame)
        if first > last:
            continue
        a = visit.corners[first - visit.first_frame : last - visit.first_frame + 1]
        b = other.corners[first - other.first_frame : last - other.first_frame + 1]
        ow, oh = other.size
        inter_w = np.clip(np.minimum(a[:, 0] + w, b[:, 0] + ow) - np.maximum(a[:, 0], b[:, 0]), 0, None)
        inter_h = np.clip(np.minimum(a[:, 1] + h, b[:, 1] + oh) - np.maximum(a[:, 1], b[:, 1]), 0, None)
        heavy[first - visit.first_frame : last - visit.first_frame + 1] |= inter_w * inter_h > HEAVY_OVERLAP * min(
            w * h, ow * oh
        )
    return max((b - a for a, b in _runs(heavy)), default=0)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last + 1) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def time_intervals(mask: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """(first frame's time, last frame's time) in seconds of each run of True in a per-frame mask."""
    return [(round(first / fps, 4), round((end - 1) / fps, 4)) for first, end in _runs(mask)]


def _meet_twice(intervals: list[tuple[float, float]], least: float = 3.0, apart: float = 3.0) -> bool:
    """Whether there are two meetings or more, each at least `least` seconds long and `apart` seconds
    from the next (no fleeting or flickering ones)."""
    gaps = [later[0] - earlier[1] for earlier, later in pairwise(intervals)]
    return len(intervals) >= 2 and all(b - a >= least for a, b in intervals) and all(gap >= apart for gap in gaps)


@cache
def _sprite(label: str, phase: int, flipped: bool) -> tuple[np.ndarray, np.ndarray]:
    """The animal's picture (facing right, or left when `flipped`) and its mask; `phase` 0..3 is a
    step of the walk, 4 standing."""
    w, h = SIZES[label]
    image = np.full((h, w, 3), _KEY, np.uint8)
    swing = (-1, 0, 1, 0, 0)[phase]
    {"cat": _draw_cat, "dog1": _draw_brown_dog, "dog2": _draw_big_dog}[label](image, w, h, swing)
    if flipped:
        image = image[:, ::-1].copy()
    mask = np.any(image != _KEY, axis=2)
    return image, mask


def _legs(
    image: np.ndarray,
    xs: Sequence[float],
    top: int,
    h: int,
    swing: int,
    reach: int,
    colour: tuple[int, int, int],
    thickness: int,
) -> None:
    for index, x in enumerate(xs):
        offset = swing * reach * (1 if index % 2 == 0 else -1)
        cv2.line(image, (int(x), top), (int(x) + offset, h - 2), colour, thickness)


def _draw_cat(image: np.ndarray, w: int, h: int, swing: int) -> None:
    grey, dark = (150, 150, 156), (92, 92, 98)
    _legs(image, (w * 0.25, w * 0.35, w * 0.58, w * 0.68), int(h * 0.7), h, swing, 3, grey, 3)
    tail = np.array([[w * 0.2, h * 0.6], [w * 0.06, h * 0.45], [w * 0.05, h * 0.12]], np.int32)
    cv2.polylines(image, [tail], False, dark, 3)  # held up
    cv2.ellipse(image, (int(w * 0.46), int(h * 0.62)), (int(w * 0.28), int(h * 0.18)), 0, 0, 360, grey, -1)
    for stripe in (0.36, 0.46, 0.56):
        cv2.line(image, (int(w * stripe), int(h * 0.47)), (int(w * stripe) - 2, int(h * 0.62)), dark, 2)
    head = (int(w * 0.8), int(h * 0.4))
    radius = int(h * 0.17)
    for side in (-1, 1):  # pointed ears
        tip = (head[0] + side * radius // 2, head[1] - int(radius * 2.1))
        base = [(head[0] + side * radius, head[1] - radius // 3), (head[0], head[1] - radius)]
        cv2.fillPoly(image, [np.array([tip, *base], np.int32)], grey)
    cv2.circle(image, head, radius, grey, -1)
    cv2.circle(image, (head[0] + radius // 2, head[1] - 1), 2, (60, 180, 120), -1)  # green eye


def _draw_brown_dog(image: np.ndarray, w: int, h: int, swing: int) -> None:
    brown, dark = (42, 82, 150), (24, 48, 92)
    _legs(image, (w * 0.22, w * 0.32, w * 0.6, w * 0.7), int(h * 0.65), h, swing, 5, brown, 6)
    cv2.line(image, (int(w * 0.14), int(h * 0.5)), (int(w * 0.04), int(h * 0.28)), brown, 5)  # tail
    cv2.ellipse(image, (int(w * 0.45), int(h * 0.55)), (int(w * 0.32), int(h * 0.2)), 0, 0, 360, brown, -1)
    head = (int(w * 0.8), int(h * 0.32))
    cv2.circle(image, head, int(h * 0.17), brown, -1)
    cv2.ellipse(image, (int(w * 0.91), int(h * 0.38)), (int(w * 0.08), int(h * 0.08)), 0, 0, 360, brown, -1)
    cv2.circle(image, (int(w * 0.97), int(h * 0.35)), 3, (20, 20, 20), -1)  # nose
    cv2.ellipse(image, (int(w * 0.74), int(h * 0.38)), (int(w * 0.04), int(h * 0.15)), 10, 0, 360, dark, -1)  # ear


def _draw_big_dog(image: np.ndarray, w: int, h: int, swing: int) -> None:
    white, black = (236, 236, 236), (28, 28, 28)
    _legs(image, (w * 0.22, w * 0.32, w * 0.62, w * 0.72), int(h * 0.62), h, swing, 6, white, 9)
    for x in (w * 0.22, w * 0.32, w * 0.62, w * 0.72):  # black socks
        cv2.circle(image, (int(x), h - 5), 4, black, -1)
    cv2.line(image, (int(w * 0.13), int(h * 0.45)), (int(w * 0.03), int(h * 0.3)), black, 6)  # tail
    cv2.ellipse(image, (int(w * 0.46), int(h * 0.52)), (int(w * 0.34), int(h * 0.2)), 0, 0, 360, white, -1)
    cv2.ellipse(image, (int(w * 0.36), int(h * 0.46)), (int(w * 0.1), int(h * 0.1)), 0, 0, 360, black, -1)
    cv2.ellipse(image, (int(w * 0.58), int(h * 0.6)), (int(w * 0.07), int(h * 0.07)), 0, 0, 360, black, -1)
    head = (int(w * 0.82), int(h * 0.3))
    cv2.circle(image, head, int(h * 0.16), white, -1)
    cv2.ellipse(image, (int(w * 0.93), int(h * 0.36)), (int(w * 0.07), int(h * 0.07)), 0, 0, 360, white, -1)
    cv2.circle(image, (int(w * 0.98), int(h * 0.34)), 4, black, -1)  # nose
    cv2.ellipse(image, (int(w * 0.77), int(h * 0.32)), (int(w * 0.045), int(h * 0.15)), 10, 0, 360, black, -1)


def _paste(image: np.ndarray, sprite: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Draw the sprite's masked pixels with its top-left corner at (x, y), cut at the frame's edges."""
    h, w = mask.shape
    x1, y1 = max(0, x), max(0, y)
    x2, y2 = min(image.shape[1], x + w), min(image.shape[0], y + h)
    if x1 >= x2 or y1 >= y2:
        return
    region = image[y1:y2, x1:x2]
    cut = (slice(y1 - y, y2 - y), slice(x1 - x, x2 - x))
    region[mask[cut]] = sprite[cut][mask[cut]]
