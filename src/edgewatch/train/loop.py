"""The training loop both of the project's models use: AdamW with a one-cycle schedule."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)


def fit(net: nn.Module, steps: int, learning_rate: float, batch_loss: Callable[[], torch.Tensor]) -> nn.Module:
    """Run `steps` optimiser steps on the loss `batch_loss()` computes from a fresh batch; log every
    100 steps; return the net in eval mode."""
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    started = time.monotonic()
    net.train()
    for step in range(steps):
        value = batch_loss()
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("step %d/%d loss %.3f (%.0f s)", step, steps, value.item(), time.monotonic() - started)
    return net.eval()
