"""A single image file, or a folder of them read in name order."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

log = logging.getLogger(__name__)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class ImageSource(Source):
    """Images from one file or a folder (not recursive), sorted by file name.

    An unreadable image inside a folder is logged and skipped; a folder with no images, or a single
    image that cannot be read, is an error.
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
        first = self._load(self._paths[0])
        if first is None and len(self._paths) == 1:
            raise EdgewatchError(f"cannot read image {path}", "the file is damaged or not an image")
        height, width = (first.shape[:2]) if first is not None else (0, 0)
        self.info = SourceInfo(
            uri=str(path),
            fps=None,
            width=width,
            height=height,
            frame_count=len(self._paths),
            live=False,
            stills=True,
        )

    @staticmethod
    def _load(path: Path):
        return cv2.imread(str(path), cv2.IMREAD_COLOR)

    def read(self) -> Picture | None:
        while self._position < len(self._paths):
            path = self._paths[self._position]
            self._position += 1
            image = self._load(path)
            if image is not None:
                return Picture(image, name=path.name)
            log.warning("skipping %s: not a readable image", path)
        return None

    def skip(self) -> bool:
        if self._position >= len(self._paths):
            return False
        self._position += 1
        return True

    def rewind(self) -> bool:
        self._position = 0
        return True
