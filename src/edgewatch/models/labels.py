"""Class names for a model: from a txt / yaml / json file, or from the model's own metadata."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import yaml

from edgewatch.errors import EdgewatchError

log = logging.getLogger(__name__)


def read_labels(path: str | Path) -> list[str]:
    """Names in class-id order.

    Accepts a text file with one name per line, or YAML / JSON holding a list, a {id: name} mapping,
    or either under a `names` key (Ultralytics' data.yaml).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgewatchError(f"no such labels file: {path}", "check the path given as labels") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EdgewatchError(f"cannot read labels file {path}: {error}", "it must be UTF-8 text") from None
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise EdgewatchError(
                f"cannot parse labels file {path}: {error}".splitlines()[0], "fix its syntax"
            ) from None
        names = _names_from(data)
        if names is None:
            raise EdgewatchError(f"labels file {path} holds no list of names", "use a list, or {id: name}, or names:")
        return names
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def labels_from_metadata(metadata: dict[str, str]) -> list[str] | None:
    """Ultralytics' ONNX export stores `names` as a Python dict literal, e.g. "{0: 'person', 1: 'car'}"."""
    raw = metadata.get("names")
    if raw is None:
        return None
    try:
        return _names_from(ast.literal_eval(raw))
    except (ValueError, SyntaxError):
        try:
            return _names_from(json.loads(raw))
        except ValueError:
            return None


def _names_from(data: object) -> list[str] | None:
    if isinstance(data, dict) and "names" in data:
        data = data["names"]
    if isinstance(data, list):
        return [str(name) for name in data]
    if isinstance(data, dict):
        try:
            ordered = sorted((int(key), str(value)) for key, value in data.items())
        except (TypeError, ValueError):
            return None
        return [name for _, name in ordered]
    return None


def complete_labels(labels: list[str] | None, classes: int, origin: str) -> list[str]:
    """Exactly `classes` names: missing ones become `class_N`, with a warning."""
    labels = list(labels or [])
    if labels and len(labels) < classes:
        log.warning(
            "%s names %d classes but the model has %d; the rest are called class_N", origin, len(labels), classes
        )
    return labels[:classes] + [f"class_{index}" for index in range(len(labels), classes)]
