"""The project's own models are built as a user builds theirs: a recipe of `edgewatch` commands,
then the run's `best.onnx` copied over the asset (written beside it and renamed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "src" / "edgewatch" / "assets"


def build(recipe: list[list[str]], work: Path, out: Path) -> None:
    """Run each command of `recipe` (`{work}` filled in), then copy `work/run/best.onnx` to `out`."""
    if work.exists() and any(work.iterdir()):
        sys.exit(f"{work} is not empty: give a new --work folder")
    started = time.monotonic()
    for command in recipe:
        line = [part.format(work=work) for part in command]
        print("edgewatch", " ".join(line), flush=True)
        subprocess.run([sys.executable, "-m", "edgewatch", *line], check=True)
    report = json.loads((work / "run" / "report.json").read_text())
    staging = out.with_name(f".{out.name}.tmp")
    shutil.copyfile(work / "run" / "best.onnx", staging)
    staging.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): validation {report['metric']} "
          f"{report['best_score']:.3f} at epoch {report['best_epoch']}, {time.monotonic() - started:.0f} s in all")  # fmt: skip
