"""Where a distilled student follows its teacher and where not: the figures of `edgewatch eval` on the
training run's teacher-truth datasets, split by the video each frame came from (its file name's
prefix), at the threshold the student records.

Run it after `benchmarks/training.py --only distil` (same work folder):

    .venv/bin/python benchmarks/student_by_video.py --work /tmp/edgewatch-training
    .venv/bin/python benchmarks/student_by_video.py --work /tmp/edgewatch-training --model runs/student-retry/best.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgewatch.evaluate import by_file_name, evaluate, load_model, load_truth_dataset, predict_boxes, table_score

#: the frames' file-name prefixes: the two videos, and the synthetic street frames (training part only)
SOURCES = ("bikes", "carphone", "street")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="benchmarks/training.py's work folder")
    parser.add_argument("--model", default="runs/student/best.onnx", help="the student, in the work folder")
    args = parser.parse_args()
    model = load_model(str(args.work / args.model))
    score = table_score(model, None)
    print(f"{args.model}, score >= {score:.3f}\n")
    print("| part | video | frames | teacher's boxes | true | false | missed | F1 | AP50 | median box height (px) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for part in ("test", "train"):
        dataset = load_truth_dataset(args.work / f"teacher-truth-{part}")
        classes = list(dataset.classes)
        truth = by_file_name(dataset)
        found = predict_boxes(model, dataset.image_paths, classes)
        for source in SOURCES:
            names = [name for name in truth if name.startswith(source)]
            if not names:
                continue
            row = evaluate({n: truth[n] for n in names}, {n: found[n] for n in names}, classes, score=score).overall
            heights = np.concatenate([truth[n].xyxy[:, 3] - truth[n].xyxy[:, 1] for n in names])
            height = f"{np.median(heights):.0f}" if len(heights) else "-"
            print(f"| {part} | {source} | {len(names)} | {row.expected} | {row.true} | {row.false} | {row.missed} | "
                  f"{row.f1 or 0:.3f} | {row.ap50 or 0:.3f} | {height} |")  # fmt: skip


if __name__ == "__main__":
    main()
