"""A tiny open / closed door classifier trained on synthetic door scenes, exported to ONNX as a
classifier edgewatch reads (`[N, 2]` logits, `closed` then `open`).

The network sees the whole frame stretched to 128×72 RGB 0..1, exactly as edgewatch feeds a
classifier (its default pre-processing: plain resize, no letterbox), so training and use agree pixel
for pixel. Pooling both the mean and the max of the last features lets it weigh how much of the
doorway is dark (the mean) whatever the light (the max sees the brightest wall).

Rebuild the committed model with: `python tools/build_door_model.py`.

Example:
    >>> net = train(steps=1)  # doctest: +SKIP
    >>> export(net, Path("door-classifier.onnx"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgewatch.models.preprocess import Preprocess
from edgewatch.sources.door import STATES, DoorScene
from edgewatch.train.loop import fit
from edgewatch.train.onnx_export import export_onnx

INPUT_SIZE = (128, 72)  # a 640×360 frame at a fifth, no letterbox needed
#: edgewatch's default pre-processing of a classifier (models.model.PREPROCESS_DEFAULTS)
PREPROCESS = Preprocess(input_size=INPUT_SIZE, letterbox=False, rgb=True, scale=1 / 255)


def _block(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.SiLU())


class DoorNet(nn.Module):
    """About 60 k parameters: four strided 3×3 blocks, mean and max pooled, one linear layer."""

    def __init__(self, classes: int = len(STATES)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(3, 16, 2),
            _block(16, 32, 2),
            _block(32, 48, 2),
            _block(48, 64, 1),
            _block(64, 64, 2),
        )
        self.classify = nn.Linear(2 * 64, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, 72, 128] RGB 0..1 → [N, 2] logits."""
        features = self.features(images)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.classify(pooled)


def batch_of(scenes: list[DoorScene], picks: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Input tensor and state labels of (scene index, frame) picks, pre-processed as edgewatch does."""
    images, labels = [], []
    for scene_index, frame in picks:
        image, state = scenes[scene_index].render(frame)
        images.append(image)
        labels.append(STATES.index(state))
    tensor, _ = PREPROCESS.tensor(images)
    return torch.from_numpy(tensor), torch.tensor(labels)


def train(steps: int = 600, batch: int = 32, seed: int = 0, learning_rate: float = 3e-3) -> DoorNet:
    """Train on frames drawn at random from scenes of seeds 0..9999 (tests hold out seeds ≥ 100000)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = DoorNet()
    scenes = [DoorScene(seed=int(s), seconds=60) for s in rng.integers(0, 10_000, 96)]

    def batch_loss() -> torch.Tensor:
        picks = [(int(rng.integers(len(scenes))), int(rng.integers(0, scenes[0].frame_count))) for _ in range(batch)]
        images, labels = batch_of(scenes, picks)
        return nn.functional.cross_entropy(net(images), labels)

    fit(net, steps, learning_rate, batch_loss)
    return net


def export(net: DoorNet, path: Path) -> Path:
    """Write the ONNX model, with its class names in the metadata as Ultralytics does."""
    return export_onnx(net, INPUT_SIZE, STATES, path)
