"""Synthetic street scenes with exact ground truth: cars and people entering and leaving by known
sides, stopping and going, passing behind a post. Tests, the trained demo model and the counting
checks all use them, so no video has to be downloaded.

Example:
    >>> scene = StreetScene(seed=1)
    >>> image, truth = scene.render(40)
    >>> image.shape, sorted({item.label for item in truth}) <= ["car", "person"]
    ((360, 640, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from edgewatch.sources.base import Picture, Source, SourceInfo

LABELS = ("person", "car")
#: an object less visible than this (behind the post) is not asked of a detector, nor held against it
HIDDEN_BELOW = 0.5
SIDES = ("left", "right", "top", "bottom")


@dataclass(frozen=True, slots=True)
class Actor:
    """One object's whole life in the scene."""

    track_id: int
    label: str
    size: tuple[int, int]  # width, height in pixels
    start: tuple[float, float]  # top-left corner when it appears (off screen)
    end: tuple[float, float]  # top-left corner when it is gone (off screen)
    first_frame: int
    speed: float  # pixels per frame while moving
    pause_at: float  # fraction of the path where it stops (stop-and-go); 0 = never
    pause_frames: int
    colour: tuple[int, int, int]
    entered: str
    exited: str

    @property
    def moving_frames(self) -> int:
        distance = float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))
        return int(np.ceil(distance / self.speed))

    @property
    def last_frame(self) -> int:
        return self.first_frame + self.moving_frames + self.pause_frames

    def corner(self, frame: int) -> tuple[float, float] | None:
        """Top-left corner at `frame`, or None before it appears or after it has gone."""
        if not self.first_frame <= frame <= self.last_frame:
            return None
        steps = frame - self.first_frame
        pause_start = int(self.pause_at * self.moving_frames) if self.pause_at else self.moving_frames + 1
        if steps > pause_start:
            steps = max(pause_start, steps - self.pause_frames)
        progress = min(1.0, steps / self.moving_frames)
        return (
            self.start[0] + (self.end[0] - self.start[0]) * progress,
            self.start[1] + (self.end[1] - self.start[1]) * progress,
        )


