"""A run's folder and what goes in it: `args.yaml` (every setting, resolved), `metrics.csv` (a row per
epoch, written as it ends, so an interrupted run keeps its history), `curves.png`, `best.onnx`,
`best.pt`, `eval.json` (`edgewatch eval --results` of the validation images) and `report.json`.

A folder that already holds something is never written into: the run takes the next free name,
`NAME-2`, `NAME-3`, ... (as Ultralytics numbers `train`, `train2`).

Example:
    >>> folder = new_run_folder(Path("runs/door"))  # doctest: +SKIP
    >>> folder.name  # doctest: +SKIP
    'door-2'
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from edgewatch.errors import EdgewatchError
from edgewatch.sinks.files import write_whole
from edgewatch.train.fit import Epoch

METRICS_COLUMNS = ("epoch", "loss", "score", "lr", "seconds", "best")


def new_run_folder(out: Path) -> Path:
    """`out` when it is missing or empty, else the first free `out-N`; made here, atomically, so two runs
    started at once never share one."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgewatchError(f"--out {out} is a file", "name a folder for the run")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir() and not any(out.iterdir()):
        return out
    number = 1
    while True:
        candidate = out if number == 1 else out.with_name(f"{out.name}-{number}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1
        except OSError as error:
            raise EdgewatchError(f"cannot make the run folder {candidate}: {error.strerror}", "check --out") from None


def check_outside(out: Path, data: Path) -> None:
    """Refuse a run folder that is the data or inside it: it would join the dataset (as a class folder)."""
    out, data = Path(out).resolve(), Path(data).resolve()
    if data.is_dir() and (out == data or data in out.parents):
        raise EdgewatchError(f"--out {out} is inside the data {data}", "put the runs elsewhere, e.g. --out runs/NAME")


def write_args(folder: Path, values: dict[str, Any]) -> None:
    write_whole(folder / "args.yaml", yaml.safe_dump(values, sort_keys=False).encode())


class MetricsFile:
    """metrics.csv, a row appended (and closed) per epoch; the score column is named after the
    validation metric (`accuracy` or `ap50`)."""

    def __init__(self, path: Path, metric: str) -> None:
        self.path = path
        self.columns = [metric if column == "score" else column for column in METRICS_COLUMNS]
        with open(path, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerow(self.columns)

    def add(self, row: Epoch) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as file:
            values = asdict(row)
            csv.writer(file).writerow(
                [values["epoch"], f"{values['loss']:.5f}", f"{values['score']:.5f}", f"{values['lr']:.6g}",
                 f"{values['seconds']:.1f}", int(values["best"])]
            )  # fmt: skip


def read_metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def curves_png(path: Path, epochs: list[Epoch], metric: str, title: str) -> Path | None:
    """Loss and validation score per epoch, side by side (None without epochs)."""
    if not epochs:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no screen
    from matplotlib import pyplot

    numbers = [row.epoch for row in epochs]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    left.plot(numbers, [row.loss for row in epochs], marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    right.plot(numbers, [row.score for row in epochs], marker=".", color="tab:green")
    best = max(epochs, key=lambda row: row.score)
    right.scatter(
        [best.epoch], [best.score], color="tab:red", zorder=3, label=f"best: {best.score:.3f} (epoch {best.epoch})"
    )
    right.set(xlabel="epoch", ylabel=f"validation {metric}", title=metric, ylim=(0, 1.02))
    right.legend(loc="lower right")
    figure.suptitle(title)
    figure.tight_layout()
    staging = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(staging, dpi=90)
    pyplot.close(figure)
    staging.replace(path)
    return path


def write_json(path: Path, data: Any) -> None:
    write_whole(path, (json.dumps(data, indent=1) + "\n").encode())


def write_text(path: Path, text: str) -> None:
    write_whole(path, (text + "\n").encode())


def versions() -> dict[str, str]:
    """The versions that decide whether a run can be repeated bit for bit."""
    import onnxruntime
    import torch

    from edgewatch import __version__

    return {"edgewatch": str(__version__), "torch": str(torch.__version__), "onnxruntime": str(onnxruntime.__version__),
            "python": sys.version.split()[0]}  # fmt: skip
