"""Real small disks for tests: a tmpfs of a given size, optionally read-only (as root, file modes do not
stop a write; a read-only mount does)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(mount: Path, kilobytes: int) -> Iterator[Path]:
    """A real disk of `kilobytes` KiB at `mount`, so it can be filled for real; skips the test where
    mounting is not permitted."""
    mount.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(mount)], capture_output=True)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("no mount command to make a small disk with")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def make_read_only(mount: Path) -> None:
    """Turn a mounted tmpfs read-only, keeping what it holds."""
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
