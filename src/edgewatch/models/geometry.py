"""The one place that maps between frame pixels and a model's input pixels.

Every model backend resizes frames with `prepare_input` and maps boxes back with
`InputGeometry.to_frame`: both derive from the same `InputGeometry`, so pre-processing and the
inverse mapping cannot disagree (the resize/scale mistakes that put boxes in the wrong place).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LETTERBOX_FILL = 114  # the grey Ultralytics pads with; models trained that way expect it


@dataclass(frozen=True, slots=True)
class InputGeometry:
    """How a frame of `frame_size` becomes a model input of `input_size`.

    A frame point (x, y) lands at model point (x * scale_x + pad_x, y * scale_y + pad_y).
    Plain resize stretches each axis on its own (no padding); letterbox keeps the aspect ratio with
    one scale for both axes and centres the picture between grey bars.

    Example:
        >>> geometry = InputGeometry.plan((1280, 720), (640, 640), letterbox=True)
        >>> geometry.scale_x, geometry.pad_y
        (0.5, 140.0)
        >>> geometry.to_frame(np.array([[0.0, 140.0, 640.0, 500.0]])).tolist()
        [[0.0, 0.0, 1280.0, 720.0]]
    """

    frame_size: tuple[int, int]
    input_size: tuple[int, int]
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    content_size: tuple[int, int]

    @classmethod
    def plan(cls, frame_size: tuple[int, int], input_size: tuple[int, int], letterbox: bool) -> InputGeometry:
        """Geometry for a (width, height) frame and a (width, height) model input."""
        frame_w, frame_h = frame_size
        input_w, input_h = input_size
        if not letterbox:
            return cls(frame_size, input_size, input_w / frame_w, input_h / frame_h, 0.0, 0.0, input_size)
        scale = min(input_w / frame_w, input_h / frame_h)
        content_w = min(input_w, max(1, round(frame_w * scale)))
        content_h = min(input_h, max(1, round(frame_h * scale)))
        # The picture is resized to whole pixels, so each axis gets its exact scale.
        return cls(
            frame_size,
            input_size,
            content_w / frame_w,
            content_h / frame_h,
            float((input_w - content_w) // 2),
            float((input_h - content_h) // 2),
            (content_w, content_h),
        )

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N×4 xyxy) in model-input pixels → frame pixels, clipped to the frame."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        mapped = (boxes - offset) / scale
        width, height = self.frame_size
        return np.clip(mapped, 0, np.array([width, height, width, height], np.float32))

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N×4 xyxy) in frame pixels → model-input pixels."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        return boxes * scale + offset


def prepare_input(image: np.ndarray, geometry: InputGeometry) -> np.ndarray:
    """The frame resized (and letterboxed) as `geometry` says, still BGR uint8 HxWx3."""
    content_w, content_h = geometry.content_size
    if (image.shape[1], image.shape[0]) != (content_w, content_h):
        # bilinear, as Ultralytics' letterbox: INTER_AREA is 8-15x slower at non-integer factors
        image = cv2.resize(image, (content_w, content_h), interpolation=cv2.INTER_LINEAR)
    input_w, input_h = geometry.input_size
    if (content_w, content_h) == (input_w, input_h):
        return image
    left, top = int(geometry.pad_x), int(geometry.pad_y)
    return cv2.copyMakeBorder(
        image, top, input_h - content_h - top, left, input_w - content_w - left, cv2.BORDER_CONSTANT,
        value=(LETTERBOX_FILL,) * 3,
    )  # fmt: skip
