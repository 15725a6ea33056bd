"""Throwing out what is not believed, the way Frigate does: per box before tracking (score, area,
aspect ratio, per label) and per track after it (the median of its recent scores)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import supervision as sv

from edgewatch.config import FilterConfig


class DetectionFilter:
    """Per-label box filters; a label without an entry only meets the camera's `min_score`."""

    def __init__(self, filters: Mapping[str, FilterConfig], min_score: float = 0.0, threshold: float = 0.0) -> None:
        self.filters = dict(filters)
        self.min_score = min_score
        self.default_threshold = threshold

    def __call__(self, detections: sv.Detections, width: int, height: int) -> sv.Detections:
        if len(detections) == 0:
            return detections
        names = detections.data.get("class_name", np.full(len(detections), ""))
        scores = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        keep = scores >= self.min_score
        for label, rule in self.filters.items():
            mine = names == label
            if not mine.any():
                continue
            keep &= ~mine | self._passes(rule, detections.xyxy, scores, width * height)
        return detections if keep.all() else detections[keep]

    def _passes(self, rule: FilterConfig, xyxy: np.ndarray, scores: np.ndarray, frame_area: int) -> np.ndarray:
        widths, heights = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        areas = widths * heights
        ratios = widths / np.maximum(heights, 1e-6)
        passes = np.ones(len(xyxy), dtype=bool)
        if rule.min_score is not None:
            passes &= scores >= rule.min_score
        if rule.min_area is not None:
            passes &= areas >= _pixels(rule.min_area, frame_area)
        if rule.max_area is not None:
            passes &= areas <= _pixels(rule.max_area, frame_area)
        if rule.min_ratio is not None:
            passes &= ratios >= rule.min_ratio
        if rule.max_ratio is not None:
            passes &= ratios <= rule.max_ratio
        return passes

    def threshold(self, label: str) -> float:
        """The median score a track of `label` needs before it counts."""
        rule = self.filters.get(label)
        return rule.threshold if rule is not None and rule.threshold is not None else self.default_threshold


def _pixels(area: float, frame_area: int) -> float:
    return area * frame_area if area <= 1 else area


def track_passes(recent_scores: Iterable[float], threshold: float) -> bool:
    """Frigate's true-positive test: the median of a track's recent scores reaches the threshold."""
    scores = list(recent_scores)
    return bool(scores) and float(np.median(scores)) >= threshold
