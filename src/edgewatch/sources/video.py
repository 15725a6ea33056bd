"""Video files, decoded by OpenCV's FFmpeg backend."""

from __future__ import annotations

from pathlib import Path

import cv2

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo


class VideoFileSource(Source):
    """Every frame of a video file, in order.

    Raises:
        EdgewatchError: when the file is missing or FFmpeg cannot decode a first frame from it.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        if not self._path.is_file():
            raise EdgewatchError(f"no such file: {self._path}", "check the path, or name a folder, URL or webcam index")
        self._capture = self._open()
        ok, first = self._capture.read()
        if not ok:
            self._capture.release()
            raise EdgewatchError(
                f"cannot decode video {self._path}: the file is damaged or not a video",
                "check it plays (ffprobe FILE) or re-encode it",
            )
        self._pending: Picture | None = Picture(first)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = SourceInfo(
            uri=str(self._path),
            fps=fps if fps > 0 else None,
            width=first.shape[1],
            height=first.shape[0],
            frame_count=count if count > 0 else None,
            live=False,
        )

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise EdgewatchError(
                f"cannot open video {self._path}: the file is damaged or not a video",
                "check it plays (ffprobe FILE) or re-encode it",
            )
        return capture

    def read(self) -> Picture | None:
        if self._pending is not None:
            picture, self._pending = self._pending, None
            return picture
        ok, image = self._capture.read()
        return Picture(image) if ok else None

    def skip(self) -> bool:
        if self._pending is not None:
            self._pending = None
            return True
        # grab() decodes but skips the conversion to BGR, the costly half of read() for skipped frames.
        return bool(self._capture.grab())

    def rewind(self) -> bool:
        self._capture.release()
        self._capture = self._open()
        return True

    def close(self) -> None:
        self._capture.release()
