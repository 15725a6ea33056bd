"""`edgewatch train classifier|detector|quantize`: from parsed arguments to run folders or an INT8 model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edgewatch.errors import EdgewatchError

log = logging.getLogger(__name__)

INSTALL_TRAIN = "pip install 'edgewatch[train]'"
EXIT_INTERRUPTED = 130


def require(*modules: str) -> None:
    """Raise the one-line error naming the extra to install when a module of `modules` is missing."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise EdgewatchError(f"edgewatch train needs {module}, which is not installed", INSTALL_TRAIN) from None


def run(args: argparse.Namespace) -> int:
    if args.train_command == "quantize":
        require("onnx")
        from edgewatch.train.quantize import quantize

        report = quantize(args.model, args.calib, out=args.out, frames=args.frames)
        print(report.summary())
        return 0
    require("torch", "onnx", "matplotlib")
    from edgewatch.train.settings import Settings

    if args.teacher is not None and args.train_command != "detector":
        raise EdgewatchError("--teacher labels boxes: it trains detectors", "use edgewatch train detector --teacher")
    if args.teacher is None and args.teacher_labels is not None:
        raise EdgewatchError("--teacher-labels names a teacher's classes", "add --teacher MODEL")
    settings = Settings.of(
        args.train_command, epochs=args.epochs, batch=args.batch, size=args.size, model_size=args.model_size,
        lr=args.lr, patience=args.patience, seed=args.seed, val_split=args.val_split, device=args.device,
        teacher=args.teacher, teacher_labels=args.teacher_labels, teacher_min_score=args.teacher_min_score,
    )  # fmt: skip
    settings.check()
    if args.sweep:
        return _sweep(args, settings)
    from edgewatch.train.trainer import train_run

    out = args.out or Path("runs") / args.train_command
    result = train_run(args.data, out, settings, format=args.source_format)
    print(result.summary())
    return EXIT_INTERRUPTED if result.interrupted else 0


def _sweep(args: argparse.Namespace, settings: object) -> int:
    from edgewatch.train import runs
    from edgewatch.train.sweep import markdown, parse_sweep, run_name, summary_rows
    from edgewatch.train.trainer import load_teacher, read_data, train_run

    combinations = parse_sweep(args.sweep)
    variants = [settings.varied(changes) for changes in combinations]  # every value checked before any run
    out = args.out or Path("runs") / f"{args.train_command}-sweep"
    runs.check_outside(out, args.data)
    teacher = load_teacher(settings.teacher, settings.teacher_labels) if settings.teacher else None
    read: dict[tuple, object] = {}  # the data read once per input size and split
    folder = None
    done = []
    interrupted = False
    for changes, variant in zip(combinations, variants, strict=True):
        key = (variant.size, variant.seed, variant.val_split)
        if key not in read:
            read[key] = read_data(args.data, variant, args.source_format, teacher)
        folder = folder or runs.new_run_folder(out)
        log.info("sweep run %d of %d: %s", len(done) + 1, len(variants), run_name(changes))
        result = train_run(args.data, folder / run_name(changes), variant, prepared=read[key], teacher=teacher)
        done.append({"changes": changes, "score": result.best_score, "seconds": round(result.seconds, 1),
                     "folder": str(result.folder), "evaluation": result.evaluation})  # fmt: skip
        if result.interrupted:
            interrupted = True
            break
    metric = "accuracy" if args.train_command == "classifier" else "ap50"
    rows = summary_rows(done, metric)
    table = markdown(rows)
    runs.write_json(folder / "sweep.json", rows)
    runs.write_text(folder / "sweep.md", table)
    print(table)
    print(f"sweep folder: {folder} (sweep.md, sweep.json)")
    return EXIT_INTERRUPTED if interrupted else 0
