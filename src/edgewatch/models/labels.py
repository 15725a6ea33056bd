"""Class names for a model: from a txt / yaml / json file, or from the model's own metadata."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import yaml

from edgewatch.errors import EdgewatchError

log = logging.getLogger(__name__)

MAX_CLASS_ID = 100_000  # an {id: name} mapping beyond this is no list of classes
PBTXT_ITEM = re.compile(r"\bitem\s*\{([^}]*)\}")
PBTXT_FIELD = re.compile(r"""\b(id|name|display_name)\s*:\s*(?:"([^"]*)"|'([^']*)'|(\d+))""")


def read_labels(path: str | Path) -> list[str]:
    """Names in class-id order: name `i` is class id `i`.

    Accepts a text file with one name per line; YAML / JSON holding a list, an {id: name} mapping, or
    either under a `names` key (Ultralytics' data.yaml); or a TensorFlow Object Detection API label map
    (`.pbtxt`: `item { id: 1 name: 'person' }`). A mapping maps by id, so one that counts from 1 (as
    TensorFlow's do, 0 being the background) leaves `class_0` for the id it does not name.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgewatchError(f"no such labels file: {path}", "check the path given as labels") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EdgewatchError(f"cannot read labels file {path}: {error}", "it must be UTF-8 text") from None
    if path.suffix.lower() == ".pbtxt" or (path.suffix.lower() == ".txt" and PBTXT_ITEM.search(text)):
        names = names_from(_pbtxt_items(text, path))
        if not names:
            raise EdgewatchError(f"label map {path} has no item {{ id: N name: '...' }}", "check its syntax")
        return names
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise EdgewatchError(
                f"cannot parse labels file {path}: {error}".splitlines()[0], "fix its syntax"
            ) from None
        names = names_from(data)
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
        return names_from(ast.literal_eval(raw))
    except (ValueError, SyntaxError):
        try:
            return names_from(json.loads(raw))
        except ValueError:
            return None


def names_from(data: object) -> list[str] | None:
    """Names in class-id order from a list, an {id: name} mapping, or either under `names`."""
    if isinstance(data, dict) and "names" in data:
        data = data["names"]
    if isinstance(data, list):
        return [str(name) for name in data]
    if isinstance(data, dict):
        try:
            by_id = {int(key): str(value) for key, value in data.items()}
        except (TypeError, ValueError):
            return None
        if not by_id or min(by_id) < 0 or max(by_id) > MAX_CLASS_ID:
            return None
        return [by_id.get(index, f"class_{index}") for index in range(max(by_id) + 1)]
    return None


def _pbtxt_items(text: str, path: Path) -> dict[int, str]:
    """{id: name} of a TF OD API label map; `display_name` wins over `name` (often a code like /m/01g317)."""
    items = {}
    for body in PBTXT_ITEM.findall(text):
        fields = {key: double or single or number for key, double, single, number in PBTXT_FIELD.findall(body)}
        if not fields.get("id", "").isdigit():
            raise EdgewatchError(
                f"label map {path}: an item without a numeric id: {' '.join(body.split())[:60]}", "give each item an id"
            )
        items[int(fields["id"])] = fields.get("display_name") or fields.get("name") or f"class_{fields['id']}"
    return items


def complete_labels(labels: list[str] | None, classes: int, origin: str) -> list[str]:
    """Exactly `classes` names: missing ones become `class_N`, with a warning."""
    labels = list(labels or [])
    if labels and len(labels) < classes:
        log.warning(
            "%s names %d classes but the model has %d; the rest are called class_N", origin, len(labels), classes
        )
    return labels[:classes] + [f"class_{index}" for index in range(len(labels), classes)]
