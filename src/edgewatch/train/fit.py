"""The epoch loop every run uses: AdamW on a one-cycle schedule, a validation score after each epoch,
the best weights kept, early stopping, and Ctrl-C that ends the run with the best weights so far.

A `Task` is what differs between a classifier and a detector: its network, the loss of a batch and
the validation score. The loop knows nothing else of them.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from edgewatch.progress import progress_bar
from edgewatch.train.samples import Example
from edgewatch.train.settings import Settings

log = logging.getLogger(__name__)

WEIGHT_DECAY = 1e-4
#: training images the BatchNorm statistics are measured on again before each validation
PRECISE_BN_IMAGES = 128


class Task(Protocol):
    net: nn.Module
    #: the validation score's name in metrics.csv (higher is better)
    metric: str

    def batch_loss(self, examples: list[Example], rng: np.random.Generator) -> torch.Tensor: ...

    def inputs(self, examples: list[Example]) -> torch.Tensor: ...

    def validate(self) -> float: ...


@dataclass
class Epoch:
    """One row of metrics.csv."""

    epoch: int
    loss: float
    score: float
    lr: float
    seconds: float
    best: bool


@dataclass
class Fitted:
    """What the loop ended with: the net holds the best weights (in eval mode)."""

    epochs: list[Epoch] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    interrupted: bool = False
    stopped_early: bool = False


def fit(task: Task, train: list[Example], settings: Settings, on_epoch: Callable[[Epoch], None]) -> Fitted:
    """Train `task.net` on `train` for `settings.epochs` at most; `on_epoch` gets each epoch's row.

    Ctrl-C (KeyboardInterrupt) mid-epoch ends the loop: the net keeps the best weights so far and
    `Fitted.interrupted` is set; a run interrupted before its first epoch ended has no best.
    """
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    net = task.net
    steps_per_epoch = max(1, len(train) // settings.batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.lr, total_steps=settings.epochs * steps_per_epoch, pct_start=0.1
    )
    fitted = Fitted()
    best_state = None
    started = time.monotonic()
    try:
        for epoch in range(1, settings.epochs + 1):
            net.train()
            order = rng.permutation(len(train))
            losses = []
            with progress_bar(steps_per_epoch, f"epoch {epoch}/{settings.epochs}", "step") as bar:
                for step in range(steps_per_epoch):
                    picks = order[step * settings.batch : (step + 1) * settings.batch]
                    if len(picks) < settings.batch:  # fewer images than a batch: draw them again
                        picks = rng.choice(len(train), settings.batch, replace=True)
                    loss = task.batch_loss([train[int(index)] for index in picks], rng)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    schedule.step()
                    losses.append(float(loss.item()))
                    bar.set_postfix(loss=f"{np.mean(losses):.3f}", refresh=False)
                    bar.update(1)
                _precise_batchnorm(task, train, np.random.default_rng([settings.seed, epoch]))
                score = task.validate()
                bar.set_postfix(loss=f"{np.mean(losses):.3f}", **{task.metric: f"{score:.3f}"})
            # a tie goes to the later epoch: a score that saturates (1.0 on easy validation images) would
            # otherwise keep the weights of the first, high learning-rate epoch that reached it
            improved = fitted.best_score is None or score >= fitted.best_score
            if improved:
                fitted.best_epoch, fitted.best_score = epoch, score
                best_state = copy.deepcopy(net.state_dict())
            row = Epoch(epoch, float(np.mean(losses)), score, schedule.get_last_lr()[0],
                        time.monotonic() - started, improved)  # fmt: skip
            fitted.epochs.append(row)
            log.info("epoch %d/%d: loss %.3f, %s %.3f%s", epoch, settings.epochs, row.loss, task.metric, score,
                     " (best)" if improved else "")  # fmt: skip
            on_epoch(row)
            if epoch - fitted.best_epoch >= settings.patience:
                fitted.stopped_early = True
                log.info("no better %s for %d epochs: stopping early", task.metric, settings.patience)
                break
    except KeyboardInterrupt:
        fitted.interrupted = True
        log.warning("interrupted: keeping the best epoch so far (%s)", fitted.best_epoch or "none")
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return fitted


@torch.no_grad()
def _precise_batchnorm(task: Task, train: list[Example], rng: np.random.Generator) -> None:
    """Measure the BatchNorm statistics of the current weights on training images, and leave the net in
    eval mode. The running averages lag behind weights that still move fast (a small dataset has few
    steps an epoch), and a net that scores well in training then answers one class for everything."""
    norms = [module for module in task.net.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # a plain average over the batches below
    task.net.train()
    picks = rng.permutation(len(train))[:PRECISE_BN_IMAGES]
    for start in range(0, len(picks), 32):
        task.net(task.inputs([train[int(index)] for index in picks[start : start + 32]]))
    for module in norms:
        module.momentum = 0.1
    task.net.eval()
