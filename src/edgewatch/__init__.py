"""edgewatch: video analytics at the edge.

Example:
    >>> import edgewatch as ew
    >>> with ew.open_source("street.mp4") as source, ew.JsonLinesWriter("out.jsonl") as lines:  # doctest: +SKIP
    ...     stats = ew.Pipeline(source, ew.load_detector("hog"), sinks=[lines]).run()
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing's own, without importing typing: this module is the command's first import

__version__ = "0.1.0"

# Loaded on first use (PEP 562): `import edgewatch` is then instant, so the command can take a Ctrl-C
# while OpenCV, ONNX Runtime and supervision load (see __main__.py), and `--version` needs none of them.
_EXPORTS = {
    "EdgewatchError": "edgewatch.errors",
    "Frame": "edgewatch.frame",
    "Detector": "edgewatch.models",
    "load_detector": "edgewatch.models",
    "FrameResult": "edgewatch.pipeline",
    "Pipeline": "edgewatch.pipeline",
    "PipelineStats": "edgewatch.pipeline",
    "StopPipeline": "edgewatch.pipeline",
    "ImageWriter": "edgewatch.sinks",
    "JsonLinesWriter": "edgewatch.sinks",
    "RawVideoPipe": "edgewatch.sinks",
    "VideoWriter": "edgewatch.sinks",
    "Source": "edgewatch.sources",
    "SourceInfo": "edgewatch.sources",
    "open_source": "edgewatch.sources",
    "FrameSelection": "edgewatch.sources.frames",
}

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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgewatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from edgewatch.errors import EdgewatchError
    from edgewatch.frame import Frame
    from edgewatch.models import Detector, load_detector
    from edgewatch.pipeline import FrameResult, Pipeline, PipelineStats, StopPipeline
    from edgewatch.sinks import ImageWriter, JsonLinesWriter, RawVideoPipe, VideoWriter
    from edgewatch.sources import Source, SourceInfo, open_source
    from edgewatch.sources.frames import FrameSelection
