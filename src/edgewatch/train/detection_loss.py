"""What `DetectorNet` is asked for at each cell of its grid, and how far off it is.

One cell answers for an object: the cell its centre falls in. Its class target is the object's score
(1 for a label, the teacher's score for a distilled box: a soft target), and it regresses the box.
The eight cells around a centre are near misses, not background, so they are not punished for
seeing the object too. Classes use a focal loss on the soft target (Quality Focal Loss's form,
`bce · |target − p|²`), so the many easy background cells do not drown the few objects.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgewatch.train.nets import STRIDE


def targets(
    boxes: list[np.ndarray], classes: list[np.ndarray], scores: list[np.ndarray], grid: tuple[int, int], count: int
) -> tuple[torch.Tensor, ...]:
    """Per image and cell: class target, class weight, box target (dx, dy, log w, log h in cells) and
    which cells hold an object, for boxes in input pixels on a (width, height) `grid` of cells."""
    width, height = grid
    batch = len(boxes)
    heat = np.zeros((batch, count, height, width), np.float32)
    weight = np.ones((batch, count, height, width), np.float32)
    box = np.zeros((batch, 4, height, width), np.float32)
    positive = np.zeros((batch, height, width), bool)
    for index, (xyxy, ids, wanted) in enumerate(zip(boxes, classes, scores, strict=True)):
        if not len(xyxy):
            continue
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / STRIDE
        cells = np.minimum(centre.astype(int), [width - 1, height - 1])
        sizes = np.log(np.maximum(xyxy[:, 2:] - xyxy[:, :2], 1) / STRIDE)
        for (gx, gy), label in zip(cells, ids, strict=True):
            rows, columns = slice(max(0, gy - 1), gy + 2), slice(max(0, gx - 1), gx + 2)
            weight[index, label, rows, columns] = 0
        # the larger score wins a cell two objects share
        for (gx, gy), label, score, (cx, cy), size in sorted(
            zip(cells, ids, wanted, centre, sizes, strict=True), key=lambda item: item[2]
        ):
            heat[index, label, gy, gx] = score
            weight[index, label, gy, gx] = 1
            box[index, :, gy, gx] = (cx - gx, cy - gy, *size)
            positive[index, gy, gx] = True
    return tuple(torch.from_numpy(array) for array in (heat, weight, box, positive))


def detection_loss(
    raw: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor, box: torch.Tensor, positive: torch.Tensor
) -> torch.Tensor:
    """Focal class loss per object, plus centre and size losses at the object cells."""
    classes = heat.shape[1]
    logits = raw[:, :classes]
    probability = logits.sigmoid()
    bce = nn.functional.binary_cross_entropy_with_logits(logits, heat, reduction="none")
    focal = bce * (heat - probability).abs().pow(2) * weight
    class_loss = focal.sum() / max(1, int(positive.sum()))
    if not positive.any():
        return class_loss
    predicted = raw[:, classes:].permute(0, 2, 3, 1)[positive]
    wanted = box.permute(0, 2, 3, 1)[positive]
    centre_loss = nn.functional.binary_cross_entropy_with_logits(predicted[:, :2], wanted[:, :2].clamp(0, 1))
    size_loss = nn.functional.smooth_l1_loss(predicted[:, 2:], wanted[:, 2:])
    return class_loss + centre_loss + 2 * size_loss
