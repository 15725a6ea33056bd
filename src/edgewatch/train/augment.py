"""Augmentations that suit a fixed camera: what changes from one day to the next is the light, the
blur of a dirty lens, where in the picture an object is and how near; the view itself does not turn
upside down. So: a mirror flip, a zoom between 3/4 and 4/3 with a shift (or a crop), colour and
brightness, and a blur now and then. No rotations, no vertical flips, no mosaics.

Each call takes one input-sized BGR image (and its boxes, for a detector) and returns new arrays.

Example:
    >>> rng = np.random.default_rng(0)
    >>> image = np.zeros((72, 128, 3), np.uint8)
    >>> pixels, boxes, keep = augment(image, np.array([[10.0, 10, 30, 40]]), rng, (128, 72))
    >>> pixels.shape, boxes.shape[1]
    ((72, 128, 3), 4)
"""

from __future__ import annotations

import cv2
import numpy as np

from edgewatch.models.geometry import LETTERBOX_FILL

ZOOM = (0.75, 4 / 3)
FLIP = 0.5
BLUR = 0.15
#: a box that keeps less than this share of its area inside the output is no longer that object
MIN_INSIDE = 0.4


def augment(
    image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, out_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A randomly changed copy of `image` of `out_size` (width, height): flipped, zoomed and shifted
    (when `out_size` is smaller than the image, a random crop of it), recoloured and maybe blurred.

    Args:
        image: H × W × 3 BGR uint8.
        boxes: N × 4 xyxy in the image's pixels.
        rng: the run's random numbers (the same seed gives the same run).
        out_size: the size of the result.

    Returns:
        The new image, its boxes (clipped to it), and which of the N boxes were kept (those with at
        least `MIN_INSIDE` of their area still in view).
    """
    height, width = image.shape[:2]
    out_w, out_h = out_size
    zoom = float(np.exp(rng.uniform(np.log(ZOOM[0]), np.log(ZOOM[1]))))
    flip = rng.random() < FLIP
    # the zoomed picture's corner lands anywhere that keeps some of the picture across the output
    span_x, span_y = width * zoom - out_w, height * zoom - out_h
    shift_x = -rng.uniform(min(0.0, span_x), max(0.0, span_x))
    shift_y = -rng.uniform(min(0.0, span_y), max(0.0, span_y))
    sign = -1.0 if flip else 1.0
    matrix = np.array([[sign * zoom, 0, shift_x + (width * zoom if flip else 0)], [0, zoom, shift_y]], np.float32)
    pixels = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(LETTERBOX_FILL,) * 3)  # fmt: skip
    pixels = _recolour(pixels, rng)
    if rng.random() < BLUR:
        pixels = cv2.GaussianBlur(pixels, (0, 0), sigmaX=float(rng.uniform(0.5, 1.5)))
    moved = _move(boxes, matrix, flip)
    clipped = np.clip(moved, 0, [out_w, out_h, out_w, out_h]).astype(np.float32)
    area = np.prod(np.maximum(moved[:, 2:] - moved[:, :2], 1e-6), axis=1)
    inside = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
    keep = inside >= MIN_INSIDE * area
    return pixels, clipped[keep], keep


def _move(boxes: np.ndarray, matrix: np.ndarray, flip: bool) -> np.ndarray:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    xs = boxes[:, [0, 2]] * matrix[0, 0] + matrix[0, 2]
    ys = boxes[:, [1, 3]] * matrix[1, 1] + matrix[1, 2]
    if flip:
        xs = xs[:, ::-1]
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)


def _recolour(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hue, saturation and brightness gains (as YOLO's HSV augmentation), then contrast."""
    gains = rng.uniform([-0.015, 0.6, 0.6], [0.015, 1.4, 1.4])
    hue, saturation, value = cv2.split(cv2.cvtColor(pixels, cv2.COLOR_BGR2HSV))
    lookup = np.arange(256, dtype=np.float32)
    hue = cv2.LUT(hue, ((lookup + gains[0] * 180) % 180).astype(np.uint8))
    saturation = cv2.LUT(saturation, np.clip(lookup * gains[1], 0, 255).astype(np.uint8))
    value = cv2.LUT(value, np.clip(lookup * gains[2], 0, 255).astype(np.uint8))
    pixels = cv2.cvtColor(cv2.merge([hue, saturation, value]), cv2.COLOR_HSV2BGR)
    contrast = float(rng.uniform(0.8, 1.2))
    return cv2.convertScaleAbs(pixels, alpha=contrast, beta=float(128 * (1 - contrast)))
