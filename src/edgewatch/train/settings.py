"""A training run's settings: what the flags give, over each kind's defaults, and which a sweep may vary.

Example:
    >>> Settings.of("detector", batch=8).batch, Settings.of("detector").size
    (8, 512)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from edgewatch.errors import EdgewatchError
from edgewatch.train.nets import WIDTHS

KINDS = ("classifier", "detector")
#: a kind's defaults: a classifier sees the whole picture small; a detector needs the detail
DEFAULTS: dict[str, dict[str, Any]] = {
    "classifier": {"epochs": 30, "batch": 32, "size": 128, "patience": 8},
    "detector": {"epochs": 60, "batch": 16, "size": 512, "patience": 10},
}
#: what `--sweep KEY=...` may vary, by its flag's name
SWEEPABLE = ("batch", "epochs", "size", "model-size", "lr", "patience", "seed")


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's result, as args.yaml records it.

    Attributes:
        kind: `classifier` or `detector`.
        epochs: passes over the training images at most.
        batch: images per optimiser step.
        size: the input width; the height follows the images' shape.
        model_size: the network width, `n`, `s` or `m`.
        lr: the peak learning rate of the one-cycle schedule.
        patience: epochs without a better validation score before the run stops.
        seed: the seed of every random choice (split, order, augmentation, initial weights).
        val_split: the validation share of a dataset without a split.
        device: `cpu` or `cuda`; None: cuda when present.
        teacher: a model that labels the images instead of their labels (distillation).
        teacher_labels: its class names file.
        teacher_min_score: its boxes scoring below this are not objects.
    """

    kind: str
    epochs: int
    batch: int
    size: int
    patience: int
    model_size: str = "n"
    lr: float = 3e-3
    seed: int = 0
    val_split: float | None = None
    device: str | None = None
    teacher: str | None = None
    teacher_labels: str | None = None
    teacher_min_score: float = 0.3

    @classmethod
    def of(cls, kind: str, **given: Any) -> Settings:
        """The kind's defaults with the `given` values that are not None."""
        chosen = {key: value for key, value in given.items() if value is not None}
        return cls(kind=kind, **{**DEFAULTS[kind], **chosen})

    def varied(self, changes: dict[str, str]) -> Settings:
        """These settings with a sweep's `changes` (flag name -> text), each parsed as its field's type."""
        parsed: dict[str, Any] = {}
        types = {field.name: field.type for field in fields(self)}
        for key, text in changes.items():
            name = key.replace("-", "_")
            kind = types[name]
            try:
                parsed[name] = int(text) if kind == "int" else float(text) if kind == "float" else text
            except ValueError:
                raise EdgewatchError(
                    f"--sweep {key}={text}: {text} is not a number", f"give numbers for {key}"
                ) from None
        updated = replace(self, **parsed)
        updated.check()
        return updated

    def check(self) -> None:
        """Raise EdgewatchError for a value no run can use."""
        if self.model_size not in WIDTHS:
            raise EdgewatchError(f"model size {self.model_size!r} is unknown", f"use one of {', '.join(WIDTHS)}")
        for name in ("epochs", "batch", "size", "patience"):
            if getattr(self, name) < 1:
                raise EdgewatchError(f"{name} {getattr(self, name)} must be 1 or more", f"give a positive {name}")
        if not self.lr > 0:
            raise EdgewatchError(f"learning rate {self.lr:g} must be above 0", "e.g. --lr 0.003")

    def to_yaml_dict(self) -> dict[str, Any]:
        return asdict(self)
