"""The detector network takes every input size `train detector` can choose, and every crop it trains on."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgewatch.train.detector import crop_size  # noqa: E402
from edgewatch.train.nets import SIDE_MULTIPLE, STRIDE, DetectorNet, ExportedDetector  # noqa: E402

#: input sizes as `--size` and the pictures' shape give them: widths and heights in multiples of 32
SIZES = [(width, height) for width in range(64, 705, 128) for height in range(32, width + 1, 96)]


def test_every_input_size_and_its_training_crop_give_one_cell_per_stride():
    net = DetectorNet(classes=2).eval()
    with torch.no_grad():
        for size in SIZES:
            for width, height in {size, crop_size(size)}:
                assert width % SIDE_MULTIPLE == 0 and height % SIDE_MULTIPLE == 0
                raw = net(torch.zeros(1, 3, height, width))
                assert raw.shape == (1, 2 + 4, height // STRIDE, width // STRIDE), (width, height)
            exported = ExportedDetector(net, size)(torch.zeros(2, 3, size[1], size[0]))
            assert exported.shape == (2, 4 + 2, (size[0] // STRIDE) * (size[1] // STRIDE))
