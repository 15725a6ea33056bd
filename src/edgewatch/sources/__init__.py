"""Opening inputs: image files and folders, video files, webcams and network streams."""

from __future__ import annotations

from pathlib import Path

import cv2

from edgewatch.errors import EdgewatchError
from edgewatch.sources.base import Picture, Source, SourceInfo
from edgewatch.sources.images import ImageSource, is_image_path
from edgewatch.sources.live import LiveSource
from edgewatch.sources.samples import sample_video
from edgewatch.sources.video import VideoFileSource

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")

__all__ = [
    "ImageSource",
    "LiveSource",
    "Picture",
    "Source",
    "SourceInfo",
    "VideoFileSource",
    "open_source",
    "sample_video",
]


def _has_gstreamer() -> bool:
    return any(
        line.strip().startswith("GStreamer:") and "YES" in line for line in cv2.getBuildInformation().splitlines()
    )


def open_source(spec: str | int | Path, *, open_timeout: float = 10.0) -> Source:
    """Open whatever the user named.

    Args:
        spec: an image, a folder of images, a video file, a webcam index (`0`, or `CAM` for 0),
            an `rtsp://`, `http(s)://` or `udp://` URL, a GStreamer pipeline (contains `!`), or
            `synthetic:street`, `synthetic:pets` or `synthetic:door` (options as a query:
            `synthetic:street?seed=3&seconds=10`).
        open_timeout: seconds a stream may take to open (and to deliver each frame).

    Raises:
        EdgewatchError: the input is missing, unreadable, or does not answer in time.

    Example:
        >>> source = open_source("street.mp4")  # doctest: +SKIP
        >>> source.info.live
        False
    """
    if isinstance(spec, int):
        return LiveSource(spec, open_timeout)
    text = str(spec).strip()
    if text.upper() == "CAM":
        return LiveSource(0, open_timeout)
    if text.isdigit():
        return LiveSource(int(text), open_timeout)
    if text.startswith("synthetic:"):
        return _synthetic(text)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveSource(text, open_timeout)
    if "!" in text:
        if not _has_gstreamer():
            raise EdgewatchError(
                "this looks like a GStreamer pipeline, but this OpenCV was built without GStreamer",
                "use an rtsp:// or udp:// URL instead, or install an OpenCV built with GStreamer",
            )
        return LiveSource(text, open_timeout)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageSource(path)
    if not path.exists():
        raise EdgewatchError(f"no such file or folder: {path}", "check the path, or name a URL or webcam index")
    if is_image_path(path):
        return ImageSource(path)
    return VideoFileSource(path)


def _synthetic(text: str) -> Source:
    from urllib.parse import parse_qsl

    from edgewatch.sources.door import DoorScene
    from edgewatch.sources.pets import PetsScene
    from edgewatch.sources.synthetic import StreetScene, SyntheticSource

    scenes = {"street": StreetScene, "pets": PetsScene, "door": DoorScene}
    name, _, query = text.removeprefix("synthetic:").partition("?")
    if name not in scenes:
        raise EdgewatchError(
            f"unknown synthetic scene '{name}'", "use synthetic:street, synthetic:pets or synthetic:door"
        )
    allowed = {"seed": int, "seconds": float}
    if name == "street":  # the others are drawn for 640×360 at 25 fps
        allowed |= {"width": int, "height": int, "fps": float, "cars": int, "people": int}
    if name == "door":
        allowed |= {"open_share": float}  # a door that is rarely open, for the sampler's tests
    options = {}
    for key, value in parse_qsl(query):
        if key not in allowed:
            raise EdgewatchError(f"unknown synthetic scene option '{key}'", f"use {', '.join(allowed)}")
        try:
            options[key] = allowed[key](value)
        except ValueError:
            raise EdgewatchError(f"synthetic scene option {key}={value} is not a number", "give a number") from None
        if key == "seconds" and not 0 < options[key] < float("inf"):
            raise EdgewatchError(
                f"synthetic scene option seconds={value} is not a length", "give seconds above 0, e.g. seconds=10"
            )
    others = "&".join(f"{key}={value}" for key, value in parse_qsl(query) if key != "seed")
    return SyntheticSource(scenes[name](**options), name, others)
