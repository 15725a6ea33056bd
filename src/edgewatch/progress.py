"""The progress bars of long commands, on stderr: redrawn twice a second in a terminal, every five
seconds in a log file (where each redraw is a line). A bar shows where info logs do, so `--quiet`
(which keeps only warnings) has none."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool | None = None) -> tqdm:
    """A bar of `total` steps (None: a count without an end), named `desc`; shown when `enabled`, or by
    default when edgewatch's info logs are."""
    if enabled is None:
        enabled = logging.getLogger("edgewatch").isEnabledFor(logging.INFO)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 5.0,
        disable=not enabled,
    )


def with_progress(items: Iterable[Item], total: int | None, desc: str, unit: str) -> Iterator[Item]:
    """`items`, with a bar that advances by one for each."""
    with progress_bar(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
