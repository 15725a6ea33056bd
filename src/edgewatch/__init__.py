"""edgewatch: video analytics at the edge.

Example:
    >>> import edgewatch as ew
    >>> with ew.open_source("street.mp4") as source, ew.JsonLinesWriter("out.jsonl") as lines:  # doctest: +SKIP
    ...     stats = ew.Pipeline(source, ew.load_detector("hog"), sinks=[lines]).run()
"""

__version__ = "0.1.0"

from edgewatch.errors import EdgewatchError
from edgewatch.frame import Frame
from edgewatch.models import Detector, load_detector
from edgewatch.pipeline import FrameResult, Pipeline, PipelineStats, StopPipeline
from edgewatch.sinks import ImageWriter, JsonLinesWriter, RawVideoPipe, VideoWriter
from edgewatch.sources import Source, SourceInfo, open_source
from edgewatch.sources.frames import FrameSelection

__all__ = [
    "Detector",
    "EdgewatchError",
    "Frame",
    "FrameResult",
    "FrameSelection",
    "ImageWriter",
    "JsonLinesWriter",
    "Pipeline",
    "PipelineStats",
    "RawVideoPipe",
    "Source",
    "SourceInfo",
    "StopPipeline",
    "VideoWriter",
    "__version__",
    "load_detector",
    "open_source",
]
