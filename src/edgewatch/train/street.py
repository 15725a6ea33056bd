"""A small person / car detector trained on synthetic street scenes, exported to ONNX in the yolov8
layout so edgewatch's own decoder reads it.

The network is anchor-free (one prediction per cell of a stride-8 grid, as in CenterNet / FCOS): per
cell, a score per class and the box as (offset of its centre inside the cell, log width, log height).
The export folds the box decoding into the graph, so the ONNX output is `[1, 4 + C, cells]` with
cx, cy, w, h in input pixels and sigmoid class scores.

Rebuild the committed model with: `python tools/build_street_model.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgewatch.models.geometry import InputGeometry, prepare_input
from edgewatch.sources.synthetic import LABELS, StreetScene
from edgewatch.train.loop import fit
from edgewatch.train.onnx_export import export_onnx

INPUT_SIZE = (512, 288)  # a 640×360 scene letterboxed at 0.8 fills it exactly
STRIDE = 8


def _block(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.SiLU())


class StreetNet(nn.Module):
    """About 0.28 M parameters: stride-8 features with a little context, one head."""

    def __init__(self, classes: int = len(LABELS)) -> None:
        super().__init__()
        self.classes = classes
        self.features = nn.Sequential(
            _block(3, 16, 2),
            _block(16, 32, 2),
            _block(32, 48, 2),
            _block(48, 64, 1),
        )
        self.context = nn.Sequential(_block(64, 96, 2), _block(96, 96, 1), nn.Upsample(scale_factor=2))
        self.head = nn.Sequential(_block(64 + 96, 64, 1), nn.Conv2d(64, classes + 4, 1))
        nn.init.constant_(self.head[-1].bias[:classes], -4.0)  # start predicting 'nothing' (focal-loss habit)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw map [B, C + 4, H/8, W/8]: class logits, then dx, dy, log w, log h."""
        features = self.features(images)
        return self.head(torch.cat([features, self.context(features)], dim=1))


class ExportedStreetNet(nn.Module):
    """`StreetNet` with the box decoding inside: [1, 3, H, W] 0..1 RGB → [1, 4 + C, cells]."""

    def __init__(self, net: StreetNet, input_size: tuple[int, int] = INPUT_SIZE) -> None:
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


@dataclass(frozen=True, slots=True)
class Sample:
    image: np.ndarray  # input-sized RGB float32 CHW, 0..1
    boxes: np.ndarray  # N × 4 xyxy in input pixels
    classes: np.ndarray  # N
    ignore: np.ndarray  # N bools: too hidden to ask for, and not to be punished either


CROP = (256, 160)  # training sees crops: a quarter of the pixels, four times the steps per second


def render_sample(scene: StreetScene, frame: int, rng: np.random.Generator | None = None) -> Sample:
    """A frame as the model sees it (letterboxed to INPUT_SIZE), or a random CROP of that when `rng`
    is given; boxes whose centre falls outside the crop are left out."""
    image, truth = scene.render(frame)
    geometry = InputGeometry.plan((scene.width, scene.height), INPUT_SIZE, letterbox=True)
    pixels = prepare_input(image, geometry)[..., ::-1]
    boxes = geometry.to_input(np.array([item.box for item in truth], np.float32).reshape(-1, 4))
    classes = np.array([LABELS.index(item.label) for item in truth], np.int64)
    ignore = np.array([item.hidden for item in truth], bool)
    if rng is not None:
        left = int(rng.integers(0, INPUT_SIZE[0] - CROP[0] + 1)) // STRIDE * STRIDE
        top = int(rng.integers(0, INPUT_SIZE[1] - CROP[1] + 1)) // STRIDE * STRIDE
        pixels = pixels[top : top + CROP[1], left : left + CROP[0]]
        boxes = boxes - np.array([left, top, left, top], np.float32)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centres[:, 0] >= 0) & (centres[:, 0] < CROP[0]) & (centres[:, 1] >= 0) & (centres[:, 1] < CROP[1])
        boxes, classes, ignore = boxes[inside], classes[inside], ignore[inside]
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / 255
    return Sample(chw, boxes, classes, ignore)


