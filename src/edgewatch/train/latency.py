"""Latency per frame of several models, measured side by side: the models take turns frame by frame,
so whatever else loads the machine loads each of them alike, and the ratio holds where the absolute
milliseconds do not."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from edgewatch.models import Detector

WARM_UP = 3


def side_by_side(detectors: Sequence[Detector], images: Sequence[np.ndarray], runs: int = 2) -> list[float]:
    """Median milliseconds of one `detect` call (pre-processing, model, post-processing) per detector.

    Example:
        >>> from edgewatch.models import load_model
        >>> fast, slow = side_by_side([load_model("door"), load_model("street")], [np.zeros((360, 640, 3), np.uint8)])
        >>> fast < slow
        True
    """
    for detector in detectors:
        for image in images[:WARM_UP]:
            detector.detect(image)
    times: list[list[float]] = [[] for _ in detectors]
    for _ in range(runs):
        for image in images:
            for index, detector in enumerate(detectors):
                started = time.perf_counter()
                detector.detect(image)
                times[index].append((time.perf_counter() - started) * 1000)
    return [float(np.median(values)) for values in times]
