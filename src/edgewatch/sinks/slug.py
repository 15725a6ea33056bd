"""Names as MQTT topic levels and Home Assistant ids: only `[A-Za-z0-9_-]`, and never two names on one.

A label such as `car/truck` would add a topic level, `traffic light` puts a space in a topic, and Home
Assistant ignores a discovery object id with any character outside `[a-zA-Z0-9_-]`. So each run of other
characters becomes one `_` (`traffic light` → `traffic_light`, `car/truck` → `car_truck`); a name that
is already a slug stays as it is. Two names that slug alike must not share a topic: the first one met
keeps the slug, a later one gets `_` and four hex digits of a hash of its own name (`car truck` →
`car_truck_8416`), the same in every run. Payloads keep the real names.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Hashable, Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_UNSAFE_INSTANCE = re.compile(r"[^A-Za-z0-9-]+")


def slug(name: str) -> str:
    """`name` with each run of characters outside `[A-Za-z0-9_-]` as one `_`, none at either end.

    Example:
        >>> slug("traffic light"), slug("car/truck"), slug("person")
        ('traffic_light', 'car_truck', 'person')
    """
    return _UNSAFE.sub("_", name).strip("_")


def instance_slug(name: str) -> str:
    """An instance's name in topics and ids: `[A-Za-z0-9-]` only, each other run of characters one `-`.

    No `_`, so that the instance is the unambiguous first part of the ids it is joined into with `_`.

    Example:
        >>> instance_slug("gate_a"), instance_slug("Cam Host.local")
        ('gate-a', 'Cam-Host-local')
    """
    return _UNSAFE_INSTANCE.sub("-", name).strip("-")


def _suffix(key: Hashable, size: int) -> str:
    return hashlib.blake2s(repr(key).encode(), digest_size=size).hexdigest()


class Slugs:
    """One kind of name (labels, cameras, ...) to slugs that stay distinct, for the life of a run.

    Args:
        reserved: slugs no name may have as it is (topic levels of our own at the same depth).

    Example:
        >>> labels = Slugs(reserved=["incidents"])
        >>> labels("car/truck"), labels("car truck"), labels("car/truck"), labels("incidents")
        ('car_truck', 'car_truck_8416', 'car_truck', 'incidents_3342')
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._slugs: dict[Hashable, str] = {}
        self._taken = set(reserved)
        self._lock = threading.Lock()  # camera threads and the MQTT thread ask at once

    def __call__(self, name: str, key: Hashable | None = None) -> str:
        """The slug of `name`; `key` (default `name`) is what must be told apart from other keys."""
        key = name if key is None else key
        with self._lock:
            found = self._slugs.get(key)
            if found is not None:
                return found
            base = slug(name) or "x"  # a name with no letter or digit at all (another script, punctuation)
            candidate, size = base, 2
            while candidate in self._taken:
                candidate, size = f"{base}_{_suffix(key, size)}", size + 1
            self._slugs[key] = candidate
            self._taken.add(candidate)
            return candidate
