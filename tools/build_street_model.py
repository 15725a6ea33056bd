"""Rebuild the committed street detector: train on synthetic street scenes, export to ONNX.

    .venv/bin/pip install torch==2.13.0 onnx && .venv/bin/python tools/build_street_model.py

Writes src/edgewatch/assets/street-detector.onnx (person, car; yolov8 layout, 512×288 input).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edgewatch.train.street import export, train

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "edgewatch" / "assets" / "street-detector.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = export(train(steps=args.steps, batch=args.batch, seed=args.seed), args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