@dataclass(frozen=True, slots=True)
class TruthBox:
    """Ground truth for one object in one frame."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]  # xyxy, clipped to the frame
    visible: float  # fraction of the clipped box not hidden behind the post

    @property
    def hidden(self) -> bool:
        return self.visible < HIDDEN_BELOW


@dataclass(frozen=True, slots=True)
class TruthTrack:
    """One object's ground truth over the whole scene.

    Attributes:
        first_frame, last_frame: the first and last frame it is in view and not hidden.
        entered, exited: the border side it came in by and left by; `exited` is None when it is still
            in view at the end.
    """

    track_id: int
    label: str
    first_frame: int
    last_frame: int
    entered: str
    exited: str | None


@dataclass
class StreetScene:
    """A street seen from the side: cars drive along two lanes, people walk the pavement or cross the
    road, and a post in the foreground hides whatever passes behind it.

    Args:
        width, height: frame size.
        fps: frames per second of the scene's clock.
        seconds: length; actors are scheduled to appear within it.
        cars, people: how many of each appear.
        seed: the same seed gives the same scene, pixel for pixel.
    """

    width: int = 640
    height: int = 360
    fps: float = 25.0
    seconds: float = 20.0
    cars: int = 8
    people: int = 8
    seed: int = 0
    actors: list[Actor] = field(init=False)
    post: tuple[int, int, int, int] = field(init=False)  # x1, y1, x2, y2 of the foreground post

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._background = self._paint_background(rng)
        post_x = int(self.width * 0.62)
        self.post = (post_x, int(self.height * 0.2), post_x + max(8, self.width // 40), self.height)
        self.actors = self._schedule(rng)
        self._noise = rng.integers(-6, 7, size=(8, self.height, self.width, 1), dtype=np.int16)

    @property
    def frame_count(self) -> int:
        return int(self.seconds * self.fps)

    @property
    def lanes(self) -> tuple[float, float]:
        """y of the far (right → left) and near (left → right) lane's car tops."""
        return self.height * 0.52, self.height * 0.66

    def _paint_background(self, rng: np.random.Generator) -> np.ndarray:
        w, h = self.width, self.height
        image = np.zeros((h, w, 3), np.uint8)
        image[: int(h * 0.45)] = (190, 170, 150)  # sky, BGR
        x = 0
        while x < w:  # a row of buildings with windows
            bw = int(rng.integers(w // 10, w // 5))
            top = int(rng.integers(int(h * 0.05), int(h * 0.3)))
            colour = tuple(int(c) for c in rng.integers(70, 170, 3))
            cv2.rectangle(image, (x, top), (x + bw, int(h * 0.45)), colour, -1)
            for wy in range(top + 8, int(h * 0.42), 18):
                for wx in range(x + 6, x + bw - 10, 16):
                    cv2.rectangle(image, (wx, wy), (wx + 7, wy + 9), (60, 70, 80), -1)
            x += bw
        image[int(h * 0.45) : int(h * 0.5)] = (150, 155, 160)  # far pavement
        image[int(h * 0.5) : int(h * 0.85)] = (85, 85, 85)  # road
        for lx in range(0, w, 60):  # lane markings
            cv2.rectangle(image, (lx, int(h * 0.67)), (lx + 30, int(h * 0.68)), (220, 220, 220), -1)
        image[int(h * 0.85) :] = (140, 145, 150)  # near pavement
        return image

    def _schedule(self, rng: np.random.Generator) -> list[Actor]:
        actors: list[Actor] = []
        last_frame = max(1, self.frame_count - 1)
        lane_free_from = {True: 0, False: 0}  # one car per lane at a time: cars never drive through each other
        # People on one path in one direction follow each other, never faster than the one ahead and
        # never pausing, so nobody walks through anybody (crossing paths still meet, briefly).
        path_free_from: dict[tuple[float, float], tuple[int, float]] = {}  # direction → (free from, top speed)
        for index in range(self.cars + self.people):
            is_car = index < self.cars
            first = int(rng.integers(0, max(1, int(last_frame * 0.7))))
            if is_car:
                size = (
                    int(rng.integers(self.width // 7, self.width // 5)),
                    int(rng.integers(self.height // 9, self.height // 7)),
                )
                left_to_right = bool(rng.integers(0, 2))
                y = self.lanes[1] if left_to_right else self.lanes[0]
                start, end = (-size[0] - 2.0, y), (self.width + 2.0, y)
                if not left_to_right:
                    start, end = end, start
                sides = ("left", "right") if left_to_right else ("right", "left")
                speed = float(rng.uniform(3.0, 7.0)) * self.width / 640
                colour = tuple(int(c) for c in rng.integers(30, 230, 3))
            else:
                size = (
                    int(rng.integers(self.width // 40, self.width // 28)),
                    int(rng.integers(self.height // 6, self.height // 4.5)),
                )
                if rng.random() < 0.35:  # crossing the road, top to bottom or back
                    x = float(rng.uniform(0.1, 0.9) * self.width)
                    if self.post[0] - size[0] - 4 < x < self.post[2] + 4:  # not along the post, hidden all the way
                        x = self.post[0] - size[0] - 4 - float(rng.uniform(0.05, 0.3)) * self.width
                    start, end = (x, -size[1] - 2.0), (x, self.height + 2.0)
                    sides = ("top", "bottom")
                    if rng.integers(0, 2):
                        start, end, sides = end, start, ("bottom", "top")
                else:  # along the near pavement
                    y = self.height * 0.97 - size[1]
                    start, end = (-size[0] - 2.0, y), (self.width + 2.0, y)
                    sides = ("left", "right")
                    if rng.integers(0, 2):
                        start, end, sides = end, start, ("right", "left")
                speed = float(rng.uniform(1.2, 2.5)) * self.width / 640
                colour = tuple(int(c) for c in rng.integers(20, 240, 3))
            stops = rng.random() < 0.3
            if is_car:
                first = max(first, lane_free_from[left_to_right])
            else:
                stops = False
                direction = (float(np.sign(end[0] - start[0])), float(np.sign(end[1] - start[1])))
                free_from, top_speed = path_free_from.get(direction, (0, np.inf))
                first, speed = max(first, free_from), min(speed, top_speed)
                gap = max(size) + 12  # pixels between one walker and the next
                path_free_from[direction] = (first + int(np.ceil(gap / speed)), speed)
            actors.append(
                Actor(
                    track_id=index + 1,
                    label="car" if is_car else "person",
                    size=size,
                    start=start,
                    end=end,
                    first_frame=first,
                    speed=speed,
                    pause_at=float(rng.uniform(0.3, 0.7)) if stops else 0.0,
                    pause_frames=int(rng.integers(int(self.fps), int(3 * self.fps))) if stops else 0,
                    colour=colour,
                    entered=sides[0],
                    exited=sides[1],
                )
            )
            if is_car:
                lane_free_from[left_to_right] = actors[-1].last_frame + 1
        return actors

    def render(self, frame: int) -> tuple[np.ndarray, list[TruthBox]]:
        """The picture at `frame` and the ground truth of every object at least partly in view."""
        image = self._background.copy()
        truth = self.truth(frame)
        by_id = {actor.track_id: actor for actor in self.actors}
        for item in truth:
            actor = by_id[item.track_id]
            x, y = actor.corner(frame)
            w, h = actor.size
            (_draw_car if actor.label == "car" else _draw_person)(image, round(x), round(y), w, h, actor.colour, frame)
        px1, py1, px2, py2 = self.post
        cv2.rectangle(image, (px1, py1), (px2, py2), (40, 60, 50), -1)
        noisy = image.astype(np.int16) + self._noise[frame % len(self._noise)]
        return np.clip(noisy, 0, 255).astype(np.uint8), truth

    def truth(self, frame: int) -> list[TruthBox]:
        """The ground truth at `frame` without drawing it, in drawing order (cars, then the people on
        the pavement in front of them)."""
        truth = []
        for actor in sorted(self.actors, key=lambda a: (a.label == "person", a.track_id)):
            corner = actor.corner(frame)
            if corner is None:
                continue
            x, y = corner
            w, h = actor.size
            box = (max(0.0, x), max(0.0, y), min(float(self.width), x + w), min(float(self.height), y + h))
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            truth.append(TruthBox(actor.track_id, actor.label, box, self._visible(box)))
        return truth

    def tracks(self, min_frames: int = 1) -> list[TruthTrack]:
        """Every object in view (not hidden) for at least `min_frames` frames of the scene."""
        frames: dict[int, list[int]] = {}
        for frame in range(self.frame_count):
            for item in self.truth(frame):
                if not item.hidden:
                    frames.setdefault(item.track_id, []).append(frame)
        by_id = {actor.track_id: actor for actor in self.actors}
        return [
            TruthTrack(
                track_id,
                by_id[track_id].label,
                seen[0],
                seen[-1],
                by_id[track_id].entered,
                by_id[track_id].exited if by_id[track_id].last_frame < self.frame_count else None,
            )
            for track_id, seen in sorted(frames.items())
            if len(seen) >= min_frames
        ]

    def crossings(self, start: tuple[float, float], end: tuple[float, float]) -> list[tuple[int, int, str, str]]:
        """(frame, track id, label, 'in' or 'out') each time a box's bottom centre crosses the segment
        start → end; 'in' is towards the left-hand side of the walk from start to end."""
        (ax, ay), (bx, by) = start, end
        side: dict[int, bool] = {}
        found = []
        for frame in range(self.frame_count):
            for item in self.truth(frame):
                x, y = (item.box[0] + item.box[2]) / 2, item.box[3]
                left = (bx - ax) * (y - ay) - (by - ay) * (x - ax) < 0  # screen y points down
                previous = side.get(item.track_id)
                side[item.track_id] = left
                if previous is not None and previous != left and _within_segment(x, y, start, end):
                    found.append((frame, item.track_id, item.label, "in" if left else "out"))
        return found

    def _visible(self, box: tuple[float, float, float, float]) -> float:
        px1, py1, px2, py2 = self.post
        overlap_w = max(0.0, min(box[2], px2) - max(box[0], px1))
        overlap_h = max(0.0, min(box[3], py2) - max(box[1], py1))
        area = (box[2] - box[0]) * (box[3] - box[1])
        return 1.0 - overlap_w * overlap_h / area


def _within_segment(x: float, y: float, start: tuple[float, float], end: tuple[float, float]) -> bool:
    """Whether the point's projection falls between the segment's ends (objects move a few pixels a
    frame, so the point where a box is first seen past the line is on it, near enough)."""
    (ax, ay), (bx, by) = start, end
    length = (bx - ax) ** 2 + (by - ay) ** 2
    t = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length if length else 0.0
    return 0.0 <= t <= 1.0


def _draw_car(image: np.ndarray, x: int, y: int, w: int, h: int, colour: tuple[int, int, int], frame: int) -> None:
    cv2.rectangle(image, (x, y + h // 3), (x + w, y + h - h // 5), colour, -1)  # body
    cv2.rectangle(image, (x + w // 5, y), (x + w - w // 5, y + h // 3 + 1), colour, -1)  # cabin
    cv2.rectangle(image, (x + w // 4, y + h // 10), (x + w - w // 4, y + h // 3), (230, 210, 170), -1)  # windows
    radius = max(2, h // 5)
    for wheel_x in (x + w // 5, x + w - w // 5):
        cv2.circle(image, (wheel_x, y + h - radius), radius, (20, 20, 20), -1)


def _draw_person(image: np.ndarray, x: int, y: int, w: int, h: int, colour: tuple[int, int, int], frame: int) -> None:
    head = max(2, w // 2)
    cv2.circle(image, (x + w // 2, y + head), head, (150, 180, 220), -1)  # face
    cv2.rectangle(image, (x, y + 2 * head), (x + w, y + int(h * 0.6)), colour, -1)  # shirt
    swing = int(w * 0.3 * np.sin(frame * 0.5))  # walking legs
    hip = (x + w // 2, y + int(h * 0.6))
    for offset in (swing, -swing):
        cv2.line(image, hip, (x + w // 2 + offset, y + h - 1), (60, 40, 30), max(2, w // 4))


class Scene(Protocol):
    """What `SyntheticSource` needs of a scene (`StreetScene`, `PetsScene`, `DoorScene`): its clock,
    its size and a picture for each frame."""

    seed: int
    fps: float
    width: int
    height: int

    @property
    def frame_count(self) -> int: ...

    def render(self, frame: int) -> tuple[np.ndarray, Any]: ...


class SyntheticSource(Source):
    """A synthetic scene as a source (`--source synthetic:street`, optionally `synthetic:street?seed=3`;
    also `synthetic:pets` and `synthetic:door`): a file-like input with a known frame count, whose
    ground truth stays available in `scene`.

    Args:
        scene: the scene to play.
        name: its name in `synthetic:<name>`, for the source's uri.
        options: the query it was opened with besides the seed (`seconds=10&cars=3`), for the uri.
    """

    def __init__(self, scene: Scene, name: str = "street", options: str = "") -> None:
        self.scene = scene
        self._frame = 0
        self.info = SourceInfo(
            uri=f"synthetic:{name}?seed={scene.seed}" + (f"&{options}" if options else ""),
            fps=scene.fps,
            width=scene.width,
            height=scene.height,
            frame_count=scene.frame_count,
            live=False,
        )

    def read(self) -> Picture | None:
        if self._frame >= self.scene.frame_count:
            return None
        image, _ = self.scene.render(self._frame)
        self._frame += 1
        return Picture(image)

    def skip(self) -> bool:
        if self._frame >= self.scene.frame_count:
            return False
        self._frame += 1
        return True

    def rewind(self) -> bool:
        self._frame = 0
        return True
