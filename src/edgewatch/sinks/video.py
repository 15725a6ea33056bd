"""Annotated video files (H.264 through PyAV) and annotated images."""

from __future__ import annotations

import errno
import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.result import FrameResult
from edgewatch.sinks.files import StagedFile, make_parent, write_error, write_whole
from edgewatch.sources.images import IMAGE_SUFFIXES

#: container suffix → encoder; H.264 plays in every browser and player
VIDEO_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".avi": "mpeg4"}
#: container suffix → FFmpeg muxer (named, since the file is written as NAME.part first)
CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi"}
FRAGMENTED = {".mp4", ".mov"}  # written in fragments, so a full disk keeps all but the last one


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
    Frames go to the encoder as they come, into `NAME.part`, which `close()` finishes and renames onto
    the name: a run stopped by Ctrl-C still leaves a playable video, and one that is killed leaves what
    was there before. MP4 and MOV are written in fragments of about two seconds, so a full disk costs
    the last fragment, not the whole file: it is cut back to the fragments that were written whole.
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
        self._file = StagedFile(self.path, "--out")  # here, so a place that cannot be written fails at start
        self._container: av.container.OutputContainer | None = None
        self._stream = None
        self._count = 0
        self._size: tuple[int, int] = (0, 0)
        self._failed = False

    @property
    def _fragmented(self) -> bool:
        return self.path.suffix.lower() in FRAGMENTED

    def _open(self, width: int, height: int) -> None:
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if self._fragmented else {}
        try:
            container = av.open(
                str(self._file.path), mode="w", format=CONTAINERS[self.path.suffix.lower()], options=options
            )
        except OSError as error:
            raise write_error(self.path, error, "--out") from None
        self._container = container
        self._size = (width + width % 2, height + height % 2)
        options = {"preset": "veryfast", "crf": "23"} if self._codec == "libx264" else {}
        options["g"] = str(max(1, round(2 * float(self._rate))))  # a fragment, and a seek point, every 2 s
        stream = container.add_stream(self._codec, rate=self._rate, options=options)
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
            self._failed = True
            raise write_error(self.path, error, "--out") from None

    def close(self) -> None:
        """Finish the file and put it in place; after a failed write, keep what was written whole."""
        if self._container is None:
            self._file.discard()  # no frame came: whatever was at the name stays
            return
        error: EdgewatchError | None = None
        try:
            if not self._failed:
                self._mux(self._stream.encode(None))
        except EdgewatchError as failed:
            error = failed
        try:
            self._container.close()
        except OSError as failed:  # the muxer's last write; the error that caused it is the one to tell
            self._failed = True
            error = error or write_error(self.path, failed, "--out")
        self._container = None
        if self._failed and self._fragmented:
            _cut_to_whole_fragments(self._file.path)
        self._file.commit()
        if error is not None:
            raise error

    @property
    def frames_written(self) -> int:
        return self._count


def _cut_to_whole_fragments(path: Path) -> None:
    """Cut a fragmented MP4 that a full disk ended mid-write back to its last whole fragment, so it plays
    up to there: a torn box makes players stop or fail, and a fragment's header without its frames
    (`moof` without `mdat`) holds nothing to play."""
    size, end, keep = path.stat().st_size, 0, 0
    with path.open("r+b") as file:
        while end + 8 <= size:
            file.seek(end)
            head = file.read(16)
            length, kind = struct.unpack(">I4s", head[:8])
            if length == 1 and len(head) == 16:  # a 64-bit size follows the type
                length = struct.unpack(">Q", head[8:16])[0]
            if length < 8 or end + length > size:
                break
            end += length
            if kind in (b"ftyp", b"moov", b"mdat"):
                keep = end
        file.truncate(keep)


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
        folder = self.path if self._into_folder else self.path.parent
        make_parent(folder / "image", "--out")
        if not os.access(folder, os.W_OK):  # said now, not at the first frame (a read-only disk says EROFS)
            raise write_error(self.path, OSError(errno.EACCES, "the folder cannot be written"), "--out")
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
        try:  # the folder was made at start
            write_whole(target, encoded.tobytes())
        except OSError as error:
            raise write_error(target, error, "--out") from None
        self.frames_written += 1

    def close(self) -> None:
        pass


def open_media_writer(path: str | Path, fps: float | None, single_frame: bool) -> VideoWriter | ImageWriter:
    """A writer for `--out`: images for image suffixes and folders, video otherwise."""
    text = str(path)
    target = Path(text)
    if target.suffix.lower() in IMAGE_SUFFIXES or text.endswith(os.sep) or target.is_dir():
        return ImageWriter(text, single_frame)
    return VideoWriter(target, fps or 1.0)
