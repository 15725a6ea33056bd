"""The project's own door classifier, measured on synthetic door scenes it never saw."""

from __future__ import annotations

from edgewatch import load_detector
from edgewatch.models import DOOR_CLASSIFIER
from edgewatch.sources.door import STATES, DoorScene

HELD_OUT_SEEDS = range(100_000, 100_003)  # training draws its scenes from seeds below 10 000


def test_door_classifier_is_small_and_names_its_states():
    assert DOOR_CLASSIFIER.stat().st_size <= 1_000_000
    detector = load_detector("door")
    assert detector.labels == list(STATES) == ["closed", "open"]
    assert detector.format == "classifier"


def test_door_classifier_tells_open_from_closed_on_95_percent_of_frames():
    detector = load_detector("door")
    right = total = 0
    for seed in HELD_OUT_SEEDS:
        scene = DoorScene(seed=seed, seconds=30)
        frames = range(0, scene.frame_count, 5)
        images = [scene.render(frame)[0] for frame in frames]
        found = detector.detect_batch(images)
        for frame, detections in zip(frames, found, strict=True):
            classification = detections.metadata["classification"]
            assert 0.5 <= classification["score"] <= 1 and len(detections) == 0
            right += classification["label"] == scene.state(frame)
            total += 1
    print(f"door classifier: {right}/{total} frames right ({right / total:.3f})")
    assert right / total >= 0.95
