"""Evaluation on hand-made truth and predictions whose outcome is counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from edgewatch.errors import EdgewatchError
from edgewatch.evaluate import (
    classifier_table,
    compare,
    evaluate,
    evaluate_classifier,
    load_truth,
    match,
    pr_curve_png,
    read_coco_results,
    read_run_classifications,
    read_run_json,
)

CLASSES = ["person", "car"]
PERSON, CAR = 0, 1


def boxes(*rows: tuple[float, float, float, float, int] | tuple[float, float, float, float, int, float]):
    """Detections from (x1, y1, x2, y2, class_id[, score]) rows; scored when the rows carry a score."""
    scored = bool(rows) and len(rows[0]) == 6
    return sv.Detections(
        xyxy=np.array([row[:4] for row in rows], dtype=float).reshape(-1, 4),
        class_id=np.array([row[4] for row in rows], dtype=int),
        confidence=np.array([row[5] for row in rows], dtype=float) if scored else None,
    )


@pytest.fixture
def scene() -> tuple[dict[str, sv.Detections], dict[str, sv.Detections]]:
    truth = {
        "a.jpg": boxes((0, 0, 10, 10, PERSON), (20, 20, 40, 40, CAR)),
        "b.jpg": boxes((0, 0, 20, 20, PERSON)),
        "c.jpg": boxes(),
    }
    predictions = {
        "a.jpg": boxes(
            (0, 0, 10, 10, PERSON, 0.9),  # true
            (1, 1, 10, 10, PERSON, 0.8),  # a second box on the same person: false
            (100, 100, 110, 110, CAR, 0.6),  # nothing there: false; the car is missed
        ),
        # b.jpg: nothing predicted, the person is missed
        "c.jpg": boxes((5, 5, 15, 15, CAR, 0.5)),  # false
    }
    return truth, predictions


def test_counts_and_rates_by_hand(scene) -> None:
    result = evaluate(*scene, CLASSES, iou=0.5, score=0.3)
    overall = result.overall
    assert (overall.expected, overall.true, overall.false, overall.missed) == (3, 1, 3, 2)
    assert overall.precision == pytest.approx(1 / 4)
    assert overall.recall == pytest.approx(1 / 3)
    assert overall.f1 == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert overall.mean_confidence_true == pytest.approx(0.9)
    assert overall.mean_confidence_false == pytest.approx((0.8 + 0.6 + 0.5) / 3)
    person, car = result.per_class["person"], result.per_class["car"]
    assert (person.expected, person.true, person.false, person.missed) == (2, 1, 1, 1)
    assert (car.expected, car.true, car.false, car.missed) == (1, 0, 2, 1)
    assert car.precision == 0.0 and car.recall == 0.0 and car.f1 == 0.0
    assert car.mean_confidence_true is None
    assert result.images == 3


def test_perfect_predictions_give_ap_one() -> None:
    truth = {"a.jpg": boxes((0, 0, 10, 10, PERSON), (20, 20, 60, 50, CAR)), "b.jpg": boxes((5, 5, 50, 80, PERSON))}
    predictions = {
        "a.jpg": boxes((0, 0, 10, 10, PERSON, 0.9), (20, 20, 60, 50, CAR, 0.6)),
        "b.jpg": boxes((5, 5, 50, 80, PERSON, 0.7)),
    }
    result = evaluate(truth, predictions, CLASSES)
    assert (result.overall.true, result.overall.false, result.overall.missed) == (3, 0, 0)
    assert result.overall.precision == result.overall.recall == result.overall.f1 == 1.0
    for row in [result.overall, *result.per_class.values()]:
        assert row.ap50 == pytest.approx(1.0)
        assert row.map == pytest.approx(1.0)


def test_wrong_class_counts_as_false_and_missed() -> None:
    result = evaluate({"a.jpg": boxes((0, 0, 10, 10, PERSON))}, {"a.jpg": boxes((0, 0, 10, 10, CAR, 0.9))}, CLASSES)
    assert (result.overall.true, result.overall.false, result.overall.missed) == (0, 1, 1)
    assert result.per_class["person"].missed == 1 and result.per_class["person"].false == 0
    assert result.per_class["car"].false == 1 and result.per_class["car"].expected == 0
    assert result.per_class["car"].ap50 is None  # no truth cars: nothing to average
    assert result.per_class["person"].ap50 == 0.0


def test_score_threshold_changes_the_table_not_ap(scene) -> None:
    low = evaluate(*scene, CLASSES, score=0.3)
    high = evaluate(*scene, CLASSES, score=0.85)
    assert (high.overall.true, high.overall.false, high.overall.missed) == (1, 0, 2)
    assert (low.overall.false, high.overall.false) == (3, 0)
    assert high.overall.mean_confidence_false is None
    assert high.overall.ap50 == low.overall.ap50
    assert high.overall.map == low.overall.map
    assert high.per_class["person"].ap50 == low.per_class["person"].ap50


def test_iou_threshold_decides_a_loose_box() -> None:
    truth = {"a.jpg": boxes((0, 0, 10, 10, PERSON))}
    predictions = {"a.jpg": boxes((0, 0, 10, 15, PERSON, 0.9))}  # IoU 100 / 150
    assert evaluate(truth, predictions, CLASSES, iou=0.5).overall.true == 1
    assert evaluate(truth, predictions, CLASSES, iou=0.7).overall.true == 0


def test_match_prefers_the_higher_score() -> None:
    twice = boxes((0, 0, 10, 10, PERSON, 0.4), (0, 0, 10, 10, PERSON, 0.9))
    assert match(boxes((0, 0, 10, 10, PERSON)), twice).tolist() == [False, True]


def test_images_are_matched_by_file_name(scene) -> None:
    truth, predictions = scene
    by_path = {f"dataset/images/{name}": detections for name, detections in truth.items()}
    extra = {**predictions, "elsewhere.jpg": boxes((0, 0, 1, 1, PERSON, 0.9))}
    result = evaluate(by_path, extra, CLASSES)
    assert (result.overall.true, result.overall.false) == (1, 3)
    assert result.unmatched == ("elsewhere.jpg",)
    with pytest.raises(EdgewatchError, match="none of the 1 predicted images"):
        evaluate(truth, {"other.jpg": boxes((0, 0, 1, 1, PERSON, 0.9))}, CLASSES)


def run_line(file: str | None, *detections: tuple[str, int, float, list[float]]) -> str:
    record = {"camera": "default", "frame": 0, "time": 0.0, "wall_time": "2026-01-01T00:00:00.000Z", "width": 64}
    if file is not None:
        record["file"] = file
    record["detections"] = [
        {"label": label, "class_id": class_id, "score": score, "box": box, "track_id": None}
        for label, class_id, score, box in detections
    ]
    return json.dumps(record)


def test_run_json_lines_are_matched_by_file_and_label(tmp_path: Path, scene) -> None:
    truth, _ = scene
    lines = [
        # the detector's own class ids differ from the truth's: names decide
        run_line("a.jpg", ("person", 7, 0.9, [0, 0, 10, 10]), ("car", 3, 0.6, [20, 20, 40, 40]),
                 ("dog", 5, 0.95, [0, 0, 5, 5])),
        run_line("b.jpg"),
        run_line("c.jpg", ("Car", 3, 0.5, [5, 5, 15, 15])),
    ]  # fmt: skip
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(lines) + "\n")
    predictions = read_run_json(path, CLASSES)
    assert sorted(predictions) == ["a.jpg", "b.jpg", "c.jpg"]
    assert predictions["a.jpg"].class_id.tolist() == [PERSON, CAR]  # the dog is not in the truth: left out
    assert len(predictions["b.jpg"]) == 0
    result = evaluate(truth, predictions, CLASSES)
    assert (result.overall.true, result.overall.false, result.overall.missed) == (2, 1, 1)


def test_run_json_without_file_names_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "video.jsonl"
    path.write_text(run_line(None, ("person", 0, 0.9, [0, 0, 1, 1])) + "\n")
    with pytest.raises(EdgewatchError, match="has no 'file'"):
        read_run_json(path, CLASSES)


def test_coco_truth_and_results(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64},
                   {"id": 2, "file_name": "b.jpg", "width": 64, "height": 64}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [20, 20, 20, 10], "area": 200, "iscrowd": 0},
        ],
    }))  # fmt: skip
    results_path = tmp_path / "results.json"
    results_path.write_text(json.dumps([
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [20, 20, 20, 10], "score": 0.8},
    ]))  # fmt: skip
    classes, truth = load_truth(truth_path, "coco")
    assert classes == ["person", "car"]
    predictions = read_coco_results(results_path, truth_path, classes)
    assert predictions["b.jpg"].xyxy.tolist() == [[20, 20, 40, 30]]
    result = evaluate(truth, predictions, classes)
    assert (result.overall.true, result.overall.false, result.overall.missed) == (1, 1, 1)


def test_json_and_table_carry_every_number(scene) -> None:
    result = evaluate(*scene, CLASSES, iou=0.5, score=0.3)
    data = json.loads(json.dumps(result.to_json()))
    keys = {"precision", "recall", "f1", "ap50", "map", "expected", "true", "false", "missed",
            "mean_confidence_true", "mean_confidence_false", "iou", "score"}  # fmt: skip
    assert keys <= set(data["overall"])
    assert list(data["per_class"]) == CLASSES
    assert all(keys <= set(row) for row in data["per_class"].values())
    assert data["overall"]["missed"] == 2 and data["per_class"]["car"]["false"] == 2
    table = result.table().splitlines()
    assert table[0] == "3 images, IoU >= 0.5, score >= 0.3"
    assert [line.split("|")[1].strip() for line in table[3:]] == ["person", "car", "all"]
    assert table[-1].replace(" ", "").startswith("|all|3|1|3|2|0.900|0.633|0.250|0.333|0.286|")


def test_pr_curve_png_decodes(tmp_path: Path, scene) -> None:
    path = pr_curve_png(evaluate(*scene, CLASSES), tmp_path / "pr.png")
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (600, 900, 3)
    assert (image != 255).any(axis=2).sum() > 1000  # something is drawn
    # the curves: the overall one is black and thick
    assert ((image < 40).all(axis=2)).sum() > 500


def test_compare_two_runs(tmp_path: Path, scene) -> None:
    truth, predictions = scene
    first = tmp_path / "v1.json"
    first.write_text(json.dumps(evaluate(truth, predictions, CLASSES).to_json()))
    second = tmp_path / "v2.json"
    second.write_text(json.dumps(evaluate(truth, truth_as_predictions(truth), CLASSES).to_json()))
    table = compare([first, second]).splitlines()
    assert table[0].split("|")[1].strip() == "run"
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table[2:]]
    assert [row[0] for row in rows] == ["v1", "v2"]
    assert rows[0][3:7] == ["3", "1", "3", "2"]  # expected, true, false, missed
    assert rows[1][3:7] == ["3", "3", "0", "0"]
    with pytest.raises(EdgewatchError, match="not an evaluation"):
        (tmp_path / "bad.json").write_text("[]")
        compare([tmp_path / "bad.json"])


def truth_as_predictions(truth: dict[str, sv.Detections]) -> dict[str, sv.Detections]:
    return {
        name: sv.Detections(xyxy=t.xyxy, class_id=t.class_id, confidence=np.full(len(t), 0.8))
        for name, t in truth.items()
    }


def test_classifier_confusion_matrix_by_hand(tmp_path: Path) -> None:
    classes = ["open", "closed"]
    truth = {"1.jpg": "open", "2.jpg": "open", "3.jpg": "open", "4.jpg": "closed", "5.jpg": "closed"}
    path = tmp_path / "door.jsonl"
    path.write_text("".join(
        json.dumps({"file": name, "detections": [], "classification": {"label": label, "score": 0.9}}) + "\n"
        for name, label in [("1.jpg", "open"), ("2.jpg", "open"), ("3.jpg", "closed"), ("4.jpg", "closed")]
    ))  # fmt: skip
    predicted = read_run_classifications(path)  # 5.jpg has no prediction: wrong
    result = evaluate_classifier(truth, predicted, classes)
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1]]
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["per_class"]["open"] == {"precision": 1.0, "recall": pytest.approx(2 / 3, abs=1e-4), "support": 3}
    assert result["per_class"]["closed"]["precision"] == 0.5
    assert result["per_class"]["closed"]["recall"] == 0.5
    assert "accuracy 0.600" in classifier_table(result)


def test_yolo_truth_is_read_in_pixels(tmp_path: Path) -> None:
    (tmp_path / "valid" / "images").mkdir(parents=True)
    (tmp_path / "valid" / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "valid" / "images" / "a.jpg"), np.zeros((100, 200, 3), np.uint8))
    (tmp_path / "valid" / "labels" / "a.txt").write_text("1 0.5 0.5 0.1 0.2\n")
    (tmp_path / "data.yaml").write_text("names: [person, car]\n")
    classes, truth = load_truth(tmp_path / "valid", "yolo")
    assert classes == CLASSES
    assert truth["a.jpg"].xyxy[0].tolist() == pytest.approx([90, 40, 110, 60], abs=1e-3)
    assert truth["a.jpg"].class_id.tolist() == [CAR]


def random_scene(seed: int, images: int = 12) -> tuple[dict[str, sv.Detections], dict[str, sv.Detections]]:
    """Truth boxes of three classes and a noisy detector's predictions on them: jittered boxes, some
    missed, some of the wrong class, some where nothing is, scores all over."""
    rng = np.random.default_rng(seed)
    truth, predictions = {}, {}
    for k in range(images):
        count = int(rng.integers(0, 8))
        xy = rng.uniform(0, 500, (count, 2))
        wh = rng.uniform(8, 120, (count, 2))
        boxes = np.hstack([xy, xy + wh])
        classes = rng.integers(0, 3, count)
        truth[f"{k}.jpg"] = sv.Detections(xyxy=boxes, class_id=classes)
        kept = rng.random(count) > 0.2
        jitter = rng.normal(0, 0.08, (count, 4)) * np.hstack([wh, wh])
        flipped = np.where(rng.random(count) < 0.1, (classes + 1) % 3, classes)
        extra = int(rng.integers(0, 3))
        extra_xy = rng.uniform(0, 500, (extra, 2))
        pred_boxes = np.vstack([(boxes + jitter)[kept], np.hstack([extra_xy, extra_xy + 40])])
        pred_classes = np.concatenate([flipped[kept], rng.integers(0, 3, extra)])
        scores = rng.uniform(0.05, 1.0, len(pred_boxes))
        predictions[f"{k}.jpg"] = sv.Detections(xyxy=pred_boxes, class_id=pred_classes, confidence=scores)
    return truth, predictions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap50_and_map_equal_pycocotools_on_the_same_boxes(tmp_path: Path, seed: int) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth, predictions = random_scene(seed)
    names = ["a", "b", "c"]
    images = [{"id": k + 1, "file_name": name, "width": 640, "height": 640} for k, name in enumerate(truth)]
    ids = {entry["file_name"]: entry["id"] for entry in images}

    def xywh(box: np.ndarray) -> list[float]:
        return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]

    annotations = [
        {"id": n + 1, "image_id": ids[name], "category_id": int(c) + 1, "bbox": xywh(b), "iscrowd": 0,
         "area": float((b[2] - b[0]) * (b[3] - b[1]))}
        for n, (name, b, c) in enumerate(
            (name, b, c) for name, d in truth.items() for b, c in zip(d.xyxy, d.class_id, strict=True)
        )
    ]  # fmt: skip
    results = [
        {"image_id": ids[name], "category_id": int(c) + 1, "bbox": xywh(b), "score": float(s)}
        for name, d in predictions.items()
        for b, c, s in zip(d.xyxy, d.class_id, d.confidence, strict=True)
    ]
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(names)]
    (tmp_path / "truth.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    coco = COCO(str(tmp_path / "truth.json"))
    check = COCOeval(coco, coco.loadRes(results), "bbox")
    check.evaluate()
    check.accumulate()
    check.summarize()
    result = evaluate(truth, predictions, names)
    assert result.overall.map == pytest.approx(check.stats[0], abs=0.001)
    assert result.overall.ap50 == pytest.approx(check.stats[1], abs=0.001)
