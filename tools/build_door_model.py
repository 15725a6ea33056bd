"""Rebuild the committed door classifier with the user's own verbs: draw a synthetic door dataset with
`edgewatch synth door --dataset`, train it with `edgewatch train classifier`, copy `best.onnx` in.

    .venv/bin/python tools/build_door_model.py          # needs the train extra (make test installs it)

Writes src/edgewatch/assets/door-classifier.onnx (closed, open; [N, 2] logits, 128×72 input) and
leaves the dataset and the run folder in --work. Tests hold out seeds >= 100000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from build_with_verbs import ASSETS, build

RECIPE = [
    ["synth", "door", "--dataset", "{work}/door-data", "--scenes", "40", "--frames", "25", "--seed", "0"],
    ["train", "classifier", "{work}/door-data", "--out", "{work}/run", "--seed", "0"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgewatch-door-model"), help="a new or empty folder")
    parser.add_argument("--out", type=Path, default=ASSETS / "door-classifier.onnx")
    args = parser.parse_args()
    build(RECIPE, args.work, args.out)


if __name__ == "__main__":
    main()
