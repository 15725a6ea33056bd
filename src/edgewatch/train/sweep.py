"""`--sweep batch=8,16 epochs=30,60 size=320,512`: every combination trained in turn (two cores do not
train two models faster than one after the other), each in its own folder under the sweep's, and a
summary table like the one the DeepLens write-up compared its runs in: the settings; expected, true,
false and missed; the mean confidence of true and of false predictions; the time per run; the best
run marked. Written as `sweep.md` and `sweep.json` in the sweep's folder.

Example:
    >>> parse_sweep(["batch=8,16", "size=320"])
    [{'batch': '8', 'size': '320'}, {'batch': '16', 'size': '320'}]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from edgewatch.errors import EdgewatchError
from edgewatch.train.settings import SWEEPABLE

COUNT_COLUMNS = ("expected", "true", "false", "missed", "mean_confidence_true", "mean_confidence_false")


def parse_sweep(specs: Sequence[str]) -> list[dict[str, str]]:
    """Every combination of `KEY=V1,V2` values, as {key: value text}, in the order given.

    Raises:
        EdgewatchError: a spec without `=` or values, a key no run has, or a key given twice.
    """
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, _, values = spec.partition("=")
        key = key.strip().replace("_", "-")
        options = [value.strip() for value in values.split(",") if value.strip()]
        if key not in SWEEPABLE:
            raise EdgewatchError(f"--sweep {spec}: there is no setting {key!r}", f"sweep any of {', '.join(SWEEPABLE)}")
        if not options:
            raise EdgewatchError(f"--sweep {spec}: no values", f"write it as {key}=A,B")
        if key in grid:
            raise EdgewatchError(f"--sweep names {key} twice", f"give its values once: {key}=A,B,C")
        grid[key] = options
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def run_name(changes: dict[str, str]) -> str:
    """A folder name for one setting: `batch8-size320`."""
    return "-".join(f"{key.replace('-', '')}{value}" for key, value in changes.items()) or "run"


def summary_rows(runs: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One row per run: its settings, the counts of its eval.json, its score and time; `best` marks the
    highest score."""
    rows = []
    for run in runs:
        evaluation = run.get("evaluation") or {}
        overall = evaluation.get("overall")
        if overall is None and "accuracy" in evaluation:  # a classifier: images, right and wrong
            images = evaluation["images"]
            right = round((evaluation["accuracy"] or 0) * images)
            overall = {"expected": images, "true": right, "false": images - right, "missed": images - right}
        rows.append({**run["changes"], **{key: (overall or {}).get(key) for key in COUNT_COLUMNS},
                     metric: run["score"], "seconds": run["seconds"], "folder": run["folder"], "best": False})  # fmt: skip
    scored = [row for row in rows if row[metric] is not None]
    if scored:
        max(scored, key=lambda row: row[metric])["best"] = True
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    header = [key for key in rows[0] if key != "best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_cell(row[key]) for key in header]
        if row["best"]:
            cells[0] = f"**{cells[0]}** (best)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)