def targets(samples: list[Sample], classes: int) -> tuple[torch.Tensor, ...]:
    """Per cell: class target (1 at each object's centre cell, 0 elsewhere), a weight (0 around
    ignored objects), box target (dx, dy, log w, log h) and a positive mask."""
    height, width = (side // STRIDE for side in samples[0].image.shape[1:])
    batch = len(samples)
    heat = torch.zeros(batch, classes, height, width)
    weight = torch.ones(batch, classes, height, width)
    box = torch.zeros(batch, 4, height, width)
    positive = torch.zeros(batch, height, width, dtype=torch.bool)
    for index, sample in enumerate(samples):
        for (x1, y1, x2, y2), label, ignored in zip(sample.boxes, sample.classes, sample.ignore, strict=True):
            cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
            gx, gy = min(int(cx), width - 1), min(int(cy), height - 1)
            if ignored:
                weight[index, :, max(0, gy - 1) : gy + 2, max(0, gx - 1) : gx + 2] = 0
                continue
            heat[index, label, gy, gx] = 1
            # the neighbouring cells of a centre are near misses, not background: don't punish them
            neighbours = weight[index, label, max(0, gy - 1) : gy + 2, max(0, gx - 1) : gx + 2]
            neighbours.mul_(heat[index, label, max(0, gy - 1) : gy + 2, max(0, gx - 1) : gx + 2])
            box[index, :, gy, gx] = torch.tensor(
                [cx - gx, cy - gy, math.log(max(x2 - x1, 1) / STRIDE), math.log(max(y2 - y1, 1) / STRIDE)]
            )
            positive[index, gy, gx] = True
    return heat, weight, box, positive


def loss(
    raw: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor, box: torch.Tensor, positive: torch.Tensor
) -> torch.Tensor:
    classes = heat.shape[1]
    logits = raw[:, :classes]
    probability = logits.sigmoid()
    bce = nn.functional.binary_cross_entropy_with_logits(logits, heat, reduction="none")
    focal = bce * ((heat - probability).abs() ** 2) * weight  # focal loss, gamma 2
    count = max(1, int(positive.sum()))
    class_loss = focal.sum() / count
    predicted = raw[:, classes:].permute(0, 2, 3, 1)[positive]
    wanted = box.permute(0, 2, 3, 1)[positive]
    centre_loss = nn.functional.binary_cross_entropy_with_logits(predicted[:, :2], wanted[:, :2].clamp(0, 1))
    size_loss = nn.functional.smooth_l1_loss(predicted[:, 2:], wanted[:, 2:])
    return class_loss + centre_loss + 2 * size_loss


def train(steps: int = 3000, batch: int = 16, seed: int = 0, learning_rate: float = 3e-3) -> StreetNet:
    """Train on frames drawn at random from scenes of seeds 0..9999 (tests hold out seeds ≥ 100000)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = StreetNet()
    scenes = [StreetScene(seed=int(s), seconds=30, cars=10, people=12) for s in rng.integers(0, 10_000, 64)]

    def batch_loss() -> torch.Tensor:
        samples = [
            render_sample(scenes[int(rng.integers(len(scenes)))], int(rng.integers(0, 750)), rng) for _ in range(batch)
        ]
        images = torch.from_numpy(np.stack([sample.image for sample in samples]))
        return loss(net(images), *targets(samples, net.classes))

    fit(net, steps, learning_rate, batch_loss)
    return net


def export(net: StreetNet, path: Path) -> Path:
    """Write the ONNX model, with its class names in the metadata as Ultralytics does."""
    return export_onnx(ExportedStreetNet(net), INPUT_SIZE, LABELS, path)
