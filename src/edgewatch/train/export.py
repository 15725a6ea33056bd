"""Writing a trained network as the ONNX file edgewatch loads like any Ultralytics export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn


def export_onnx(net: nn.Module, input_size: tuple[int, int], labels: Sequence[str], path: Path) -> Path:
    """ONNX opset 17 with a dynamic batch axis (`images` → `output0`) and the class names in the
    metadata key `names`, as Ultralytics stores them."""
    import onnx

    width, height = input_size
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net.eval(), (torch.zeros(1, 3, height, width),), str(path), input_names=["images"],
        output_names=["output0"], opset_version=17, dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
        dynamo=False,
    )  # fmt: skip
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "names", str(dict(enumerate(labels)))
    onnx.save(model, str(path))
    return path
