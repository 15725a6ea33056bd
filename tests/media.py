"""Test media made on the spot: a synthetic video with a known moving square, and frame counting."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO

import av
import cv2
import httpx
import numpy as np

SQUARE = 40


def square_position(index: int, width: int, height: int) -> tuple[int, int]:
    """Top-left corner of the white square in frame `index` of a square video."""
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


def video_frame_count(path: Path) -> int:
    """Frames in a video, counted by decoding all of them."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def edgewatch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgewatch", *args]


def wait_until_serving(
    url: str, run: subprocess.Popen, output: Callable[[], str], headers: dict[str, str] | None = None,
    cameras: int = 1, timeout: float = 30.0,
) -> None:  # fmt: skip
    """Wait until `edgewatch ... --serve` at `url` answers and `cameras` of its cameras have delivered a
    frame (configured cameras are listed before that); fail with the run's `output()` if it ends or
    takes longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            listed = httpx.get(f"{url}/api/cameras", headers=headers or {}, timeout=1).json()
            if sum(camera["frames"] > 0 for camera in listed) >= cameras:
                return
        except httpx.HTTPError:
            pass
        assert run.poll() is None, output()
        assert time.monotonic() < deadline, f"the server did not come up\n{output()}"
        time.sleep(0.1)


def faststart_copy(video: Path, path: Path) -> Path:
    """The same video with its index (the moov atom) at the front, as ffmpeg's +faststart and most
    streaming-ready files have it: cut short, such a file still opens and states its full length."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-c", "copy", "-movflags", "+faststart",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def cut_short(source: Path, path: Path, share: float = 0.5) -> Path:
    """The first `share` of the bytes of `source`, as an interrupted download or copy leaves a file."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def run_in_terminal(command: list[str], cwd: Path, timeout: float = 120) -> list[str]:
    """Run `command` as in a 100-column terminal (a pty); the lines the screen showed, bars included."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, cwd=cwd, stdin=child, stdout=child, stderr=child)
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout)
    os.close(main)
    return [line for line in output.decode(errors="replace").replace("\r", "\n").split("\n") if line.strip()]


@contextlib.contextmanager
def review_served(folder: Path, log: IO[bytes] | int = subprocess.PIPE) -> Iterator[str]:
    """`edgewatch review FOLDER --serve 0`, at the address it prints (`http://127.0.0.1:PORT/`), its log
    to `log`; Ctrl-C (SIGINT) at the end, which must end it with exit code 0."""
    run = subprocess.Popen(edgewatch_command("review", str(folder), "--serve", "0", "--quiet"),
                           stdout=subprocess.PIPE, stderr=log)  # fmt: skip
    line = run.stdout.readline().decode()  # printed once it answers
    found = re.search(r"open (http://127\.0\.0\.1:\d+/) — Ctrl-C stops", line)
    assert found, f"{line!r} {run.stderr.read() if run.stderr and run.poll() is not None else ''}"
    try:
        yield found.group(1)
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(20) == 0
