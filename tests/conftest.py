"""Shared fixtures: small videos and images made on the spot, and a way to run the command."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from edgewatch.sources import sample_video
from media import draw_square_frame, edgewatch_command, write_video

# A shell without job control starts a background command (`make test &`) with SIGINT ignored, and an
# ignored signal passes on to every command a test starts: the Ctrl-C tests would wait for commands that
# cannot hear it. A handled signal is reset to the default in them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
