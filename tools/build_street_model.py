"""Rebuild the committed street detector with the user's own verbs: draw a synthetic street dataset
with `edgewatch synth street --dataset`, train it with `edgewatch train detector`, copy `best.onnx` in.

    .venv/bin/python tools/build_street_model.py        # needs the train extra (make test installs it)

Writes src/edgewatch/assets/street-detector.onnx (person, car; yolov8 layout, 512×288 input) and
leaves the dataset and the run folder in --work. Tests hold out seeds >= 100000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from build_with_verbs import ASSETS, build

RECIPE = [
    ["synth", "street", "--dataset", "{work}/street-data", "--scenes", "32", "--frames", "25", "--seed", "0"],
    ["train", "detector", "{work}/street-data", "--out", "{work}/run", "--epochs", "40", "--seed", "0"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgewatch-street-model"), help="a new or empty folder")
    parser.add_argument("--out", type=Path, default=ASSETS / "street-detector.onnx")
    args = parser.parse_args()
    build(RECIPE, args.work, args.out)


if __name__ == "__main__":
    main()
