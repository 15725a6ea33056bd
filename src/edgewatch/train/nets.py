"""The two small networks `edgewatch train` fits, sized for an edge CPU, and the detector's export form.

Both are plain stacks of strided 3×3 convolutions (BatchNorm, SiLU): what runs fastest on a CPU per
parameter, and what ONNX Runtime and OpenVINO fuse best. `--model-size` scales every width.

* `ClassifierNet`: whole image → class logits. Pooling both the mean and the max of the last features
  lets it weigh how much of a region is dark (the mean) whatever the light (the max sees the brightest
  part), which is what a door or a shutter camera asks.
* `DetectorNet`: anchor-free, one prediction per cell of a stride-8 grid (as in CenterNet / FCOS):
  per cell a score per class and the box as (offset of its centre in the cell, log width, log height),
  with stride-16 and stride-32 branches for context (a person near the camera fills the picture: the
  cell at its centre must see all of it to say how big it is). `ExportedDetector` folds the box decoding into the graph so the
  ONNX output is the yolov8 layout, `[1, 4 + C, cells]`, which edgewatch's own decoder reads.

Example:
    >>> import torch
    >>> net = DetectorNet(classes=2, width="n")
    >>> ExportedDetector(net, (64, 32))(torch.zeros(1, 3, 32, 64)).shape
    torch.Size([1, 6, 32])
"""

from __future__ import annotations

import torch
from torch import nn

#: the detector's grid: one cell per 8×8 input pixels
STRIDE = 8
#: input sides are multiples of this: the context branches halve the stride-8 grid twice and double it back
SIDE_MULTIPLE = 32
#: `--model-size`: a factor on every layer's width
WIDTHS = {"n": 1.0, "s": 1.5, "m": 2.0}


def _channels(base: int, width: str) -> int:
    return max(8, round(base * WIDTHS[width] / 8) * 8)


def _block(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.SiLU())


class ClassifierNet(nn.Module):
    """About 60 k parameters at width `n`: five 3×3 blocks (four strided), mean and max pooled, one linear layer.

    Args:
        classes: how many classes.
        width: `n`, `s` or `m` (see `WIDTHS`).
    """

    def __init__(self, classes: int, width: str = "n") -> None:
        super().__init__()
        c1, c2, c3, c4 = (_channels(base, width) for base in (16, 32, 48, 64))
        self.features = nn.Sequential(_block(3, c1, 2), _block(c1, c2, 2), _block(c2, c3, 2), _block(c3, c4, 1),
                                      _block(c4, c4, 2))  # fmt: skip
        self.classify = nn.Linear(2 * c4, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] RGB 0..1 → [N, classes] logits."""
        features = self.features(images)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.classify(pooled)


class DetectorNet(nn.Module):
    """About 0.44 M parameters at width `n`: stride-8 features, stride-16 and -32 context, one head.

    Args:
        classes: how many classes.
        width: `n`, `s` or `m` (see `WIDTHS`).
    """

    def __init__(self, classes: int, width: str = "n") -> None:
        super().__init__()
        self.classes = classes
        c1, c2, c3, c4, context = (_channels(base, width) for base in (16, 32, 48, 64, 96))
        self.features = nn.Sequential(_block(3, c1, 2), _block(c1, c2, 2), _block(c2, c3, 2), _block(c3, c4, 1))
        self.context = nn.Sequential(_block(c4, context, 2), _block(context, context, 1))
        # stride 32: a cell that sees a whole person filling the picture, for the box of one that near
        self.wide = nn.Sequential(_block(context, context, 2), _block(context, context, 1), nn.Upsample(scale_factor=2))
        self.up = nn.Upsample(scale_factor=2)
        self.head = nn.Sequential(_block(c4 + context, c4, 1), nn.Conv2d(c4, classes + 4, 1))
        nn.init.constant_(self.head[-1].bias[:classes], -4.0)  # start predicting 'nothing' (focal-loss habit)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw map [B, C + 4, H/8, W/8]: class logits, then dx, dy, log w, log h (in cells)."""
        features = self.features(images)
        context = self.context(features)
        return self.head(torch.cat([features, self.up(context + self.wide(context))], dim=1))


class ExportedDetector(nn.Module):
    """`DetectorNet` with the box decoding inside: [B, 3, H, W] 0..1 RGB → [B, 4 + C, cells], cx cy w h in
    input pixels, then sigmoid class scores (the yolov8 layout)."""

    def __init__(self, net: DetectorNet, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.net = net
        width, height = input_size
        ys, xs = torch.meshgrid(torch.arange(height // STRIDE), torch.arange(width // STRIDE), indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys]).reshape(1, 2, -1).float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raw = self.net(images).flatten(2)
        classes = self.net.classes
        scores = raw[:, :classes].sigmoid()
        centre = (self.grid + raw[:, classes : classes + 2].sigmoid()) * STRIDE
        size = raw[:, classes + 2 : classes + 4].clamp(-4, 6).exp() * STRIDE
        return torch.cat([centre, size, scores], dim=1)
