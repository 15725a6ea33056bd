"""Build a stand-in for YOLOv8n's cost: a 640×640, 80-class network of about 7 GFLOPs in the yolov8
output layout, with untrained weights. Only for measuring edgewatch's overhead around a model call of
realistic cost (docs/models.md); it detects nothing. The class bias is set so that, as with a trained
detector on a real scene, almost no cell scores above the candidate floor.

    .venv/bin/pip install torch==2.13.0 onnx && .venv/bin/python tools/build_bench_model.py /tmp/yolo-cost.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

CLASSES = 80
SIZE = 640


def block(inputs: int, outputs: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1), nn.SiLU())


class CostNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stride8 = nn.Sequential(block(3, 16, 2), block(16, 32, 2), block(32, 32), block(32, 64, 2),
                                     block(64, 64), block(64, 64))  # fmt: skip
        self.stride16 = nn.Sequential(block(64, 128, 2), block(128, 128), block(128, 128))
        self.stride32 = nn.Sequential(block(128, 256, 2), block(256, 256), block(256, 256))
        self.lateral16 = nn.Conv2d(128, 64, 1)
        self.lateral32 = nn.Conv2d(256, 64, 1)
        self.head = nn.Conv2d(64, 4 + CLASSES, 1)
        nn.init.constant_(self.head.bias[4:], -8.0)
        cells = SIZE // 8
        ys, xs = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys]).reshape(1, 2, -1).float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f8 = self.stride8(images)
        f16 = self.stride16(f8)
        f32 = self.stride32(f16)
        merged = f8 + nn.functional.interpolate(self.lateral16(f16), scale_factor=2)
        merged = merged + nn.functional.interpolate(self.lateral32(f32), scale_factor=4)
        raw = self.head(merged).flatten(2)
        centre = (self.grid + raw[:, :2].sigmoid()) * 8
        size = raw[:, 2:4].clamp(-4, 4).exp() * 8
        return torch.cat([centre, size, raw[:, 4:].sigmoid()], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = CostNet().eval()
    torch.onnx.export(
        net, (torch.zeros(1, 3, SIZE, SIZE),), str(args.out), input_names=["images"], output_names=["output0"],
        opset_version=17, dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
