"""Prometheus text for `/metrics`, from the live hub's counters."""

from __future__ import annotations

import itertools

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from edgewatch.web.hub import INFERENCE_BUCKETS, LiveHub


class _HubCollector:
    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub

    def collect(self):
        frames = CounterMetricFamily("edgewatch_frames", "Frames processed", labels=["camera"])
        inference = GaugeMetricFamily("edgewatch_mean_inference_ms", "Mean detector time per frame", labels=["camera"])
        fps = GaugeMetricFamily("edgewatch_fps", "Frames processed per second", labels=["camera"])
        viewers = GaugeMetricFamily("edgewatch_viewers", "Live video viewers", labels=["camera"])
        for camera in self.hub.cameras():
            health = self.hub.health(camera)
            frames.add_metric([camera], health["frames"])
            viewers.add_metric([camera], health["viewers"])
            if health["inference_ms"] is not None:
                inference.add_metric([camera], health["inference_ms"])
            if health["fps"] is not None:
                fps.add_metric([camera], health["fps"])
        dropped = CounterMetricFamily("edgewatch_dropped_frames", "Frames dropped to stay live", labels=["camera"])
        reconnects = CounterMetricFamily("edgewatch_reconnects", "Source reconnections", labels=["camera"])
        latency = HistogramMetricFamily("edgewatch_inference_ms", "Detector time per frame, ms", labels=["camera"])
        for camera in self.hub.cameras():
            health = self.hub.health(camera)
            if "dropped" in health:
                dropped.add_metric([camera], health["dropped"])
                reconnects.add_metric([camera], health["reconnects"])
            feed = self.hub.feed(camera)
            cumulative = list(itertools.accumulate(feed.inference_counts))
            buckets = [(_bound(bound), count) for bound, count in zip(INFERENCE_BUCKETS, cumulative, strict=True)]
            latency.add_metric([camera], buckets, sum_value=feed.inference_sum)
        queues = GaugeMetricFamily("edgewatch_queue_depth", "Messages waiting to be delivered", labels=["queue"])
        for name, depth in sorted(self.hub.queues.items()):
            queues.add_metric([name], depth())
        yield from (dropped, reconnects, latency, queues)
        events = CounterMetricFamily("edgewatch_events", "Events raised", labels=["type"])
        for kind, count in sorted(self.hub.events_by_type.items()):
            events.add_metric([kind], count)
        yield from (frames, inference, fps, viewers, events)


def render_metrics(hub: LiveHub) -> bytes:
    registry = CollectorRegistry()
    registry.register(_HubCollector(hub))
    return generate_latest(registry)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"
