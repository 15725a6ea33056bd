"""Training a whole-image classifier: its batches, its validation score (accuracy) and its export.

The network sees the image stretched to the input size as RGB 0..1, exactly as edgewatch feeds a
`classifier` model (its default pre-processing: plain resize, no letterbox), so training and use
agree pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgewatch.train.augment import augment
from edgewatch.train.export import export_onnx
from edgewatch.train.nets import ClassifierNet
from edgewatch.train.samples import Example, TrainingData


def as_tensor(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """BGR uint8 H × W × 3 images → an RGB 0..1 [N, 3, H, W] batch, as edgewatch's pre-processing makes."""
    batch = np.stack(images)[..., ::-1].transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32) / 255).to(device)


class ClassifierTask:
    """A `fit.Task`: cross-entropy on augmented images, accuracy on the validation images."""

    metric = "accuracy"

    def __init__(self, data: TrainingData, model_size: str, device: torch.device) -> None:
        self.data = data
        self.device = device
        self.net = ClassifierNet(len(data.classes), model_size).to(device)

    def batch_loss(self, examples: list[Example], rng: np.random.Generator) -> torch.Tensor:
        empty = np.zeros((0, 4), np.float32)
        images = [augment(example.pixels, empty, rng, self.data.input_size)[0] for example in examples]
        labels = torch.tensor([example.label for example in examples], device=self.device)
        return nn.functional.cross_entropy(self.net(as_tensor(images, self.device)), labels)

    def inputs(self, examples: list[Example]) -> torch.Tensor:
        return as_tensor([example.pixels for example in examples], self.device)

    @torch.no_grad()
    def validate(self) -> float:
        validation = self.data.validation
        if not validation:
            return 0.0
        correct = 0
        for start in range(0, len(validation), 64):
            chunk = validation[start : start + 64]
            logits = self.net(as_tensor([example.pixels for example in chunk], self.device))
            correct += int((logits.argmax(dim=1).cpu().numpy() == [example.label for example in chunk]).sum())
        return correct / len(validation)

    def export(self, path: Path) -> Path:
        return export_onnx(self.net, self.data.input_size, self.data.classes, path)
