"""The `edgewatch` command: parses arguments, calls the packages, turns errors into one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import cv2
from tqdm.contrib.logging import logging_redirect_tqdm

from edgewatch import __version__
from edgewatch.app import Outputs, run_config
from edgewatch.config import (
    CameraConfig,
    Config,
    DashboardConfig,
    LineConfig,
    MqttConfig,
    StorageConfig,
    default_instance,
    load_config,
)
from edgewatch.errors import EdgewatchError
from edgewatch.models import BUILTIN_DETECTORS, runtime_for
from edgewatch.offload.address import DEFAULT_PORT as OFFLOAD_PORT
from edgewatch.progress import with_progress
from edgewatch.shutdown import EXIT_INTERRUPTED, EXIT_OK
from edgewatch.sinks.files import StagedFile
from edgewatch.sources import sample_video

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
#: `bench offload`'s defaults: the street scene, and every named link profile (docs/links.md)
OFFLOAD_SOURCE = "synthetic:street?seconds=20"
OFFLOAD_PROFILES = "ethernet,wifi,lte,poor-lte,5g-low,5g-mmwave"

log = logging.getLogger("edgewatch")

ConfigModel = TypeVar("ConfigModel", MqttConfig, DashboardConfig, Config)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise EdgewatchError(f"{self.prog}: {message}", f"see {self.prog} --help")


class _Renamed(argparse.Action):
    """An option's old spelling: it still works, is hidden from --help, and says the new name once."""

    def __init__(self, option_strings: list[str], dest: str, new: argparse.Action, **kwargs: object) -> None:
        self.new = new
        super().__init__(option_strings, dest, nargs=new.nargs, type=new.type, choices=new.choices, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:  # fmt: skip
        # the verb's own namespace, which the top parser's defaults do not reach
        namespace.renamed = [*getattr(namespace, "renamed", []), f"{option_string} is now "
                             f"{self.new.option_strings[0]}; the old name still works for now"]  # fmt: skip
        self.new(parser, namespace, values, option_string)


def _option(command: argparse.ArgumentParser, name: str, *old: str, **kwargs: object) -> argparse.Action:
    """`command.add_argument(name, **kwargs)`, with `old` spellings kept working (docs/cli.md)."""
    action = command.add_argument(name, **kwargs)
    for spelling in old:
        command.add_argument(spelling, action=_Renamed, new=action, dest=action.dest, default=argparse.SUPPRESS,
                             help=argparse.SUPPRESS)  # fmt: skip
    return action


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _score(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgewatch",
        description="Video analytics at the edge: detections, counts and events from cameras and files.",
    )
    parser.add_argument("--version", action="version", version=f"edgewatch {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logs, and tracebacks on errors")
    parser.set_defaults(quiet=False, renamed=[])  # the verbs' own --quiet, and the old option names used
    # --debug and --quiet also after the verb, where users put them (SUPPRESS: absent leaves the top one)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="debug logs, and tracebacks")
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar or info logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    add_command = functools.partial(commands.add_parser, parents=[common])

    run = add_command("run", help="run detection on a source, or on everything in a config file")
    run.add_argument("config", nargs="?", type=Path, help="YAML config (see docs/config.md); or use --source")
    run.add_argument("--source", help="image, folder, video, webcam index (0 or CAM), rtsp:// http(s):// udp:// URL")
    run.add_argument(
        "--detector",
        help=f"built-in detector: {', '.join(BUILTIN_DETECTORS)} (default hog; street for synthetic: sources); or "
        "remote://HOST:PORT, the model of an edgewatch serve server (docs/offload.md)",
    )
    run.add_argument(
        "--model",
        help="a model file: .onnx (YOLOv5/v8/v11, SSD, classifier), OpenVINO .xml, TensorFlow .pb or SavedModel "
        "folder, .tflite, PaddlePaddle .pdmodel; see docs/models.md",
    )
    run.add_argument("--format", help="the model's output layout, when guessing from its shapes is not enough")
    run.add_argument("--labels", help="the model's class names: txt (one a line), yaml or json")
    run.add_argument(
        "--device",
        help="what runs the model: cpu, gpu, cuda, tensorrt (ONNX Runtime), openvino[:GPU], AUTO, CPU, GPU, NPU "
        "(OpenVINO); default: the best present",
    )
    run.add_argument("--camera", default="default", help="camera name in outputs (default 'default')")
    run.add_argument("--min-score", type=_score, help="drop boxes scoring below this (0..1)")
    run.add_argument("--only", help="keep only these labels, comma-separated (e.g. person,car)")
    run.add_argument("--stride", type=_positive_int, help="process every Nth frame")
    run.add_argument("--fps", type=float, help="process at most F frames per second")
    run.add_argument("--max-frames", type=_positive_int, help="stop after N processed frames")
    run.add_argument("--realtime", action="store_true", help="pace a file at its own frame rate, like a camera")
    run.add_argument("--loop", action="store_true", help="replay a file when it ends")
    run.add_argument("--open-timeout", type=float, help="seconds a stream may take to open (default 10)")
    _add_outputs(run)
    run.add_argument("--serve", metavar="[HOST:]PORT", help="serve the live page (default host 127.0.0.1)")
    run.add_argument("--instance", help="this edgewatch's name on a shared MQTT broker (default: the host name)")
    run.add_argument("--mqtt", help="publish stats and events: HOST[:PORT] of a broker, or 'embedded' (docs/mqtt.md)")
    run.add_argument("--pipe", action="store_true", help="write annotated frames as raw bgr24 to stdout")
    run.add_argument("--show", action="store_true", help="show annotated frames in a window (Esc quits)")

    bench = add_command("bench", help="measure detectors on this machine").add_subparsers(
        dest="bench", required=True, metavar="WHAT", parser_class=_Parser
    )
    models = bench.add_parser(
        "models", parents=[common], help="load time, latency, throughput, pre/post cost of detectors"
    )
    models.add_argument("--model", action="append", default=[], help="a model file (.onnx, .xml); repeat for more")
    models.add_argument("--detector", action="append", default=[], help="a built-in detector; repeat for more")
    _option(models, "--device", "--openvino", action="append", default=None, metavar="DEVICE",
            help="OpenVINO devices to run model files on, as openvino:GPU or GPU (default AUTO when installed); "
            "repeat for more")  # fmt: skip
    models.add_argument("--source", help="frames to measure on (default: the bikes.mp4 sample)")
    models.add_argument("--size", help="resize frames to WxH first, e.g. 1280x720")
    models.add_argument("--frames", type=_positive_int, default=20, help="frames to use (default 20)")
    models.add_argument("--runs", type=_positive_int, default=3, help="passes over the frames (default 3)")
    models.add_argument("--markdown", action="store_true", help="print a markdown table")
    _option(models, "--results", "--json", "--csv", type=Path, action="append", default=[],
            help="write the results to FILE.json or FILE.csv; repeat for both")  # fmt: skip

    offload = bench.add_parser(
        "offload", parents=[common],
        help="a small model on the device against a big one on a server, over emulated 4G/5G links (docs/offload.md)",
    )  # fmt: skip
    offload.add_argument("--local", required=True, action="append", metavar="DETECTOR|FILE",
                         help="the device's model: a built-in detector or a model file; repeat for more")  # fmt: skip
    offload.add_argument("--remote", required=True, metavar="DETECTOR|FILE|remote://HOST:PORT",
                         help="the server's model, served here on loopback; or a running server's address")  # fmt: skip
    offload.add_argument("--local-labels", metavar="FILE", help="class names of --local model files that hold none")
    offload.add_argument("--remote-labels", metavar="FILE", help="class names of a --remote model file that holds none")
    offload.add_argument("--source", default=OFFLOAD_SOURCE,
                         help=f"the camera's frames, at their own frame rate (default {OFFLOAD_SOURCE})")  # fmt: skip
    offload.add_argument("--seconds", type=float, default=10.0, help="seconds of the source to play (default 10)")
    offload.add_argument("--profiles", default=OFFLOAD_PROFILES, metavar="LINK,...",
                         help="link profiles (docs/links.md), custom ones as up=MBIT,down=MBIT,delay=MS,jitter=MS,"
                         f"loss=FRACTION, and none for no emulated link (default {OFFLOAD_PROFILES})")  # fmt: skip
    offload.add_argument("--send-less", default="auto", metavar="auto|THRESHOLD|off",
                         help="also measure each link sending less: min_change auto or a threshold (default auto)")  # fmt: skip
    offload.add_argument("--seed", type=int, default=0, help="the links' random jitter and loss (default 0)")
    offload.add_argument("--markdown", action="store_true", help="print a markdown table")
    offload.add_argument("--results", type=Path, help="write the results to FILE.json")
    offload.add_argument("--plot", type=Path, help="draw F1 against latency and the uplink to FILE.png")

    demo = add_command(
        "demo", help="count people in a real street video, live on a page, with embedded defaults (Ctrl-C stops)"
    )
    _add_outputs(demo, folder=True)
    demo.add_argument("--max-frames", type=_positive_int, help="stop the video after N frames (default: loop)")
    _option(demo, "--serve", "--port", default="8080", metavar="[127.0.0.1:]PORT",
            help="serve the page on this port of 127.0.0.1 (default 8080; 0: any free port)")  # fmt: skip

    data = add_command("data", help="datasets: convert, split, sample frames worth labelling (docs/data.md)")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    add_data_command = functools.partial(data_commands.add_parser, parents=[common])
    formats = ("voc", "csv", "sagemaker", "coco", "yolo")
    convert = add_data_command("convert", help="convert a labelled dataset to another format")
    convert.add_argument("--from", dest="source_format", required=True, choices=formats)
    convert.add_argument("--to", dest="target_format", required=True, choices=formats)
    convert.add_argument("source", type=Path)
    convert.add_argument("target", type=Path)
    split = add_data_command("split", help="split a labelled dataset into train / validation (/ test)")
    split.add_argument("source", type=Path)
    split.add_argument("target", type=Path)
    split.add_argument("--ratios", default="0.8,0.2", help="train,validation[,test] (default 0.8,0.2)")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--from", dest="source_format", default="voc", choices=formats)
    split.add_argument("--to", dest="target_format", default="sagemaker", choices=formats)
    for command in (convert, split):
        command.add_argument("--images", type=Path, help="where the images are, when not beside the labels")
        command.add_argument("--classes", type=Path, help="class names, one a line: fixes the ids")
        command.add_argument("--force", action="store_true", help="replace an output folder that is not empty")
        command.add_argument(
            "--allow-outside-images", action="store_true",
            help="read images an annotation names outside the dataset's image folders (../x.jpg, /abs/x.jpg)",
        )  # fmt: skip

    sample = add_data_command("sample", help="choose frames worth labelling from a video or stream")
    sample.add_argument("source", help="video file, image folder, camera index, stream URL or synthetic:SCENE")
    sample.add_argument("target", type=Path, help="output folder: images/, draft annotations, manifest.json")
    sample.add_argument("--budget", type=_positive_int, required=True, help="how many frames to keep")
    sample.add_argument(
        "--by", choices=("time", "diverse", "motion", "surprise"), default="diverse",
        help="time: evenly spaced; diverse: unlike every kept frame; motion: most change; "
        "surprise: unsure or flipping predictions (needs a model) (default diverse)",
    )  # fmt: skip
    sample.add_argument("--detector", help=f"built-in model for drafts / surprise: {', '.join(BUILTIN_DETECTORS)}")
    sample.add_argument("--model", help="an .onnx model file for drafts / surprise")
    sample.add_argument("--to", dest="target_format", default="voc", choices=formats, help="drafts' format")
    sample.add_argument("--max-frames", type=_positive_int, help="read at most N frames of the source")
    sample.add_argument("--seed", type=int, default=0, help="ties are broken the same way for the same seed")
    sample.add_argument("--force", action="store_true", help="replace an output folder that is not empty")

    review = add_command("review", help="review and correct labels in the browser (docs/data.md)")
    review.add_argument("folder", type=Path, help="a dataset folder: sampled, captured or labelled")
    _option(review, "--from", "--format", dest="source_format", choices=formats,
            help="the folder's dataset format (default: guessed)")  # fmt: skip
    review.add_argument("--to", dest="target_format", choices=formats, help="save in this format (default: --from)")
    _option(review, "--serve", "--port", default="8081", metavar="[127.0.0.1:]PORT",
            help="serve the page on this port of 127.0.0.1 (default 8081; 0: any free port)")  # fmt: skip

    evaluation = add_command("eval", help="score a detector or classifier against labelled images (docs/evaluation.md)")
    evaluation.add_argument("--truth", type=Path, help="the labelled dataset, or a folder of class folders")
    evaluation.add_argument(
        "--pred", type=Path, help="edgewatch run --json lines, COCO results JSON, or a dataset with scores"
    )
    evaluation.add_argument("--model", help="run this model (.onnx, .xml, or a built-in) on the truth images instead")
    _option(evaluation, "--from", "--format", dest="source_format", choices=formats,
            help="the truth's dataset format (default: guessed)")  # fmt: skip
    evaluation.add_argument("--iou", type=float, default=0.5, help="overlap that makes a match (default 0.5)")
    _option(evaluation, "--min-score", "--score", type=_score,
            help="boxes scoring below this do not count in the table (default: the --model's own "
                 "min_score where it records one, else 0.3)")  # fmt: skip
    _option(evaluation, "--results", "--json", type=Path, help="write every figure to FILE.json")
    evaluation.add_argument("--pr-curve", type=Path, help="write the precision-recall curves as PNG")
    evaluation.add_argument("--compare", type=Path, nargs="+", help="summarise several --results files instead")

    outbox = add_command("outbox", help="MQTT events waiting in a storage folder, per broker; drop a queue")
    outbox.add_argument(
        "--storage", default=StorageConfig().path, help="the run's storage.path (default ./edgewatch-data)"
    )
    outbox.add_argument(
        "--drop", nargs="?", const="all", metavar="BROKER",
        help="drop BROKER's queue, as listed (HOST:PORT[/PREFIX], embedded, unknown); alone: every queue",
    )  # fmt: skip

    synth = add_command("synth", help="write a synthetic scene as a video and its ground truth (street, pets, door)")
    synth.add_argument("scene", choices=("street", "pets", "door"))
    _option(synth, "--out", "--out-dir", type=Path, default=Path("."), help="folder to write to (default: here)")
    synth.add_argument("--seed", type=int, default=0, help="the same seed gives the same scene")
    synth.add_argument("--seconds", type=float, help="length (default: the scene's own)")
    synth.add_argument(
        "--dataset", type=Path, metavar="FOLDER",
        help="write labelled frames instead: a dataset (street, pets) or a folder per class (door)",
    )  # fmt: skip
    synth.add_argument("--scenes", type=_positive_int, default=8, help="--dataset: scenes of seeds SEED, SEED+1, ...")
    synth.add_argument("--frames", type=_positive_int, default=25, help="--dataset: frames per scene, evenly spread")
    synth.add_argument("--to", dest="target_format", default="yolo", choices=formats, help="--dataset: its format")
    synth.add_argument("--force", action="store_true", help="--dataset: replace a folder that is not empty")

    serve = add_command(
        "serve", help="serve a model to edge pipelines (run --detector remote://HOST:PORT) over WebSocket; "
        "Ctrl-C stops (docs/offload.md)",
    )  # fmt: skip
    serve.add_argument("--model", help="a model file, as run --model takes (see docs/models.md)")
    serve.add_argument("--detector", help=f"or a built-in detector: {', '.join(BUILTIN_DETECTORS)}")
    serve.add_argument("--format", help="--model: the output layout, when guessing from its shapes is not enough")
    serve.add_argument("--labels", help="--model: its class names, txt (one a line), yaml or json")
    serve.add_argument("--device", help="--model: what runs it, as run --device (default: the best present)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1); any other needs a token"
    )
    serve.add_argument(
        "--port", type=int, default=OFFLOAD_PORT, help=f"port to serve on (default {OFFLOAD_PORT}; 0: any free port)"
    )
    serve.add_argument(
        "--token", help="clients must send it (Authorization: Bearer, or ?token=); default: EDGEWATCH_TOKEN"
    )
    serve.add_argument("--hosts", help="other names clients reach this server by (a DNS name), comma-separated")
    serve.add_argument(
        "--max-clients", type=_positive_int, default=32, help="clients served at once, --rtp streams too (default 32)"
    )
    serve.add_argument(
        "--rtp", action="append", default=[], metavar="[NAME=]PORT",
        help="also receive H.264 over RTP on this UDP port (0: any free one), answers at /v1/streams/NAME "
        "(NAME: the port unless given); repeat or comma-separate for more",
    )  # fmt: skip
    serve.add_argument(
        "--rtp-payload", type=int, default=96, metavar="PT",
        help="--rtp: the RTP payload type of the H.264 packets (default 96, as rtph264pay sends)",
    )  # fmt: skip
    serve.add_argument("--mqtt", metavar="HOST[:PORT]|embedded",
                       help="--rtp: also publish each stream's answers to <prefix>/<instance>/<stream>/detections "
                       "(QoS 0; docs/mqtt.md)")  # fmt: skip
    serve.add_argument("--instance", help="--mqtt: this server's name on the broker (default: the host name)")

    link = add_command(
        "link", help="emulate a network link (4G, 5G, Wi-Fi) on loopback: a TCP relay with a rate, delay, jitter "
        "and loss each way; Ctrl-C stops (docs/links.md)",
    )  # fmt: skip
    link.add_argument(
        "--profile", required=True, metavar="SPEC",
        help="ethernet, wifi, lte, poor-lte, 5g-low, 5g-mmwave, or figures: up=MBIT,down=MBIT[,delay=MS,jitter=MS,"
        "loss=FRACTION]",
    )  # fmt: skip
    link.add_argument("--target", required=True, metavar="HOST:PORT", help="where each connection is relayed to")
    link.add_argument(
        "--listen", default="0", metavar="[HOST:]PORT", help="where clients connect (default: any free port of "
        "127.0.0.1; the printed line says which)",
    )  # fmt: skip
    link.add_argument("--seed", type=int, default=0, help="the same seed gives the same jitter and losses")

    _add_train_commands(add_command, common, formats)
    return parser


def _add_train_commands(
    add_command: functools.partial, common: argparse.ArgumentParser, formats: tuple[str, ...]
) -> None:
    train = add_command("train", help="train, distil, sweep and quantise models (docs/training.md; the train extra)")
    train_commands = train.add_subparsers(dest="train_command", required=True, metavar="WHAT", parser_class=_Parser)
    for kind, data_help in (
        ("classifier", "a folder per class, or a dataset whose images each hold one class"),
        ("detector", "a dataset in any format (a `data split` folder keeps its split), or unlabelled frames with --teacher"),
    ):  # fmt: skip
        command = train_commands.add_parser(kind, parents=[common], help=f"train a {kind} and export it to ONNX")
        command.add_argument("data", type=Path, help=data_help)
        command.add_argument(
            "--out", type=Path,
            help=f"the run's folder (default runs/{kind}); one that holds something gets the next free NAME-2, NAME-3",
        )  # fmt: skip
        command.add_argument(
            "--from", dest="source_format", choices=formats, help="the dataset's format (default: guessed)"
        )
        command.add_argument(
            "--val-split", type=float, help="validation share of a dataset that has no split (default 0.2)"
        )
        command.add_argument(
            "--epochs", type=_positive_int, help="passes over the training images (most; early stopping may end sooner)"
        )
        command.add_argument("--batch", type=_positive_int, help="images per step")
        command.add_argument(
            "--size", type=_positive_int, help="input width in pixels; the height follows the images' shape"
        )
        command.add_argument("--model-size", choices=("n", "s", "m"), help="network width: n(ano), s(mall), m(edium)")
        command.add_argument("--lr", type=float, help="peak learning rate")
        command.add_argument(
            "--patience", type=_positive_int, help="epochs without a better validation score before stopping"
        )
        command.add_argument("--seed", type=int, help="the same seed, data and settings give the same model")
        command.add_argument("--device", help="cpu or cuda (default: cuda when present)")
        command.add_argument("--teacher", help="a model `run` loads (file or built-in) that labels the images instead")
        command.add_argument("--teacher-labels", help="the teacher's class names file, when it has none of its own")
        command.add_argument(
            "--teacher-min-score",
            type=_score,
            help="the teacher's boxes scoring below this are not objects (default 0.3)",
        )
        command.add_argument(
            "--sweep", nargs="+", metavar="KEY=V1,V2", help="train every combination, e.g. batch=8,16 size=320,512"
        )
    quantize = train_commands.add_parser(
        "quantize", parents=[common], help="INT8 post-training quantisation of an ONNX model"
    )
    quantize.add_argument("model", type=Path, help="the FP32 .onnx model")
    quantize.add_argument(
        "--calib",
        type=Path,
        required=True,
        help="calibration frames: an image folder or a dataset (labelled: AP / accuracy before and after)",
    )
    quantize.add_argument("--out", type=Path, help="the INT8 model (default MODEL.int8.onnx beside it)")
    quantize.add_argument(
        "--frames", type=_positive_int, default=100, help="calibration frames to use at most (default 100)"
    )


def _add_outputs(command: argparse.ArgumentParser, folder: bool = False) -> None:
    if folder:
        _option(command, "--out", "--out-dir", type=Path, default=Path("edgewatch-demo"),
                help="folder to write to (default ./edgewatch-demo)")  # fmt: skip
    else:
        command.add_argument("--out", help="annotated video (.mp4 .mkv .mov .avi), image (.jpg .png) or folder/")
        command.add_argument("--json", type=Path, help="per-frame JSON lines file")
        command.add_argument("--events", type=Path, help="events JSON lines file (objects, crossings, incidents)")


def _config_from_flags(args: argparse.Namespace) -> Config:
    camera = {
        "source": args.source,
        "detector": args.detector,
        "fps": args.fps,
        "stride": args.stride or 1,
        "min_score": args.min_score,
        "labels": [label.strip() for label in args.only.split(",") if label.strip()] if args.only else None,
        "realtime": args.realtime,
        "loop": args.loop,
    }
    if args.open_timeout is not None:
        camera["open_timeout"] = args.open_timeout
    detectors = {}
    if args.model is not None:
        if args.detector is not None:
            raise EdgewatchError(
                "give --detector or --model, not both", "--model runs a model file instead of a built-in"
            )
        detectors["model"] = {
            "type": runtime_for(args.model, args.device),
            "path": args.model,
            "format": args.format,
            "labels": args.labels,
            "device": args.device,
        }
        camera["detector"] = "model"
    elif args.format or args.labels or args.device:
        raise EdgewatchError("--format, --labels and --device describe a model", "add --model FILE")
    try:
        return Config(cameras={args.camera: CameraConfig(**camera)}, detectors=detectors)
    except ValueError as error:
        raise EdgewatchError(f"bad option {_first_error(error)}", "see edgewatch run --help") from None


def _mqtt_flag(value: str, configured: MqttConfig | None) -> MqttConfig:
    """`--mqtt embedded`, `--mqtt HOST` or `--mqtt HOST:PORT`, over the config's other mqtt settings."""
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    if not port.isdigit() and port:
        raise EdgewatchError(f"bad --mqtt {value}: the port must be a number", "use HOST, HOST:PORT or embedded")
    changes: dict[str, object] = {"host": host or value}
    if port:
        changes["port"] = int(port)
    return _revalidated(configured or MqttConfig(), changes, f"--mqtt {value}")


def _serve_flag(value: str, configured: DashboardConfig | None) -> DashboardConfig:
    """`--serve PORT` or `--serve HOST:PORT`, over the config's other dashboard settings."""
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise EdgewatchError(f"bad --serve {value}: the port must be a number", "use PORT or HOST:PORT, e.g. 8080")
    changes: dict[str, object] = {"port": int(port)}
    if host:
        changes["host"] = host
    return _revalidated(configured or DashboardConfig(), changes, f"--serve {value}")


def _loopback_serve_flag(value: str, default: DashboardConfig) -> DashboardConfig:
    """`--serve` of the demo and the review page: a port, on loopback only (they have no token)."""
    dashboard = _serve_flag(value, default)
    if dashboard.host != "127.0.0.1":
        raise EdgewatchError(
            f"--serve {value}: this page is served on 127.0.0.1 only", "give the port alone, or use edgewatch run"
        )
    return dashboard


def _revalidated(configured: ConfigModel, changes: dict[str, object], flag: str) -> ConfigModel:
    """The config section with a flag's values, checked as the config file's would be (a port of 99999
    is refused here as it is there)."""
    try:
        return type(configured).model_validate({**configured.model_dump(), **changes})
    except ValueError as error:
        raise EdgewatchError(f"bad {flag}: {_first_error(error)}", "see edgewatch run --help") from None


def _first_error(error: ValueError) -> str:
    """`where: what` of a pydantic validation error's first complaint."""
    first = error.errors()[0] if hasattr(error, "errors") else {"msg": str(error), "loc": ()}
    cause = first.get("ctx", {}).get("error")  # a cross-field error knows its key (config._FieldError)
    where = ".".join(str(part) for part in (*first["loc"], *getattr(cause, "location", ())))
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def _run(args: argparse.Namespace) -> int:
    if args.config is not None and args.source is not None:
        raise EdgewatchError("give a config file or --source, not both", "put the source in the config")
    if args.config is None and args.source is None:
        raise EdgewatchError("nothing to run", "name a config file, or a --source")
    config = load_config(args.config) if args.config is not None else _config_from_flags(args)
    if args.mqtt is not None:
        config = config.model_copy(update={"mqtt": _mqtt_flag(args.mqtt, config.mqtt)})
    if args.serve is not None:
        config = config.model_copy(update={"dashboard": _serve_flag(args.serve, config.dashboard)})
    if args.instance is not None:
        config = _revalidated(config, {"instance": args.instance}, f"--instance {args.instance}")
    outputs = Outputs(
        video=args.out,
        json=args.json,
        events=args.events,
        store=args.config is not None or args.serve is not None,  # else a --source run leaves no ./edgewatch-data
        pipe=args.pipe,
        show=args.show,
        progress=not args.quiet,
        max_frames=args.max_frames,
    )
    return run_config(config, outputs, inputs=(args.config,) if args.config else ()).exit_code


def _bench_offload(args: argparse.Namespace) -> int:
    import importlib.util

    from edgewatch.bench import offload as bench
    from edgewatch.offload.address import is_remote
    from edgewatch.offload.link import link_profile
    from edgewatch.sinks.files import make_parent, refuse_outputs_over_inputs
    from edgewatch.sources import open_source

    for flag, path, suffix in (("--results", args.results, ".json"), ("--plot", args.plot, ".png")):
        if path is not None and path.suffix.lower() != suffix:
            raise EdgewatchError(f"{flag} {path}: the name must end in {suffix}", f"e.g. {flag} offload{suffix}")
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise EdgewatchError("--plot needs matplotlib, which is not installed", "pip install matplotlib")
    if not args.seconds > 0:
        raise EdgewatchError(f"--seconds {args.seconds:g}: play at least a moment", "e.g. --seconds 10")
    names = [name.strip() for name in args.profiles.split(",") if name.strip()]
    profiles = [None if name == bench.NO_LINK else link_profile(name) for name in names]
    if not profiles:
        raise EdgewatchError("--profiles names no link", f"e.g. --profiles {OFFLOAD_PROFILES}")
    send_less = [bench.OFF]
    if args.send_less != bench.OFF:
        bench.send_less_options(args.send_less)  # refused now, not after the minutes of the first rows
        send_less.append(args.send_less)
    outputs = [("--results", args.results), ("--plot", args.plot)]
    refuse_outputs_over_inputs(outputs, [args.source, *args.local, args.remote])
    for flag, path in outputs:
        if path is not None:
            make_parent(path, flag)
    for spec in args.local:
        bench.check_named(spec)
    if not is_remote(args.remote):
        bench.check_named(args.remote)
    with open_source(args.source) as source:
        fps = source.info.fps or bench.DEFAULT_FPS
        frames = []
        while len(frames) < round(args.seconds * fps) and (picture := source.read()) is not None:
            frames.append(picture.image)
    if not frames:
        raise EdgewatchError(f"{args.source} gave no frames", "give a video, a camera or a folder of images")
    with contextlib.ExitStack() as stack:
        local = []
        for spec in args.local:
            local.append((Path(spec).name, bench.load_named(spec, args.local_labels)))
            stack.callback(local[-1][1].close)
        if is_remote(args.remote):
            url = args.remote
        else:
            served = bench.load_named(args.remote, args.remote_labels)
            stack.callback(served.close)
            host, port = stack.enter_context(bench.served(served, Path(args.remote).name))
            url = f"ws://{host}:{port}/v1/detect"
        results = bench.measure(frames, fps, local, url, profiles, send_less, args.seed,
                                say=lambda what: log.info("bench offload: %s", what))  # fmt: skip
    height, width = frames[0].shape[:2]
    print(f"{len(frames)} frames of {width}x{height} at {fps:g} fps; {os.cpu_count()} CPUs")
    print(bench.table(results, markdown=args.markdown))
    for link, where in bench.verdicts(results).items():
        print(f"{link}: {'offloading wins' if where == 'server' else 'the device wins'}")
    about = {"source": args.source, "frames": len(frames), "fps": fps, "size": [width, height],
             "cpus": os.cpu_count(), "command": "edgewatch " + " ".join(sys.argv[1:])}  # fmt: skip
    if args.results is not None:
        bench.write_json(results, about, args.results)
    if args.plot is not None:
        bench.write_png(results, f"{', '.join(args.local)} on the device against {args.remote} on a server", args.plot)
    return 0


def _bench(args: argparse.Namespace) -> int:
    return _bench_offload(args) if args.bench == "offload" else _bench_models(args)


def _bench_models(args: argparse.Namespace) -> int:
    import importlib.util

    from edgewatch.bench import models as bench
    from edgewatch.models import BUILTIN_DETECTORS
    from edgewatch.models.runtimes import openvino_device
    from edgewatch.sources import open_source

    writers = {".json": bench.write_json, ".csv": bench.write_csv}
    for path in args.results:  # said before the minutes of measuring
        if path.suffix.lower() not in writers:
            raise EdgewatchError(f"--results {path}: the name must end in .json or .csv", "e.g. --results bench.json")
    detectors = args.detector or ([] if args.model else list(BUILTIN_DETECTORS))
    devices = [openvino_device(device) for device in args.device or []]
    if args.device is None and importlib.util.find_spec("openvino"):
        devices = ["AUTO"]
    frames = []
    with open_source(args.source or sample_video("bikes.mp4")) as source:
        while len(frames) < args.frames and (picture := source.read()) is not None:
            frames.append(picture.image)
    if args.size:
        try:
            width, height = (int(side) for side in args.size.lower().split("x"))
        except ValueError:
            raise EdgewatchError(f"--size {args.size} is not WxH", "write it like 1280x720") from None
        frames = [cv2.resize(frame, (width, height)) for frame in frames]
    candidates = bench.candidates(args.model, detectors, devices)
    results = [
        bench.measure(candidate, frames, args.runs)
        for candidate in with_progress(candidates, len(candidates), "bench", "model")
    ]
    height, width = frames[0].shape[:2]
    print(f"{len(frames)} frames of {width}x{height}, {args.runs} runs each; {os.cpu_count()} CPUs")
    print(bench.table(results, markdown=args.markdown))
    for path in args.results:
        writers[path.suffix.lower()](results, path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    video = args.out / "annotated.mp4"
    lines = args.out / "detections.jsonl"
    events = args.out / "events.jsonl"
    camera = CameraConfig(
        source=str(sample_video("bikes.mp4")),
        detector="hog",
        realtime=True,  # a camera's pace, so the page shows it as it happens
        loop=args.max_frames is None,
        lines={"middle": LineConfig(points=((0.5, 0.0), (0.5, 1.0)))},
    )
    outputs = Outputs(
        video=video,
        json=lines,
        events=events,
        store=True,
        progress=not args.quiet,
        max_frames=args.max_frames,
    )
    config = Config(
        instance=f"{default_instance()}-demo",  # a run on the same host keeps its own topics and availability
        cameras={"demo": camera},
        mqtt=MqttConfig(host="embedded", port=0),  # a free port: 1883 may be a real broker's
        storage=StorageConfig(path=str(args.out / "data")),
        dashboard=_loopback_serve_flag(args.serve, DashboardConfig(host="127.0.0.1", port=8080)),
    )
    result = run_config(
        config, outputs, port_option="--serve",
        on_serving=lambda url: print(f"edgewatch demo: open {url} — Ctrl-C stops", flush=True),
    )  # fmt: skip
    frames = sum(item.frames for item in result.stats)
    print(f"edgewatch demo: {frames} frames of bikes.mp4 with the HOG people detector")
    print(f"  annotated video: {video}")
    print(f"  JSON lines:      {lines}")
    print(f"  events:          {events} (also published over MQTT and kept in {args.out / 'data'})")
    return EXIT_OK if result.exit_code == EXIT_INTERRUPTED else result.exit_code  # Ctrl-C is how it ends


def _data(args: argparse.Namespace) -> int:
    from edgewatch.data.convert import convert, split

    if args.data_command == "sample":
        from edgewatch.data.sample import sample

        result = sample(
            args.source, args.target, budget=args.budget, by=args.by, detector=args.detector, model=args.model,
            format=args.target_format, max_frames=args.max_frames, seed=args.seed, force=args.force,
        )  # fmt: skip
        print(result.summary())
        return 0

    common = {
        "images": args.images, "classes": args.classes, "force": args.force,
        "allow_outside_images": args.allow_outside_images,
    }  # fmt: skip
    if args.data_command == "convert":
        report = convert(args.source_format, args.target_format, args.source, args.target, **common)
    else:
        try:
            ratios = tuple(float(part) for part in args.ratios.split(","))
        except ValueError:
            raise EdgewatchError(f"bad --ratios {args.ratios}", "give two or three numbers, e.g. 0.8,0.2") from None
        report = split(
            args.source, args.target, ratios, seed=args.seed, source_format=args.source_format,
            target_format=args.target_format, **common,
        )  # fmt: skip
    print(report.summary())
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    return 1 if report.skipped else 0  # something was left out: say so to scripts too


def _eval(args: argparse.Namespace) -> int:
    from edgewatch import evaluate as ev

    if args.compare:
        print(ev.compare(args.compare))
        return 0
    if args.truth is None or (args.pred is None) == (args.model is None):
        raise EdgewatchError("eval needs --truth, and --pred or --model", "or --compare a.json b.json ...")
    # the outputs are checked before the run, which may take minutes, and written whole after it
    results = StagedFile(args.results, "--results") if args.results is not None else None
    if args.pr_curve is not None:
        StagedFile(args.pr_curve, "--pr-curve").discard()
    try:
        return _eval_run(args, results)
    finally:
        if results is not None:
            results.discard()  # a no-op once committed


def _eval_run(args: argparse.Namespace, results: StagedFile | None) -> int:
    import json

    from edgewatch import evaluate as ev

    if ev.is_class_folders(args.truth):
        classes, labels, images = ev.load_class_folders(args.truth)
        if args.model is not None:
            predicted = ev.predict_labels(ev.load_model(args.model), images.values())
        else:
            predicted = ev.read_run_classifications(args.pred)
        result = ev.evaluate_classifier(labels, predicted, classes)
        print(ev.classifier_table(result))
        if results is not None:
            results.write(json.dumps(result, indent=1).encode())
            results.commit()
        return 0
    dataset = ev.load_truth_dataset(args.truth, args.source_format)
    classes, truth = list(dataset.classes), ev.by_file_name(dataset)
    detector = ev.load_model(args.model) if args.model is not None else None
    if detector is not None:
        predictions = ev.predict_boxes(detector, dataset.image_paths, classes)
    else:
        folders = {Path(image).parent for image in dataset.image_paths}
        images = folders.pop() if len(folders) == 1 else None
        predictions = ev.read_predictions(args.pred, classes, truth=args.truth, truth_images=images)
    result = ev.evaluate(truth, predictions, classes, iou=args.iou, score=ev.table_score(detector, args.min_score))
    print(result.table())
    if results is not None:
        results.write(json.dumps(result.to_json(), indent=1).encode())
        results.commit()
    if args.pr_curve is not None:
        ev.pr_curve_png(result, args.pr_curve)
    return 0


def _review(args: argparse.Namespace) -> int:
    from edgewatch.web.review import serve_review

    port = _loopback_serve_flag(args.serve, DashboardConfig(host="127.0.0.1", port=8081)).port
    return serve_review(args.folder, format=args.source_format, target_format=args.target_format, port=port)


def _synth(args: argparse.Namespace) -> int:
    from edgewatch.sources.synthetic_export import write_scene

    if args.seconds is not None and not args.seconds > 0:
        raise EdgewatchError(f"--seconds {args.seconds}: a scene lasts more than 0 s", "give a positive length")
    if args.dataset is not None:
        from edgewatch.sources.synthetic_dataset import write_dataset

        report = write_dataset(
            args.scene, args.dataset, seed=args.seed, scenes=args.scenes, frames=args.frames,
            format=args.target_format, seconds=args.seconds, force=args.force,
        )  # fmt: skip
        print(f"edgewatch synth: {args.scene} dataset in {args.dataset}: {report.summary()}")
        return 0
    video, truth = write_scene(args.scene, args.out, seed=args.seed, seconds=args.seconds)
    print(f"edgewatch synth: {args.scene} scene, seed {args.seed}")
    print(f"  video:        {video}")
    print(f"  ground truth: {truth}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from edgewatch.models import check_model_file, load_detector
    from edgewatch.offload.address import is_remote
    from edgewatch.offload.rtp import bind_udp, parse_rtp
    from edgewatch.offload.server import serve, server_token
    from edgewatch.web.server import bind

    if (args.model is None) == (args.detector is None):
        problem = "serve needs a model" if args.model is None else "give --model or --detector, not both"
        raise EdgewatchError(problem, "--model FILE for a model file, or --detector NAME for a built-in one")
    if args.detector is not None:
        if is_remote(args.detector):
            raise EdgewatchError(
                f"--detector {args.detector}: a server runs its model itself", "name a built-in detector or a --model"
            )
        if args.detector not in BUILTIN_DETECTORS:
            raise EdgewatchError(f"unknown detector '{args.detector}'", f"use one of {', '.join(BUILTIN_DETECTORS)}")
        if args.format or args.labels or args.device:
            raise EdgewatchError("--format, --labels and --device describe a model", "add --model FILE")
    else:
        check_model_file(args.model)
    token = server_token(args.host, args.token)
    hosts = [name.strip() for name in (args.hosts or "").split(",") if name.strip()]
    rtp = parse_rtp(args.rtp)
    if not 0 <= args.rtp_payload <= 127:
        raise EdgewatchError(f"--rtp-payload {args.rtp_payload}: an RTP payload type is 0 to 127",
                             "rtph264pay sends 96 unless its pt= says otherwise")  # fmt: skip
    if len(rtp) > args.max_clients:
        raise EdgewatchError(f"{len(rtp)} --rtp streams and --max-clients {args.max_clients}",
                             "each stream takes one of --max-clients: raise it")  # fmt: skip
    if args.mqtt is not None and not rtp:
        raise EdgewatchError(
            "--mqtt publishes the answers of --rtp streams", "add --rtp [NAME=]PORT, or leave --mqtt out"
        )
    if args.instance is not None and args.mqtt is None:
        raise EdgewatchError("--instance names this server on an MQTT broker", "add --mqtt HOST[:PORT]")
    mqtt = _mqtt_flag(args.mqtt, None) if args.mqtt is not None else None
    with contextlib.ExitStack() as bound_here:  # taken ports are said before the model loads
        bound = bound_here.enter_context(bind(args.host, args.port, "--port"))
        streams = []
        for stream in rtp:
            sock = bound_here.enter_context(bind_udp(args.host, stream.port))
            streams.append((stream.name or str(sock.getsockname()[1]), sock))
        publish = _stream_publisher(mqtt, args.instance, bound_here) if mqtt is not None else None
        if args.detector is not None:
            detector, model = load_detector(args.detector), args.detector
        else:
            detector = load_detector(runtime_for(args.model, args.device), path=args.model, format=args.format,
                                     labels=args.labels, device=args.device)  # fmt: skip
            model = Path(args.model).name
        try:
            return serve(
                detector, model, bound, args.host, token, hosts=hosts, max_clients=args.max_clients,
                on_serving=lambda url: print(f"serving {model} on {url}", flush=True), streams=streams,
                payload_type=args.rtp_payload,
                on_stream=lambda name, address: print(f"rtp stream {name} on {address}", flush=True),
                publish=publish,
            )  # fmt: skip
        finally:
            detector.close()


def _stream_publisher(
    mqtt: MqttConfig, instance: str | None, resources: contextlib.ExitStack
) -> Callable[[str, dict[str, Any]], None]:
    """`serve --mqtt`: each RTP stream's answers to `<prefix>/<instance>/<stream>/detections` (QoS 0: a
    late frame's boxes are worth nothing, so none wait for a broker that is away)."""
    from edgewatch.sinks.broker import EmbeddedBroker
    from edgewatch.sinks.mqtt import MqttPublisher
    from edgewatch.sinks.outbox import Outbox

    host, port = mqtt.host, mqtt.port
    if host == "embedded":
        broker = resources.enter_context(EmbeddedBroker("127.0.0.1", port))
        host, port = broker.host, broker.port
    publisher = MqttPublisher(mqtt, Outbox(":memory:"), host=host, port=port, instance=instance).start()
    resources.callback(publisher.close)
    return lambda stream, answer: publisher.live(stream, "detections", json.dumps(answer))


def _link(args: argparse.Namespace) -> int:
    from edgewatch.offload.link import LinkRelay, link_address, link_profile, relay_until_stopped

    profile = link_profile(args.profile)
    target = link_address(args.target, "--target")
    relay = LinkRelay(profile, target, link_address(args.listen, "--listen", listening=True), seed=args.seed)
    return relay_until_stopped(
        relay,
        on_start=lambda relay: print(f"relaying {relay.host}:{relay.port} -> {target[0]}:{target[1]} as "
                                     f"{profile.name}: {profile.summary()}", flush=True),
        on_stop=lambda relay: print(f"relayed {relay.up_bytes} bytes up, {relay.down_bytes} bytes down, "
                                    f"{relay.lost_packets} of {relay.packets} packets lost", flush=True),
    )  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    from edgewatch.train import commands

    return commands.run(args)


def _setup_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s" if debug else "%(levelname)s: %(message)s"
        )
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if not debug:
        # OpenCV and FFmpeg print their own warnings (stream timeouts, missing devices) that our
        # one-line errors already explain; --debug lets them through.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET; read at first open


def _outbox(args: argparse.Namespace) -> int:
    from edgewatch.sinks.outbox import manage

    print(manage(args.storage, args.drop))
    return 0


COMMANDS = {
    "run": _run, "bench": _bench, "synth": _synth, "eval": _eval, "data": _data, "review": _review,
    "outbox": _outbox, "demo": _demo, "train": _train, "serve": _serve, "link": _link,
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        _setup_logging(args.debug, args.quiet)
        for note in args.renamed:
            log.warning(note)
        with logging_redirect_tqdm():  # log lines go above a progress bar, not into it
            return COMMANDS[args.command](args)
    except EdgewatchError as error:
        if debug:
            log.exception("details")
        print(f"edgewatch: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if debug:
            log.exception("internal error")
        print(
            f"edgewatch: internal error: {type(error).__name__}: {error} (run with --debug and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
