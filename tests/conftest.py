"""Shared test material: small videos and images made on the spot, and a way to run the command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edgewatch.sources import sample_video

SQUARE = 40


def square_position(index: int, width: int, height: int) -> tuple[int, int]:
    """Top-left corner of the white square in frame `index` of a `moving_square_video`."""
    return (10 + 6 * index) % (width - SQUARE), height // 2 - SQUARE // 2


def draw_square_frame(index: int, width: int, height: int) -> np.ndarray:
    image = np.full((height, width, 3), 40, np.uint8)
    cv2.putText(image, str(index), (5, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 200, 200), 1)
    x, y = square_position(index, width, height)
    image[y : y + SQUARE, x : x + SQUARE] = 255
    return image


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Encode frames to H.264 with PyAV, as a camera or phone would have recorded them."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    def make(
        name: str = "square.mp4", frames: int = 30, width: int = 320, height: int = 240, fps: float = 25.0
    ) -> Path:
        return write_video(tmp_path / name, [draw_square_frame(i, width, height) for i in range(frames)], fps)

    return make


@pytest.fixture
def square_video(make_video: Callable[..., Path]) -> Path:
    return make_video()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, name in enumerate(["c.png", "a.jpg", "b.jpeg"]):
        cv2.imwrite(str(folder / name), draw_square_frame(i, 160 + 16 * i, 120))
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="session")
def bikes() -> Path:
    return sample_video("bikes.mp4")


def edgewatch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgewatch", *args]


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the `edgewatch` command as a user would, from the test's own folder."""

    def run(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DISPLAY", None)
        return subprocess.run(
            edgewatch_command(*args), cwd=tmp_path, capture_output=True, timeout=timeout, env=env, **kwargs
        )

    return run


def video_frame_count(path: Path) -> int:
    """Frames in a video, counted by decoding all of them."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
