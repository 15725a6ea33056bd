"""A single image file, or a folder of them read in name order."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

log = logging.getLogger(__name__)

# After a start-of-scan header comes entropy-coded data, in which a 0xFF byte is always followed by
# 0x00 (a stuffed byte) or a restart marker D0–D7; anything else after 0xFF is the next marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
# Markers that stand alone, without a length: TEM, restart markers, start of image.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def jpeg_is_cut_short(path: Path) -> bool:
    """True for a JPEG file whose data ends before its end-of-image marker (FF D9): a file cut short.

    libjpeg decodes such a file without an error (OpenCV's imread keeps what it got and fills the rest
    with flat blocks), so the picture alone does not tell. Not a JPEG, or unreadable: False.
    """
    try:
        with path.open("rb") as file:
            if file.read(2) != b"\xff\xd8":
                return False
            file.seek(-2, 2)
            # Entropy-coded data never holds FF D9, so a file that ends with it ends with its end marker.
            if file.read(2) == b"\xff\xd9":
                return False
            file.seek(0)
            return _ends_before_end_marker(file.read())
    except OSError:
        return False


def _ends_before_end_marker(data: bytes) -> bool:
    """Follow the JPEG's segments by their lengths, rather than search for FF D9, so that an EXIF
    thumbnail (a whole JPEG inside the APP1 segment) or data after the end marker (a motion photo's
    video) does not mislead the check."""
    position, size = 2, len(data)
    while True:
        position = data.find(b"\xff", position)
        if position < 0:
            return True
        while position < size and data[position] == 0xFF:  # fill bytes may precede a marker
            position += 1
        if position >= size:
            return True
        marker = data[position]
        position += 1
        if marker == 0xD9:
            return False
        if marker in _STANDALONE:
            continue
        if position + 2 > size:
            return True
        position += int.from_bytes(data[position : position + 2], "big")
        if position > size:
            return True
        if marker == 0xDA:
            found = _NEXT_MARKER.search(data, position)
            if found is None:
                return True
            position = found.start()


class ImageSource(Source):
    """Images from one file or a folder (not recursive), sorted by file name.

    An unreadable image inside a folder is logged and skipped; a folder with no readable image, or a
    single image that cannot be read, is an error. A JPEG cut short (it ends before its end marker)
    is logged once and kept: the part that was read is real, and libjpeg fills the rest with flat
    blocks, as a video that ends early keeps the frames it has.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            self._paths = sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p))
            if not self._paths:
                raise EdgewatchError(
                    f"no images in folder {path}",
                    f"put {'/'.join(sorted(IMAGE_SUFFIXES))} files there, or name a video file",
                )
        else:
            self._paths = [path]
        self._position = 0
        self._warned: set[Path] = set()
        self._pending: Picture | None = None
        # The first readable image sets the source's size and is handed out by the first read().
        if path.is_dir():
            self._pending = self.read()
            if self._pending is None:
                raise EdgewatchError(f"no readable image in folder {path}", "the files there are damaged or not images")
        else:
            image = self._load(path)
            if image is None:  # one error line, without a warning before it
                raise EdgewatchError(f"cannot read image {path}", "the file is damaged or not an image")
            self._pending, self._position = Picture(image, name=path.name), 1
        height, width = self._pending.image.shape[:2]
        self.info = SourceInfo(
            uri=str(path),
            fps=None,
            width=width,
            height=height,
            frame_count=len(self._paths),
            live=False,
            stills=True,
        )

    def _load(self, path: Path) -> np.ndarray | None:
        # imread, not imdecode of the bytes: imdecode refuses a JPEG cut short that imread keeps.
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None and path not in self._warned and jpeg_is_cut_short(path):
            self._warned.add(path)
            log.warning(
                "%s is cut short or damaged (the JPEG ends before its end marker); keeping what could be read", path
            )
        return image

    def read(self) -> Picture | None:
        if self._pending is not None:
            picture, self._pending = self._pending, None
            return picture
        while self._position < len(self._paths):
            path = self._paths[self._position]
            self._position += 1
            image = self._load(path)
            if image is not None:
                return Picture(image, name=path.name)
            if path not in self._warned:
                self._warned.add(path)
                log.warning("skipping %s: not a readable image", path)
        return None

    def skip(self) -> bool:
        if self._pending is not None:
            self._pending = None
            return True
        if self._position >= len(self._paths):
            return False
        self._position += 1
        return True

    def rewind(self) -> bool:
        self._position = 0
        self._pending = None
        return True
