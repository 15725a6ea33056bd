"""Incidents and states: conditions that start once, may re-alert on schedule, and end once.

Time here is video time in seconds. An incident starts when its condition has held for
`min_duration`, re-alerts every `repeat_after` while it lasts, and ends once the condition has been
false for `end_after` (a flicker shorter than that does not end it). A classifier's label becomes a
state the same way: the state changes only after the new label has held for `min_duration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edgewatch.analytics.tracking import TrackedObject
from edgewatch.config import RuleConfig, StateConfig


@dataclass(frozen=True, slots=True)
class RuleChange:
    """An incident's start, update (re-alert) or end."""

    phase: str
    number: int  # the rule's incidents so far, this one included
    since: float  # when the condition began to hold
    until: float | None  # end: when it last held
    objects: tuple[TrackedObject, ...]  # those that make the condition true (start / update: now)


@dataclass
class IncidentRule:
    """One rule of `rules:`, fed the objects present (and in its zone, if it has one) frame by frame."""

    config: RuleConfig
    incidents: int = 0
    _since: float | None = None  # the condition holds since
    _last_true: float | None = None
    _active: bool = False
    _last_alert: float = 0.0
    _objects: tuple[TrackedObject, ...] = field(default=())

    @property
    def active(self) -> bool:
        return self._active

    def matching(self, present: Sequence[TrackedObject]) -> tuple[TrackedObject, ...] | None:
        """The objects that make the condition true, or None when it is false."""
        rule = self.config
        if rule.all_present is not None:
            chosen = tuple(item for item in present if item.label in rule.all_present)
            return chosen if set(rule.all_present) <= {item.label for item in chosen} else None
        if rule.any_present is not None:
            chosen = tuple(item for item in present if item.label in rule.any_present)
            return chosen or None
        chosen = tuple(item for item in present if rule.labels is None or item.label in rule.labels)
        return chosen if len(chosen) > (rule.count_above or 0) else None

    def update(self, present: Sequence[TrackedObject], time: float) -> list[RuleChange]:
        rule = self.config
        chosen = self.matching(present)
        if chosen is None:
            absent_long_enough = self._last_true is not None and time - self._last_true >= rule.end_after
            if absent_long_enough and self._active:
                return [self._end()]
            if absent_long_enough:
                self._since = self._last_true = None  # what was building up towards min_duration is lost
            return []
        if self._since is None:
            self._since = time
        self._last_true, self._objects = time, chosen
        if not self._active and time - self._since >= rule.min_duration:
            self._active, self._last_alert = True, time
            self.incidents += 1
            return [RuleChange("start", self.incidents, self._since, None, chosen)]
        if self._active and rule.repeat_after is not None and time - self._last_alert >= rule.repeat_after:
            self._last_alert = time
            return [RuleChange("update", self.incidents, self._since, None, chosen)]
        return []

    def finish(self) -> list[RuleChange]:
        """The input ended: an active incident ends at its last true moment."""
        return [self._end()] if self._active else []

    def _end(self) -> RuleChange:
        change = RuleChange("end", self.incidents, self._since or 0.0, self._last_true, self._objects)
        self._active, self._since, self._last_true = False, None, None
        return change


@dataclass
class StateTracker:
    """A classifier's label as a state with hysteresis."""

    config: StateConfig
    state: str | None = None
    _candidate: str | None = None
    _candidate_since: float = 0.0

    def update(self, label: str | None, score: float, time: float) -> tuple[str | None, str, float] | None:
        """Feed one frame's classification; returns (from, to, since) when the state changes."""
        if label is None or score < self.config.min_score:
            return None  # an unsure frame neither confirms nor breaks a change in progress
        if label == self.state:
            self._candidate = None
            return None
        if label != self._candidate:
            self._candidate, self._candidate_since = label, time
        if time - self._candidate_since < self.config.min_duration:
            return None
        change = (self.state, label, self._candidate_since)
        self.state, self._candidate = label, None
        return change
