"""Annotated video files (H.264 through PyAV) and annotated images."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.result import FrameResult
from edgewatch.sources.images import IMAGE_SUFFIXES

#: container suffix → encoder; H.264 plays in every browser and player
VIDEO_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".avi": "mpeg4"}


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Make every frame the stream's size: frames of other sizes are scaled, odd edges padded."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if (w + w % 2, h + h % 2) == (width, height):
        return cv2.copyMakeBorder(image, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class VideoWriter:
    """Writes annotated frames to a video file at a fixed frame rate.

    The size is the first frame's, rounded up to even numbers (H.264 with 4:2:0 colour needs them).
    Frames go to the encoder as they come; `close()` drains it and finishes the file, so a run stopped
    by Ctrl-C still leaves a playable video.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        codec = VIDEO_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise EdgewatchError(
                f"cannot write video {self.path}: unknown kind '{self.path.suffix}'",
                f"end the name with one of {', '.join(VIDEO_CODECS)} or an image suffix",
            )
        self._codec = codec
        self._rate = Fraction(fps).limit_denominator(1001)
        self._container: av.container.OutputContainer | None = None
        self._stream = None
        self._count = 0
        self._size: tuple[int, int] = (0, 0)

    def _open(self, width: int, height: int) -> None:
        _make_parent(self.path)
        try:
            self._container = av.open(str(self.path), mode="w")
        except OSError as error:
            raise EdgewatchError(
                f"cannot write {self.path}: {error.strerror}", "choose a writable place for --out"
            ) from None
        self._size = (width + width % 2, height + height % 2)
        options = {"preset": "veryfast", "crf": "23"} if self._codec == "libx264" else {}
        stream = self._container.add_stream(self._codec, rate=self._rate, options=options)
        stream.width, stream.height = self._size
        stream.pix_fmt = "yuv420p"
        self._stream = stream

    def write(self, result: FrameResult) -> None:
        image = result.annotated
        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        frame = av.VideoFrame.from_ndarray(_fit(image, *self._size), format="bgr24")
        frame.pts = self._count
        frame.time_base = 1 / self._rate
        self._count += 1
        self._mux(self._stream.encode(frame))

    def _mux(self, packets) -> None:
        try:
            self._container.mux(packets)
        except OSError as error:
            raise EdgewatchError(f"cannot write {self.path}: {error.strerror}", "free some disk space") from None

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None

    @property
    def frames_written(self) -> int:
        return self._count


class ImageWriter:
    """Writes annotated frames as image files.

    With a file name (`out.jpg`) and a one-image source, that file is written; with several frames,
    each gets its own file (`out_000012.jpg`). With a folder (an existing one, or a name ending in `/`),
    frames keep their source file names, or get `<camera>_<frame>.jpg`.
    """

    def __init__(self, path: str | Path, single: bool) -> None:
        self.path = Path(path)
        self._into_folder = str(path).endswith(os.sep) or self.path.is_dir()
        self._single = single and not self._into_folder
        if self._into_folder:
            self.path.mkdir(parents=True, exist_ok=True)
        self.frames_written = 0

    def _target(self, result: FrameResult) -> Path:
        frame = result.frame
        if self._into_folder:
            return self.path / (frame.name or f"{frame.camera}_{frame.index:06d}.jpg")
        if self._single:
            return self.path
        return self.path.with_name(f"{self.path.stem}_{frame.index:06d}{self.path.suffix}")

    def write(self, result: FrameResult) -> None:
        target = self._target(result)
        suffix = target.suffix.lower() if target.suffix.lower() in IMAGE_SUFFIXES else ".jpg"
        ok, encoded = cv2.imencode(suffix, result.annotated)
        if not ok:
            raise EdgewatchError(f"cannot encode {target} as {suffix}", "use .jpg or .png")
        _make_parent(target)
        temporary = target.with_name(f".{target.name}.part")
        try:
            temporary.write_bytes(encoded.tobytes())
            temporary.replace(target)
        except OSError as error:
            raise EdgewatchError(
                f"cannot write {target}: {error.strerror}", "choose a writable place for --out"
            ) from None
        self.frames_written += 1

    def close(self) -> None:
        pass


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgewatchError(
            f"cannot create folder {path.parent}: {error.strerror}", "choose a writable place"
        ) from None


def open_media_writer(path: str | Path, fps: float | None, single_frame: bool) -> VideoWriter | ImageWriter:
    """A writer for `--out`: images for image suffixes and folders, video otherwise."""
    text = str(path)
    target = Path(text)
    if target.suffix.lower() in IMAGE_SUFFIXES or text.endswith(os.sep) or target.is_dir():
        return ImageWriter(text, single_frame)
    return VideoWriter(target, fps or 1.0)
