"""Turning a BGR frame into a model's input tensor."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
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

    def _blob_params(self) -> cv2.dnn.Image2BlobParams:
        """OpenCV's one-pass conversion (4x faster than numpy's): (pixel - mean') * factor per channel,
        which is (pixel * scale - mean) / std with mean' = mean / scale and factor = scale / std."""
        params = cv2.dnn.Image2BlobParams()
        params.scalefactor = (*(self.scale / std for std in self.std), 0.0)
        params.mean = (*(mean / self.scale for mean in self.mean), 0.0)
        params.swapRB = self.rgb
        params.ddepth = cv2.CV_32F
        params.datalayout = cv2.dnn.DNN_LAYOUT_NCHW if self.layout == "NCHW" else cv2.dnn.DNN_LAYOUT_NHWC
        return params

    def geometry(self, frame_width: int, frame_height: int) -> InputGeometry:
        return InputGeometry.plan((frame_width, frame_height), self.input_size, self.letterbox)

    def tensor(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[InputGeometry]]:
        """A batch tensor of `images`, and the geometry of each for mapping boxes back."""
        geometries = [self.geometry(image.shape[1], image.shape[0]) for image in images]
        resized = [prepare_input(image, geometry) for image, geometry in zip(images, geometries, strict=True)]
        if self.dtype == "float32" and self.layout == "NCHW" and len(set(self.std)) == 1:
            factor = self.scale / self.std[0]  # the plainer call is faster still (1.3 ms for 640×640)
            mean = tuple(value / self.scale for value in self.mean)
            return cv2.dnn.blobFromImages(resized, factor, mean=mean, swapRB=self.rgb), geometries
        if self.dtype == "float32":
            return cv2.dnn.blobFromImagesWithParams(resized, self._blob_params()), geometries
        pixels = np.stack(resized)
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
