"""A camera's stages and threads, and what they hand on."""

from edgewatch.pipeline.result import FrameResult
from edgewatch.pipeline.runner import Pipeline, PipelineStats, Sink
from edgewatch.pipeline.stage import Channel, Stage, StopPipeline

__all__ = ["Channel", "FrameResult", "Pipeline", "PipelineStats", "Sink", "Stage", "StopPipeline"]
