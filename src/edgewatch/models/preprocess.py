"""Turning a BGR frame into a model's input tensor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewatch.models.geometry import InputGeometry, prepare_input


@dataclass(frozen=True, slots=True)
class Preprocess:
    """How a model wants its pixels.

    Attributes:
        input_size: (width, height) of the model input.
        letterbox: keep the aspect ratio with grey bars (YOLO) instead of stretching (SSD, classifiers).
        rgb: swap BGR to RGB.
        scale: multiply pixel values by this (1/255 for models trained on 0..1).
        mean, std: per channel, in the model's channel order, applied after `scale`.
        layout: "NCHW" or "NHWC".
        dtype: "float32", "float16" or "uint8".
    """

    input_size: tuple[int, int]
    letterbox: bool = True
    rgb: bool = True
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"
    dtype: str = "float32"

    def geometry(self, frame_width: int, frame_height: int) -> InputGeometry:
        return InputGeometry.plan((frame_width, frame_height), self.input_size, self.letterbox)

    def tensor(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[InputGeometry]]:
        """A batch tensor of `images`, and the geometry of each for mapping boxes back."""
        geometries = [self.geometry(image.shape[1], image.shape[0]) for image in images]
        pixels = np.stack([prepare_input(image, geometry) for image, geometry in zip(images, geometries, strict=True)])
        if self.rgb:
            pixels = pixels[..., ::-1]
        if self.dtype == "uint8":
            batch = np.ascontiguousarray(pixels)
        else:
            batch = pixels.astype(np.float32)
            if self.scale != 1:
                batch *= np.float32(self.scale)
            if any(self.mean) or any(s != 1 for s in self.std):
                batch -= np.asarray(self.mean, np.float32)
                batch /= np.asarray(self.std, np.float32)
            if self.dtype == "float16":
                batch = batch.astype(np.float16)
        if self.layout == "NCHW":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return batch, geometries
