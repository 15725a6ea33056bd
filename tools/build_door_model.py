"""Rebuild the committed door classifier: train on synthetic door scenes, export to ONNX.

    .venv/bin/pip install torch==2.13.0 onnx && .venv/bin/python tools/build_door_model.py

Writes src/edgewatch/assets/door-classifier.onnx (closed, open; [N, 2] logits, 128×72 input).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from edgewatch.train.door import export, train

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "edgewatch" / "assets" / "door-classifier.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.monotonic()
    path = export(train(steps=args.steps, batch=args.batch, seed=args.seed), args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
