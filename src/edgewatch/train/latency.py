"""Latency of several models measured side by side: they take turns input by input (the order reversed
every other input, so none always meets caches another has warmed), so whatever else loads the machine
loads each of them alike, and the ratio holds where the absolute milliseconds do not."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from edgewatch.models import Detector

Input = TypeVar("Input")
#: untimed calls of each first: the first calls allocate and pick kernels
WARM_UP = 3


def in_turns(calls: Sequence[Callable[[Input], object]], inputs: Sequence[Input], timed: int) -> list[float]:
    """Median milliseconds of each of `calls`, each called `timed` times on `inputs` (cycled) after a
    warm-up, all taking turns.

    Example:
        >>> fast, slow = in_turns([abs, lambda x: sum(range(10_000))], [1, 2], timed=5)
        >>> fast < slow
        True
    """
    for index in range(WARM_UP):
        for call in calls:
            call(inputs[index % len(inputs)])
    times: list[list[float]] = [[] for _ in calls]
    for index in range(timed):
        order = range(len(calls)) if index % 2 == 0 else reversed(range(len(calls)))
        for which in order:
            started = time.perf_counter()
            calls[which](inputs[index % len(inputs)])
            times[which].append((time.perf_counter() - started) * 1000)
    return [statistics.median(values) for values in times]


def side_by_side(detectors: Sequence[Detector], images: Sequence[np.ndarray], runs: int = 2) -> list[float]:
    """Median milliseconds of one `detect` call (pre-processing, model, post-processing) per detector,
    over `runs` passes of `images`.

    Example:
        >>> from edgewatch.models import load_model
        >>> fast, slow = side_by_side([load_model("door"), load_model("street")], [np.zeros((360, 640, 3), np.uint8)])
        >>> fast < slow
        True
    """
    return in_turns([detector.detect for detector in detectors], images, timed=runs * len(images))
