"""Writing a trained network as the ONNX file edgewatch loads like any Ultralytics export."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

OPSET = 17


def export_onnx(
    net: nn.Module,
    input_size: tuple[int, int],
    labels: Sequence[str],
    path: Path,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """ONNX opset 17 with a dynamic batch axis (`images` → `output0`) and the class names in the
    metadata key `names`, as Ultralytics stores them, so `edgewatch run --model` needs no `--labels`;
    `metadata` adds keys (a detector's `min_score`). Written beside `path` and renamed, so a failed
    export leaves an older file whole."""
    import onnx

    width, height = input_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    on_cpu = copy.deepcopy(net).cpu().eval()  # the training copy stays where it is
    try:
        torch.onnx.export(
            on_cpu, (torch.zeros(1, 3, height, width),), str(staging), input_names=["images"],
            output_names=["output0"], opset_version=OPSET, dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
            dynamo=False,
        )  # fmt: skip
        model = onnx.load(str(staging))
        for key, value in {"names": str(dict(enumerate(labels))), **(metadata or {})}.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(staging))
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path
