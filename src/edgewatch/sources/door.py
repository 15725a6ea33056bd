"""A synthetic door that opens and closes, under slowly changing light, with the exact state of every
frame: the scene the `door` classifier is trained on and measured with.

Example:
    >>> scene = DoorScene(seed=1)
    >>> image, state = scene.render(0)
    >>> image.shape, state in STATES
    ((360, 640, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.sources.pets import time_intervals

#: class order of the door classifier too
STATES = ("closed", "open")
#: the door counts as open once more than this share of the doorway is open space
OPEN_FROM = 0.5


@dataclass
class DoorScene:
    """A wall with a door, seen from the front. The door swings open towards the viewer (its leaf
    narrows and the dark room behind shows) and shut again, in 0.5 to 1 s, and stays open or shut
    for 2 to 8 s at a time; the light drifts slowly brighter and darker, and every frame has noise.
    Wall and door colours, the door's size and place, and its hinge side vary with the seed.

    Args:
        width, height: frame size.
        fps: frames per second of the scene's clock.
        seconds: length of the scene.
        seed: the same seed gives the same scene, pixel for pixel.
        open_share: about this share of the time open, in the long run (a door that is rarely open,
            such as 0.05, for sampling the rare state); the door still stays open 2 to 8 s, and the
            shut stretches last longer (or shorter) to match. None: open about half of the time.
            Whatever the share, the seed draws the same door and wall.
    """

    width: int = 640
    height: int = 360
    fps: float = 25.0
    seconds: float = 20.0
    seed: int = 0
    open_share: float | None = None
    door: tuple[int, int, int, int] = field(init=False)  # x1, y1, x2, y2 of the doorway
    hinge_left: bool = field(init=False)
    openness: np.ndarray = field(init=False, repr=False)  # per frame: share of the doorway that is open space
    brightness: np.ndarray = field(init=False, repr=False)  # per frame: factor on every pixel

    def __post_init__(self) -> None:
        if self.open_share is not None and not 0 < self.open_share < 1:
            raise EdgewatchError(
                f"door open_share={self.open_share} is not a share", "give a number between 0 and 1, e.g. 0.05"
            )
        rng = np.random.default_rng(self.seed)
        door_w = int(self.width * rng.uniform(0.17, 0.22))
        door_h = int(self.height * rng.uniform(0.6, 0.7))
        bottom = int(self.height * 0.86)
        left = int(self.width * rng.uniform(0.2, 0.8) - door_w / 2)
        self.door = (left, bottom - door_h, left + door_w, bottom)
        self.hinge_left = bool(rng.random() < 0.5)
        self._leaf_colour = tuple(int(c) for c in rng.integers(90, 220, 3))
        self._wall = self._paint_wall(rng)
        self.openness = self._schedule(rng)
        times = np.arange(self.frame_count) / self.fps
        slow, slower = rng.uniform(8, 20), rng.uniform(25, 60)  # periods in seconds
        self.brightness = (
            1
            + rng.uniform(0.12, 0.25) * np.sin(2 * np.pi * times / slow + rng.uniform(0, 2 * np.pi))
            + rng.uniform(0.05, 0.12) * np.sin(2 * np.pi * times / slower + rng.uniform(0, 2 * np.pi))
        )
        self._noise = rng.integers(-8, 9, size=(8, self.height, self.width, 1), dtype=np.int16)

    @property
    def frame_count(self) -> int:
        return int(self.seconds * self.fps)

    def state(self, frame: int) -> str:
        """`open` once more than half of the doorway is open space, else `closed`."""
        return STATES[int(self.openness[frame] > OPEN_FROM)]

    def open_intervals(self) -> list[tuple[float, float]]:
        """The times (first frame's, last frame's, in seconds) between which the door is open."""
        return time_intervals(self.openness > OPEN_FROM, self.fps)

    def render(self, frame: int) -> tuple[np.ndarray, str]:
        """The picture at `frame` and the door's state then."""
        image = self._wall.copy()
        self._draw_leaf(image, float(self.openness[frame]))
        lit = cv2.convertScaleAbs(image, alpha=float(self.brightness[frame]))
        noisy = lit.astype(np.int16) + self._noise[frame % len(self._noise)]
        return np.clip(noisy, 0, 255).astype(np.uint8), self.state(frame)

    def _paint_wall(self, rng: np.random.Generator) -> np.ndarray:
        w, h = self.width, self.height
        x1, y1, x2, y2 = self.door
        image = np.zeros((h, w, 3), np.uint8)
        image[:] = tuple(int(c) for c in rng.integers(140, 215, 3))
        image[y2:] = tuple(int(c) for c in rng.integers(60, 130, 3))  # floor
        image[y2 - 6 : y2] = (90, 90, 95)  # skirting board
        casing = tuple(int(c) for c in rng.integers(150, 240, 3))
        cv2.rectangle(image, (x1 - 8, y1 - 8), (x2 + 8, y2), casing, -1)
        dark = int(rng.integers(18, 45))
        image[y1:y2, x1:x2] = (dark, dark, dark + 4)  # the unlit room behind
        far_floor = y2 - (y2 - y1) // 5
        image[far_floor:y2, x1:x2] = (dark + 18, dark + 20, dark + 22)
        switch_x = x2 + 30 if self.hinge_left else x1 - 44
        cv2.rectangle(image, (switch_x, (y1 + y2) // 2), (switch_x + 14, (y1 + y2) // 2 + 22), (225, 225, 225), -1)
        return image

    def _schedule(self, rng: np.random.Generator) -> np.ndarray:
        """Openness per frame: shut or open for 2 to 8 s, then a swing of 0.5 to 1 s, eased. With an
        `open_share`, each shut stay is stretched by one factor; the draws stay the same ones, in the
        same order, so that the default scene of every seed is the one the door classifier learnt."""
        openness = np.empty(self.frame_count)
        frame, level = 0, float(rng.random() < (0.4 if self.open_share is None else self.open_share))
        shut_factor = 1.0 if self.open_share is None else _shut_factor(self.open_share)
        while frame < self.frame_count:
            stay = int(rng.uniform(2, 8) * self.fps * (shut_factor if level == 0 else 1.0))
            openness[frame : frame + stay] = level
            frame += stay
            swing = int(rng.uniform(0.5, 1.0) * self.fps)
            u = np.arange(1, swing + 1) / swing
            eased = u * u * (3 - 2 * u)
            target = 1.0 - level
            part = openness[frame : frame + swing]
            part[:] = (level + (target - level) * eased)[: len(part)]
            frame, level = frame + swing, target
        return openness

    def _draw_leaf(self, image: np.ndarray, openness: float) -> None:
        """The leaf swung towards the viewer far enough to leave `openness` of the doorway open: its
        front shrinks to cos(angle) of its width, and its free edge, nearer the camera, looks taller."""
        x1, y1, x2, y2 = self.door
        width = x2 - x1
        cos = 1.0 - 0.97 * openness
        sin = float(np.sqrt(1 - cos * cos))
        hinge = x1 if self.hinge_left else x2
        towards = 1 if self.hinge_left else -1
        grow = 0.12 * width * sin

        def on_leaf(along: float, down: float) -> tuple[float, float]:
            """A point of the leaf (`along` from hinge 0 to free edge 1, `down` from top 0 to bottom 1)
            in the picture."""
            top, bottom = y1 - grow * along, y2 + grow * along
            return hinge + towards * width * cos * along, top + (bottom - top) * down

        front = np.array([on_leaf(0, 0), on_leaf(1, 0), on_leaf(1, 1), on_leaf(0, 1)])
        cv2.fillPoly(image, [front.round().astype(np.int32)], self._leaf_colour)
        shade = tuple(int(c * 0.7) for c in self._leaf_colour)
        for top, bottom in ((0.08, 0.45), (0.55, 0.92)):  # panels
            panel = np.array([on_leaf(0.15, top), on_leaf(0.85, top), on_leaf(0.85, bottom), on_leaf(0.15, bottom)])
            cv2.polylines(image, [panel.round().astype(np.int32)], True, shade, 2)
        free = hinge + towards * width * cos
        edge = free + towards * 7 * sin  # the leaf's thickness shows as it turns
        side = np.array([(free, y1 - grow), (edge, y1 - grow), (edge, y2 + grow), (free, y2 + grow)])
        cv2.fillPoly(image, [side.round().astype(np.int32)], shade)
        knob = np.round(on_leaf(0.88, 0.5)).astype(int)
        cv2.circle(image, (int(knob[0]), int(knob[1])), 5, (40, 170, 200), -1)


def _shut_factor(open_share: float) -> float:
    """How much longer than the usual 2 to 8 s (5 s on average) the door stays shut for it to be open
    `open_share` of the time. A cycle is open for 5 s plus half of each of its two swings (0.75 s on
    average each), and shut for the shut stay plus the other halves: open / (open + shut) = share."""
    opened, swings = 5.0 + 0.75, 0.75
    return max(opened / open_share - opened - swings, 0.0) / 5.0
