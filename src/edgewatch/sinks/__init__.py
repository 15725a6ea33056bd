"""Where results go. Sinks do I/O and make no decisions."""

from edgewatch.sinks.jsonlines import EventLogWriter, JsonLinesWriter
from edgewatch.sinks.pipe import RawVideoPipe
from edgewatch.sinks.video import ImageWriter, VideoWriter, open_media_writer
from edgewatch.sinks.window import WindowDisplay

__all__ = [
    "EventLogWriter",
    "ImageWriter",
    "JsonLinesWriter",
    "RawVideoPipe",
    "VideoWriter",
    "WindowDisplay",
    "open_media_writer",
]
