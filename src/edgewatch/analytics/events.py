"""Events and stats as the public contract shapes them (docs/formats.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from edgewatch.frame import iso_time


def event_id() -> str:
    """The `id` of one thing: shared by the start, updates and end of a thing that lasts."""
    return uuid4().hex[:16]


def make_event(
    kind: str, camera: str, time: float, wall_time: datetime, *, id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """`{"type": kind, ("phase": ...), "camera": camera, ..., "time", "wall_time", "id", "message_id"}`.

    `id` names the thing (a new one for an instant); `message_id` is unique to this message, so a
    consumer that receives it twice (MQTT QoS 1 redelivers) can drop the copy.
    """
    phase = fields.pop("phase", None)
    head: dict[str, Any] = {"type": kind}
    if phase is not None:
        head["phase"] = phase
    head["camera"] = camera
    return {
        **head,
        **fields,
        "time": round(time, 3),
        "wall_time": iso_time(wall_time),
        "id": id or event_id(),
        "message_id": uuid4().hex,
    }
