"""`edgewatch bench models`: load time, warm-up, latency and throughput of detectors on this machine.

For model files, pre-processing, the model call and post-processing are timed apart, so the cost of
edgewatch around the model shows: overhead = (pre + post) / model call.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgewatch.models import Detector, load_detector, runtime_for
from edgewatch.models.model import ModelDetector

BATCH_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One thing to measure: a built-in detector, or a model file on a runtime and device."""

    name: str
    runtime: str  # builtin, onnx, openvino
    device: str
    load: Callable[[], Detector]


@dataclass(frozen=True, slots=True)
class ModelBenchmark:
    name: str
    runtime: str
    device: str
    load_s: float
    warmup_ms: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    fps_batch1: float
    best_batch: int
    fps_best_batch: float
    pre_ms: float | None
    model_ms: float | None
    post_ms: float | None

    @property
    def overhead(self) -> float | None:
        """(pre + post) / model call, for model files."""
        if self.model_ms is None or self.pre_ms is None or self.post_ms is None or self.model_ms <= 0:
            return None
        return (self.pre_ms + self.post_ms) / self.model_ms


def candidates(models: Sequence[str], detectors: Sequence[str], openvino_devices: Sequence[str]) -> list[Candidate]:
    """Every model file on ONNX Runtime (for .onnx) and on each OpenVINO device asked for, plus the
    built-in detectors."""
    found = [Candidate(name, "builtin", "CPU (OpenCV)", lambda name=name: load_detector(name)) for name in detectors]
    for path in models:
        name = Path(path).name
        if runtime_for(path) == "onnx":
            found.append(Candidate(name, "onnx", "auto", lambda path=path: load_detector("onnx", path=path)))
        for device in openvino_devices:
            found.append(
                Candidate(
                    name,
                    "openvino",
                    device,
                    lambda path=path, device=device: load_detector("openvino", path=path, device=device),
                )
            )
    return found


def measure(candidate: Candidate, frames: list[np.ndarray], runs: int) -> ModelBenchmark:
    """Time one candidate on `frames`, each frame `runs` times at batch 1, then at growing batches."""
    started = time.perf_counter()
    detector = candidate.load()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    detector.detect(frames[0])
    warmup_ms = (time.perf_counter() - started) * 1000
    device = getattr(getattr(detector, "_runtime", None), "device", candidate.device)

    latencies, pre, model, post = [], [], [], []
    for _ in range(runs):
        for frame in frames:
            if isinstance(detector, ModelDetector):
                t0 = time.perf_counter()
                batch, geometries = detector.prepare([frame])
                t1 = time.perf_counter()
                outputs = detector.infer(batch)
                t2 = time.perf_counter()
                detector.decode(outputs, geometries)
                t3 = time.perf_counter()
                pre.append(t1 - t0)
                model.append(t2 - t1)
                post.append(t3 - t2)
                latencies.append(t3 - t0)
            else:
                t0 = time.perf_counter()
                detector.detect(frame)
                latencies.append(time.perf_counter() - t0)
    fps_batch1 = len(latencies) / sum(latencies)

    best_batch, fps_best = 1, fps_batch1
    for size in BATCH_SIZES[1:]:
        if size > detector.max_batch:
            break
        batch = [frames[index % len(frames)] for index in range(size)]
        started = time.perf_counter()
        for _ in range(runs):
            detector.detect_batch(batch)
        fps = size * runs / (time.perf_counter() - started)
        if fps > fps_best:
            best_batch, fps_best = size, fps
    detector.close()

    def ms(values: list[float]) -> float | None:
        return statistics.fmean(values) * 1000 if values else None

    ordered = sorted(latencies)
    return ModelBenchmark(
        name=candidate.name,
        runtime=candidate.runtime,
        device=str(device),
        load_s=load_s,
        warmup_ms=warmup_ms,
        mean_ms=statistics.fmean(latencies) * 1000,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p95_ms=ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000,
        fps_batch1=fps_batch1,
        best_batch=best_batch,
        fps_best_batch=fps_best,
        pre_ms=ms(pre),
        model_ms=ms(model),
        post_ms=ms(post),
    )


COLUMNS = [
    ("model", lambda r: r.name),
    ("runtime", lambda r: r.runtime),
    ("device", lambda r: r.device),
    ("load s", lambda r: f"{r.load_s:.2f}"),
    ("warm-up ms", lambda r: f"{r.warmup_ms:.1f}"),
    ("mean ms", lambda r: f"{r.mean_ms:.2f}"),
    ("p50 ms", lambda r: f"{r.p50_ms:.2f}"),
    ("p95 ms", lambda r: f"{r.p95_ms:.2f}"),
    ("fps b1", lambda r: f"{r.fps_batch1:.1f}"),
    ("best batch", lambda r: str(r.best_batch)),
    ("fps best", lambda r: f"{r.fps_best_batch:.1f}"),
    ("pre ms", lambda r: "-" if r.pre_ms is None else f"{r.pre_ms:.2f}"),
    ("model ms", lambda r: "-" if r.model_ms is None else f"{r.model_ms:.2f}"),
    ("post ms", lambda r: "-" if r.post_ms is None else f"{r.post_ms:.2f}"),
    ("overhead", lambda r: "-" if r.overhead is None else f"{r.overhead:.1%}"),
]


def table(results: list[ModelBenchmark], markdown: bool = False) -> str:
    rows = [[cell(result) for _, cell in COLUMNS] for result in results]
    header = [name for name, _ in COLUMNS]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(item)) for item in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(item).rjust(width) for item, width in zip(row, widths, strict=True)) for row in [header, *rows]
    )


def write_json(results: list[ModelBenchmark], path: Path) -> None:
    path.write_text(json.dumps([{**asdict(r), "overhead": r.overhead} for r in results], indent=2) + "\n")


def write_csv(results: list[ModelBenchmark], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*ModelBenchmark.__dataclass_fields__, "overhead"])
        for result in results:
            writer.writerow([*asdict(result).values(), result.overhead])
