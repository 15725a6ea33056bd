"""A local window per camera (`--show`), drawn from the main thread as GUI toolkits require."""

from __future__ import annotations

import os
import sys
import threading

import cv2
import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.result import FrameResult

ESC = 27


class WindowDisplay:
    """Keeps the newest annotated frame of each camera; `pump()` on the main thread shows them.

    `pump()` returns False once the user pressed Esc or closed a window.
    """

    def __init__(self) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise EdgewatchError("--show needs a display, and none is set", "drop --show, or set DISPLAY")
        self._latest: dict[str, np.ndarray] = {}
        self._opened: set[str] = set()
        self._lock = threading.Lock()

    def write(self, result: FrameResult) -> None:
        with self._lock:
            self._latest[result.frame.camera] = result.annotated

    def pump(self) -> bool:
        with self._lock:
            pending, self._latest = self._latest, {}
        for camera, image in pending.items():
            cv2.imshow(camera, image)
            self._opened.add(camera)
        if not self._opened:
            return True
        if cv2.waitKey(1) & 0xFF == ESC:
            return False
        return all(cv2.getWindowProperty(camera, cv2.WND_PROP_VISIBLE) >= 1 for camera in self._opened)

    def close(self) -> None:
        if self._opened:
            cv2.destroyAllWindows()
