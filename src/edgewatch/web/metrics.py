"""Prometheus text for `/metrics`, from the live hub's counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from edgewatch.web.hub import LiveHub


class _HubCollector:
    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub

    def collect(self):
        frames = CounterMetricFamily("edgewatch_frames", "Frames processed", labels=["camera"])
        inference = GaugeMetricFamily("edgewatch_inference_ms", "Mean detector time per frame", labels=["camera"])
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
        events = CounterMetricFamily("edgewatch_events", "Events raised", labels=["type"])
        for kind, count in sorted(self.hub.events_by_type.items()):
            events.add_metric([kind], count)
        yield from (frames, inference, fps, viewers, events)


def render_metrics(hub: LiveHub) -> bytes:
    registry = CollectorRegistry()
    registry.register(_HubCollector(hub))
    return generate_latest(registry)
