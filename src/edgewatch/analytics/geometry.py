"""Points of a box, points of the config, and the frame border an object came from or went to."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv

SIDES = ("left", "right", "top", "bottom")
INSIDE = "inside"


def anchor_points(xyxy: np.ndarray, anchor: str) -> np.ndarray:
    """The `anchor` point ('bottom_center', 'center', ...) of each box, N × 2."""
    return sv.Detections(xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4)).get_anchors_coordinates(
        sv.Position[anchor.upper()]
    )


def to_pixels(points: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    """Config points as pixels: when every coordinate is within 0..1 they are fractions of the frame."""
    array = np.asarray(points, np.float64).reshape(-1, 2)
    if np.all((array >= 0) & (array <= 1)):
        array = array * (width, height)
    return array


def border_side(box: np.ndarray, width: int, height: int, heading: np.ndarray | None) -> str:
    """The frame border a box is at, or 'inside'.

    A border counts when the box is within its own size (or 5% of the frame) of it. A moving object
    (`heading`, its velocity; minus it for where it came from) must also be heading for that border:
    a person walking along the bottom of the picture is not leaving by the bottom.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    gaps = {"left": x1, "right": width - x2, "top": y1, "bottom": height - y2}
    margins = {
        "left": max(0.05 * width, x2 - x1),
        "right": max(0.05 * width, x2 - x1),
        "top": max(0.05 * height, y2 - y1),
        "bottom": max(0.05 * height, y2 - y1),
    }
    near = [side for side in SIDES if gaps[side] <= margins[side]]
    if heading is not None:
        speed = float(np.hypot(*heading))
        toward = {"left": -heading[0], "right": heading[0], "top": -heading[1], "bottom": heading[1]}
        near = [side for side in near if toward[side] >= 0.3 * speed]
    if not near:
        return INSIDE
    return min(near, key=lambda side: gaps[side] / margins[side])
