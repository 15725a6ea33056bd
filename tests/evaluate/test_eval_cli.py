"""`edgewatch eval` end to end: the trained street model's predictions from `edgewatch run --json`,
scored against the scene's own labels."""

from __future__ import annotations

import json

import cv2

from edgewatch.sources.synthetic import LABELS, StreetScene


def test_eval_scores_a_run_against_yolo_labels(run_cli, tmp_path):
    dataset = tmp_path / "valid"
    (dataset / "images").mkdir(parents=True)
    (dataset / "labels").mkdir()
    (dataset / "data.yaml").write_text("names: [person, car]\n")
    scene = StreetScene(seed=100_010, seconds=30, cars=10, people=12)
    boxes = 0
    for index in range(0, scene.frame_count, 50):
        image, truth = scene.render(index)
        name = f"street_{index:04d}"
        cv2.imwrite(str(dataset / "images" / f"{name}.png"), image)
        rows = []
        for item in truth:
            if item.hidden:
                continue
            x1, y1, x2, y2 = item.box
            rows.append(
                f"{LABELS.index(item.label)} {(x1 + x2) / 1280} {(y1 + y2) / 720} {(x2 - x1) / 640} {(y2 - y1) / 360}"
            )
        boxes += len(rows)
        (dataset / "labels" / f"{name}.txt").write_text("".join(row + "\n" for row in rows))
    ran = run_cli("run", "--source", str(dataset / "images"), "--detector", "street", "--json", "pred.jsonl", "--quiet")
    assert ran.returncode == 0, ran.stderr.decode()
    done = run_cli("eval", "--truth", str(dataset), "--pred", "pred.jsonl", "--format", "yolo", "--json", "v1.json",
                   "--pr-curve", "pr.png")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    table = done.stdout.decode()
    assert "| all" in table and "expected" in table
    result = json.loads((tmp_path / "v1.json").read_text())
    assert result["overall"]["expected"] == boxes
    assert result["overall"]["ap50"] >= 0.9  # the model's own held-out figure is 0.965
    assert set(result["per_class"]) == {"person", "car"}
    assert cv2.imread(str(tmp_path / "pr.png")) is not None
    compared = run_cli("eval", "--compare", "v1.json", "v1.json")
    assert compared.returncode == 0 and compared.stdout.decode().count("v1") == 2
