"""One camera's pipeline: read → detect → deliver, each stage in its own thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import supervision as sv
from tqdm import tqdm

from edgewatch.analytics.camera import CameraAnalytics
from edgewatch.annotate import Annotator
from edgewatch.frame import Frame
from edgewatch.models.base import Detector
from edgewatch.pipeline.result import FrameResult
from edgewatch.pipeline.stage import Channel, Stage, StopPipeline
from edgewatch.progress import progress_bar
from edgewatch.sources.base import Source
from edgewatch.sources.frames import FrameSelection, read_frames

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where results go: files, windows, pipes, brokers and storage. Sinks do I/O and make no
    decisions; the caller that made a sink closes it.

    A sink that also wants events and stats has `event(event: dict)` and `stats(stats: dict)`
    methods; they are called after `write` of the frame that raised them, and once more with what
    the end of the input closes (objects and incidents still open, the last stats).
    """

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """What a finished (or stopped) run did."""

    camera: str
    frames: int
    dropped: int
    seconds: float
    mean_inference_ms: float
    reconnects: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Pipeline:
    """Runs a detector over a source and hands each result to sinks and a callback.

    Args:
        source: an open source (see `open_source`).
        detector: see `load_detector`.
        camera: the name stamped on frames, JSON lines and events.
        selection: which frames to process (stride, fps, realtime, loop, max frames).
        min_score: drop boxes scoring below it; None uses the detector's default.
        labels: keep only these labels; None keeps all.
        sinks: objects with `write(result)`; the caller closes them.
        on_result: called with each `FrameResult`, in frame order, on the delivery thread.
        analytics: tracking, counting and rules for this camera; None reports bare detections.
        progress: show a progress bar on stderr (files only).
        queue_size: frames waiting between two stages at most.
        batch_size: frames the detector may take in one call when several are waiting; None uses the
            detector's `max_batch` (8 for a model with a dynamic batch axis, else 1).

    Example:
        >>> import edgewatch as ew
        >>> with ew.open_source("street.mp4") as source:  # doctest: +SKIP
        ...     stats = ew.Pipeline(source, ew.load_detector("hog"),
        ...                         on_result=lambda r: print(r.frame.index, len(r.detections))).run()
    """

    def __init__(
        self,
        source: Source,
        detector: Detector,
        *,
        camera: str = "default",
        selection: FrameSelection | None = None,
        min_score: float | None = None,
        labels: Iterable[str] | None = None,
        sinks: Sequence[Sink] = (),
        on_result: Callable[[FrameResult], None] | None = None,
        analytics: CameraAnalytics | None = None,
        progress: bool = False,
        queue_size: int = 4,
        batch_size: int | None = None,
    ) -> None:
        self.source = source
        self.detector = detector
        self.camera = camera
        self.selection = selection or FrameSelection()
        self.min_score = detector.default_min_score if min_score is None else min_score
        self.labels = None if labels is None else np.asarray(sorted(set(labels)), dtype=str)
        self.sinks = list(sinks)
        self.on_result = on_result
        self.analytics = analytics
        self.final_stats: dict | None = None  # the analytics' last stats, once the run has ended
        self._stop = threading.Event()
        self._annotator = Annotator()
        self._frames: Channel[Frame] = Channel(
            1 if source.info.live else queue_size, keep_latest=source.info.live, stop=self._stop
        )
        self._results: Channel[list[FrameResult]] = Channel(queue_size, stop=self._stop)
        self._show_progress = progress and not source.info.live
        self._progress: tqdm | None = None
        self._delivered = 0
        self._passes = 0  # of a looped file, for the progress bar
        self._inference_ms_total = 0.0
        self._started = 0.0
        self._ended: float | None = None  # when its last frame was delivered: its own time, not the run's
        self._stages = [
            Stage(
                f"{camera}:read",
                read_frames(source, camera, self.selection, self._stop),
                _same,
                self._frames,
                self._stop,
            ),
            Stage(
                f"{camera}:detect",
                self._frames.batches(batch_size or detector.max_batch),
                self._detect,
                self._results,
                self._stop,
            ),
            Stage(f"{camera}:deliver", self._results, self._deliver, None, self._stop, on_exit=self._finish),
        ]

    def _progress_bar(self) -> tqdm:
        info = self.source.info
        total = self.selection.expected_count(info.frame_count, info.fps)
        if self.selection.loop and self.selection.max_frames is None:  # a bar per pass, and which pass
            total = replace(self.selection, loop=False).expected_count(info.frame_count, info.fps)
        desc = f"{self.camera} (pass 1)" if self.selection.loop and total else self.camera
        return progress_bar(total, desc, "frame", enabled=True)  # the pipeline's `progress` decides

    def _detect(self, frames: list[Frame]) -> list[FrameResult]:
        started = time.perf_counter()
        found = self.detector.detect_batch([frame.image for frame in frames])
        inference_ms = (time.perf_counter() - started) * 1000 / len(frames)
        answered = self._answered()
        results = []
        for frame, detections in zip(frames, found, strict=True):
            kept = self._filter(detections)
            if answered is not None:  # a new dict: a filtered view shares the detector's own
                kept.metadata = {**kept.metadata, "detector": answered}
            results.append(FrameResult(frame, kept, inference_ms, self._annotator))
        return results

    def _answered(self) -> dict[str, Any] | None:
        """Which model answered, read here on the detect thread for a detector that can change it (a
        remote one, with its fallback): the analytics turn it into stats and `detector` events."""
        in_use = getattr(self.detector, "in_use", None)
        if in_use is None:
            return None
        return {
            "in_use": in_use,
            "server": self.detector.name,  # RemoteDetector's name never holds the token
            "fallback": getattr(self.detector, "fallback_name", None),
            "dropped": int(getattr(self.detector, "dropped", 0)),
            "sent": int(getattr(self.detector, "sent_frames", 0)),
            "skipped": int(getattr(self.detector, "skipped_frames", 0)),
            "sent_bytes": int(getattr(self.detector, "sent_bytes", 0)),
            "min_change": float(getattr(self.detector, "min_change", 0.0)),
            "quality": int(getattr(self.detector, "quality", 0)),
            "scale": float(getattr(self.detector, "scale", 1.0)),
            "reason": getattr(self.detector, "reason", None),
        }

    def _filter(self, detections: sv.Detections) -> sv.Detections:
        if len(detections) == 0:
            return detections
        keep = np.ones(len(detections), dtype=bool)
        if detections.confidence is not None:
            keep &= detections.confidence >= self.min_score
        if self.labels is not None:
            keep &= np.isin(detections.data["class_name"], self.labels)
        return detections if keep.all() else detections[keep]

    def _deliver(self, results: list[FrameResult]) -> None:
        for result in results:
            if self.analytics is not None:
                analysis = self.analytics.update(result.frame, result.detections, result.inference_ms)
                result.detections, result.events = analysis.detections, analysis.events
                result.stats, result.overlay = analysis.stats, analysis.overlay
            for sink in self.sinks:
                sink.write(result)
            self._publish(result.events, result.stats)
            if self.on_result is not None:
                self.on_result(result)
            self._delivered += 1
            self._inference_ms_total += result.inference_ms
            if self._progress is not None:
                self._advance_progress()
            if self.selection.max_frames is not None and self._delivered >= self.selection.max_frames:
                raise StopPipeline(f"{self._delivered} frames processed, as asked")

    def _advance_progress(self) -> None:
        bar = self._progress
        bar.update(1)
        if self.selection.loop and bar.total and bar.n >= bar.total:
            self._passes += 1
            bar.set_description(f"{self.camera} (pass {self._passes + 1})", refresh=False)
            bar.reset()

    def _publish(self, events: list[dict], stats: dict | None) -> None:
        for sink in self.sinks:
            on_event, on_stats = getattr(sink, "event", None), getattr(sink, "stats", None)
            if on_event is not None:
                for event in events:
                    on_event(event)
            if on_stats is not None and stats is not None:
                on_stats(stats)

    def _finish(self) -> None:
        """On the delivery thread, after its last frame: close what the analytics still hold open."""
        self._ended = time.monotonic()
        if self.analytics is None:
            return
        try:
            final = self.analytics.finish()
            self._publish(final.events, final.stats)
            self.final_stats = final.stats
        except Exception as error:  # the stage's own error, if any, is the one to report
            log.debug("finishing %s's analytics failed", self.camera, exc_info=True)
            self._stages[-1].error = self._stages[-1].error or error

    def start(self) -> None:
        """Start the stages and return at once; `wait()` for the end."""
        log.info(
            "%s: %s (%dx%d, %s fps, %s) with %s",
            self.camera,
            self.source.info.uri,
            self.source.info.width,
            self.source.info.height,
            f"{self.source.info.fps:g}" if self.source.info.fps else "unknown",
            "live" if self.source.info.live else f"{self.source.info.frame_count or 'unknown'} frames",
            self.detector.name,
        )
        self._started = time.monotonic()
        if self._show_progress:
            self._progress = self._progress_bar()
        for stage in self._stages:
            stage.start()

    def stop(self) -> None:
        """Ask every stage to finish soon; safe from a signal handler or another thread."""
        self._stop.set()
        self.source.stop()

    @property
    def finished(self) -> bool:
        return not any(stage.is_alive() for stage in self._stages)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every stage to end (or `timeout`), without raising their errors."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for stage in self._stages:
            stage.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def wait(self, timeout: float | None = None) -> PipelineStats | None:
        """Wait for the end of input or `stop()`; re-raise the first stage error.

        Returns None when `timeout` passed first.
        """
        self.join(timeout)
        if not self.finished:
            return None
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        for stage in self._stages:
            if stage.error is not None:
                raise stage.error
        return self.stats()

    def stats(self) -> PipelineStats:
        return PipelineStats(
            camera=self.camera,
            frames=self._delivered,
            dropped=self._frames.dropped,
            seconds=(self._ended or time.monotonic()) - self._started if self._started else 0.0,
            mean_inference_ms=self._inference_ms_total / self._delivered if self._delivered else 0.0,
            reconnects=self.source.reconnects,
        )

    def run(self) -> PipelineStats:
        """Start, and wait for the end."""
        self.start()
        stats = self.wait()
        assert stats is not None
        return stats


def _same(frame: Frame) -> Frame:
    return frame
