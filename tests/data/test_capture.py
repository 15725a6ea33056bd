"""Retraining capture: the frames a reviewer should see, saved raw with the model's boxes in the
formats training tools read back."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest


def capture_config(tmp_path, capture: str) -> str:
    return f"""
cameras:
  street:
    source: synthetic:street?seed=4&seconds=12
    capture: {capture}
storage: {{path: {tmp_path / "data"}}}
"""


def test_a_run_saves_one_frame_per_interval_with_its_boxes_in_three_formats(run_cli, tmp_path):
    (tmp_path / "site.yaml").write_text(capture_config(tmp_path, "{interval: 3}"))
    done = run_cli("run", "site.yaml", "--json", "frames.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    root = tmp_path / "data" / "capture" / "street"
    images = sorted((root / "images").glob("*.jpg"))
    frames = {line["frame"]: line for line in map(json.loads, (tmp_path / "frames.jsonl").read_text().splitlines())}
    captured = [int(path.stem.split("_")[1]) for path in images]
    assert 2 <= len(captured) <= 4  # 12 s, every 3 s at most, only frames with boxes
    assert all(later - earlier >= 3 * 25 for earlier, later in itertools.pairwise(captured))
    coco = json.loads((root / "coco.json").read_text())
    assert [image["file_name"] for image in coco["images"]] == [f"images/{path.name}" for path in images]
    classes = (root / "yolo" / "classes.txt").read_text().split()
    assert classes == ["person", "car"]
    for path, index in zip(images, captured, strict=True):
        picture = cv2.imread(str(path))
        assert picture.shape == (360, 640, 3)  # whole, and raw: no boxes drawn on it
        boxes = [box for box in frames[index]["detections"]]
        record = json.loads((root / "sagemaker" / f"{path.stem}.json").read_text())
        assert record["image_size"] == [{"width": 640, "height": 360, "depth": 3}]
        assert [(a["left"], a["top"], a["score"]) for a in record["annotations"]] == [
            (
                pytest.approx(b["box"][0], abs=0.1),
                pytest.approx(b["box"][1], abs=0.1),
                pytest.approx(b["score"], abs=1e-3),
            )
            for b in boxes
        ]  # the model's score comes along, for the reviewer
        rows = (root / "yolo" / f"{path.stem}.txt").read_text().splitlines()
        assert len(rows) == len(boxes)
        label, cx, cy, w, h, score = rows[0].split()
        assert float(score) == pytest.approx(boxes[0]["score"], abs=1e-3)
        x1, y1, x2, y2 = boxes[0]["box"]
        assert classes[int(label)] == boxes[0]["label"]
        assert float(cx) == pytest.approx((x1 + x2) / 2 / 640, abs=1e-4)
        assert float(cy) == pytest.approx((y1 + y2) / 2 / 360, abs=1e-4)
        assert float(w) == pytest.approx((x2 - x1) / 640, abs=1e-4)
        assert float(h) == pytest.approx((y2 - y1) / 360, abs=1e-4)


def test_the_uncertain_band_and_model_size_choose_and_shape_what_is_saved(run_cli, tmp_path):
    (tmp_path / "site.yaml").write_text(
        capture_config(tmp_path, "{interval: 1, min_score: 0.3, max_score: 0.6, size: model, formats: [coco]}")
    )
    done = run_cli("run", "site.yaml", "--json", "frames.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    root = tmp_path / "data" / "capture" / "street"
    frames = {line["frame"]: line for line in map(json.loads, (tmp_path / "frames.jsonl").read_text().splitlines())}
    images = sorted((root / "images").glob("*.jpg"))
    for path in images:
        scores = [box["score"] for box in frames[int(path.stem.split("_")[1])]["detections"]]
        assert any(0.3 <= score <= 0.6 for score in scores)  # only frames with an unsure box
        assert cv2.imread(str(path)).shape == (288, 512, 3)  # the street model's input size
    assert not (root / "sagemaker").exists() and not (root / "yolo").exists()
    coco = json.loads((root / "coco.json").read_text())
    assert len(coco["images"]) == len(images)
    assert all(0 <= a["bbox"][0] <= 512 and 0 <= a["bbox"][1] <= 288 for a in coco["annotations"])
    assert np.all([a["area"] > 0 for a in coco["annotations"]])
