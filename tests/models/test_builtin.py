from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from edgewatch import EdgewatchError, load_detector, open_source
from edgewatch.models import BUILTIN_DETECTORS
from media import SQUARE, draw_square_frame, square_position

# Checked by eye once (frames viewed with a pixel grid): the cyclist in bikes.mp4, plainly visible.
BIKES_PEOPLE = {80: (370, 40, 500, 250), 105: (345, 25, 480, 245)}


@pytest.fixture(scope="module")
def bikes_frames(bikes: Path) -> dict[int, np.ndarray]:
    wanted = {}
    with open_source(bikes) as source:
        for index in range(max(BIKES_PEOPLE) + 1):
            picture = source.read()
            if index in BIKES_PEOPLE:
                wanted[index] = picture.image
    return wanted


@pytest.mark.parametrize("index", sorted(BIKES_PEOPLE))
def test_hog_finds_the_cyclist_in_the_real_street_video(bikes_frames, index: int):
    detector = load_detector("hog")
    detections = detector.detect(bikes_frames[index])
    kept = detections[detections.confidence >= detector.default_min_score]
    x1, y1, x2, y2 = BIKES_PEOPLE[index]
    centres = kept.get_anchors_coordinates(anchor=sv.Position.CENTER)
    inside = (centres[:, 0] >= x1) & (centres[:, 0] <= x2) & (centres[:, 1] >= y1) & (centres[:, 1] <= y2)
    assert inside.any(), f"no person box on the cyclist in frame {index}: {kept.xyxy}"
    assert list(kept.data["class_name"][inside]) == ["person"] * int(inside.sum())


def test_hog_finds_nobody_in_an_empty_scene():
    assert len(load_detector("hog").detect(np.full((272, 640, 3), 90, np.uint8))) == 0


@pytest.mark.parametrize("size", [(60, 80), (127, 400), (400, 63), (1, 1)])
def test_hog_on_a_picture_smaller_than_a_person_finds_nobody_instead_of_crashing(size: tuple[int, int]):
    # OpenCV's detectMultiScale ended the process with a segmentation fault on these
    assert len(load_detector("hog").detect(np.full((*size, 3), 90, np.uint8))) == 0


def test_motion_boxes_the_moving_square_after_the_first_frame():
    detector = load_detector("motion", min_area=300)
    assert len(detector.detect(draw_square_frame(0, 320, 240))) == 0
    for index in range(1, 20):
        detections = detector.detect(draw_square_frame(index, 320, 240))
    x, y = square_position(19, 320, 240)
    truth = np.array([x, y, x + SQUARE, y + SQUARE], np.float32)
    assert len(detections) >= 1
    best = detections.xyxy[np.argmax(detections.confidence)]
    overlap = np.maximum(0, np.minimum(best[2:], truth[2:]) - np.maximum(best[:2], truth[:2])).prod()
    union = (best[2:] - best[:2]).prod() + SQUARE * SQUARE - overlap
    assert overlap / union > 0.3
    assert 0 < detections.confidence.max() <= 1


def test_motion_ignores_blobs_below_min_area():
    detector = load_detector("motion", min_area=0.5)
    for index in range(10):
        detections = detector.detect(draw_square_frame(index, 320, 240))
    assert len(detections) == 0


@pytest.mark.parametrize("name", [n for n in BUILTIN_DETECTORS if n.startswith("haar:")])
def test_haar_cascades_load_and_return_labelled_boxes(name: str):
    detector = load_detector(name)
    image = cv2.cvtColor(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1)), cv2.COLOR_GRAY2BGR)
    detections = detector.detect(image)
    assert detections.xyxy.shape[1] == 4
    assert len(detections.data["class_name"]) == len(detections)
    assert detector.labels[0] in {"face", "cat_face", "person", "plate"}


def test_unknown_detector_and_option_are_clear_errors():
    with pytest.raises(EdgewatchError, match="unknown detector 'yolo'"):
        load_detector("yolo")
    with pytest.raises(EdgewatchError, match="bad option for detector hog"):
        load_detector("hog", min_area=3)
