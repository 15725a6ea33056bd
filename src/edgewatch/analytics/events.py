"""Events and stats as the public contract shapes them (docs/formats.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from edgewatch.frame import iso_time


def event_id() -> str:
    """Ties the start, updates and end of one thing that lasts together."""
    return uuid4().hex[:16]


def make_event(kind: str, camera: str, time: float, wall_time: datetime, **fields: Any) -> dict[str, Any]:
    """`{"type": kind, ("phase": ...), "camera": camera, ..., "time": ..., "wall_time": ...}`"""
    phase = fields.pop("phase", None)
    head: dict[str, Any] = {"type": kind}
    if phase is not None:
        head["phase"] = phase
    head["camera"] = camera
    return {**head, **fields, "time": round(time, 3), "wall_time": iso_time(wall_time)}
