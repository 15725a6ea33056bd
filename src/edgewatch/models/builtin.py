"""Detectors that ship inside OpenCV and need no download: HOG people, Haar cascades, motion blobs.

Their raw outputs are not probabilities, so each maps its own evidence to a 0..1 score (documented
in docs/detectors.md) that `min_score` can filter on like any model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import supervision as sv

from edgewatch.models.base import Detector, make_detections, xywh_to_xyxy

HAAR_CASCADES = {
    "haar:face": ("haarcascade_frontalface_default.xml", "face", (24, 24)),
    "haar:catface": ("haarcascade_frontalcatface.xml", "cat_face", (24, 24)),
    "haar:fullbody": ("haarcascade_fullbody.xml", "person", (24, 48)),
    "haar:plate": ("haarcascade_russian_plate_number.xml", "plate", (40, 12)),
}


class HogPeopleDetector(Detector):
    """OpenCV's HOG + linear SVM pedestrian detector (Dalal & Triggs).

    Score: `1 - exp(-w)` of the SVM margin `w`, so w = 0.5 scores 0.39 and w = 1 scores 0.63.
    It finds upright people at least 128 px tall.
    """

    name = "hog"
    labels: ClassVar[list[str]] = ["person"]
    default_min_score = 0.3

    def __init__(self, scale: float = 1.05, win_stride: int = 8) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._scale = scale
        self._win_stride = (win_stride, win_stride)

    def detect(self, image: np.ndarray) -> sv.Detections:
        width, height = self._hog.winSize
        if image.shape[0] < height or image.shape[1] < width:  # OpenCV crashes on a picture smaller than a person
            return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), self.labels)
        rects, weights = self._hog.detectMultiScale(
            image, winStride=self._win_stride, padding=(8, 8), scale=self._scale
        )
        margins = np.asarray(weights, dtype=np.float32).reshape(-1)
        scores = 1.0 - np.exp(-np.clip(margins, 0.0, None))
        return make_detections(xywh_to_xyxy(rects), scores, np.zeros(len(margins), np.int64), self.labels)


class HaarDetector(Detector):
    """A Viola-Jones cascade shipped with OpenCV.

    Score: `n / (n + 3)` where n is the number of overlapping raw hits merged into the box, so a box
    backed by 3 hits scores 0.5 and one backed by 12 scores 0.8.
    """

    default_min_score = 0.5

    def __init__(self, name: str, min_neighbors: int = 3) -> None:
        file_name, label, min_size = HAAR_CASCADES[name]
        self.name = name
        self.labels = [label]
        self._cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / file_name))
        self._min_neighbors = min_neighbors
        self._min_size = min_size

    def detect(self, image: np.ndarray) -> sv.Detections:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        rects, hits = self._cascade.detectMultiScale2(
            gray, scaleFactor=1.1, minNeighbors=self._min_neighbors, minSize=self._min_size
        )
        hits = np.asarray(hits, dtype=np.float32).reshape(-1)
        return make_detections(xywh_to_xyxy(rects), hits / (hits + 3.0), np.zeros(len(hits), np.int64), self.labels)


class MotionDetector(Detector):
    """Moving blobs from background subtraction (MOG2), one box per blob of at least `min_area`.

    Args:
        min_area: smallest blob, in pixels, or as a fraction of the frame when below 1.
        history: frames the background model remembers.

    Score: the fraction of the box covered by moving pixels. Shadows are not motion. The first frame
    only teaches the background and yields no boxes.
    """

    name = "motion"
    labels: ClassVar[list[str]] = ["motion"]
    default_min_score = 0.0

    def __init__(self, min_area: float = 0.002, history: int = 500) -> None:
        self._subtractor = cv2.createBackgroundSubtractorMOG2(history=history, detectShadows=True)
        self._min_area = min_area
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self._seen_first = False

    def detect(self, image: np.ndarray) -> sv.Detections:
        mask = self._subtractor.apply(cv2.GaussianBlur(image, (5, 5), 0))
        if not self._seen_first:
            self._seen_first = True
            return make_detections(np.empty((0, 4)), np.empty(0), np.empty(0, np.int64), self.labels)
        # MOG2 marks shadows 127 and motion 255.
        moving = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)[1]
        moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, self._kernel)
        moving = cv2.dilate(moving, self._kernel, iterations=2)
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self._min_area * mask.size if self._min_area < 1 else self._min_area
        rects = np.array([cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area], dtype=np.int64)
        rects = rects.reshape(-1, 4)
        fill = np.array(
            [np.count_nonzero(moving[y : y + h, x : x + w]) / float(w * h) for x, y, w, h in rects], dtype=np.float32
        )
        return make_detections(xywh_to_xyxy(rects), fill, np.zeros(len(rects), np.int64), self.labels)
