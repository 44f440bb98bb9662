"""An alarm's state from its datapoints: evaluation periods, datapoints to alarm, missing-data treatment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from localcloud.cloudwatch.models import (
    Datapoint,
    Decision,
    State,
)


def evaluation_range_length(evaluation_periods: int) -> int:
    """How many periods an evaluation retrieves: more than N, as documented (5 for N = 3)."""
    return evaluation_periods + max(2, evaluation_periods // 3)


def decide(
    datapoints: Sequence[Datapoint],
    *,
    is_breaching: Callable[[float], bool],
    evaluation_periods: int,
    datapoints_to_alarm: int,
    treat_missing_data: str,
) -> Decision:
    """CloudWatch's decision over the evaluation range (`datapoints` oldest first, one per period)."""
    n, m = evaluation_periods, datapoints_to_alarm
    existing = [point for point in datapoints if point.value is not None]
    missing = [point for point in datapoints if point.value is None]
    if len(existing) >= n:
        evaluated = existing[-n:]
        flags = [is_breaching(_value(point)) for point in evaluated]
        return _decided(evaluated, flags, "ALARM" if sum(flags) >= m else "OK", filled=0)
    if treat_missing_data in ("breaching", "notBreaching"):
        # Real datapoints anywhere in the range count; missing ones fill up to N, as few as possible.
        fills = missing[len(missing) - (n - len(existing)) :]
        evaluated = sorted(existing + fills, key=lambda point: point.timestamp)
        fill_verdict = treat_missing_data == "breaching"
        flags = [fill_verdict if point.value is None else is_breaching(point.value) for point in evaluated]
        return _decided(evaluated, flags, "ALARM" if sum(flags) >= m else "OK", filled=len(fills))
    keep_or_insufficient: State | None = "INSUFFICIENT_DATA" if treat_missing_data == "missing" else None
    if not existing:
        return _decided(missing[-n:], [], keep_or_insufficient, filled=0)
    flags = [is_breaching(_value(point)) for point in existing]
    if sum(flags) >= m:
        return _decided(existing, flags, "ALARM", filled=0)
    if not all(flags):
        return _decided(existing, flags, "OK", filled=0)
    # Only breaching datapoints, fewer than M: ALARM once the oldest is M periods old ("premature").
    oldest_age = len(datapoints) - list(datapoints).index(existing[0])
    if treat_missing_data == "missing" and oldest_age >= m:
        return replace(_decided(existing, flags, "ALARM", filled=0), premature=True)
    return _decided(existing, flags, keep_or_insufficient, filled=0)


def _value(point: Datapoint) -> float:
    if point.value is None:
        raise AssertionError("a missing datapoint has no value")
    return point.value


def _decided(
    evaluated: Sequence[Datapoint], flags: Sequence[bool], state: State | None, *, filled: int
) -> Decision:
    order = sorted(range(len(evaluated)), key=lambda i: evaluated[i].timestamp, reverse=True)
    return Decision(
        state=state,
        evaluated=tuple(evaluated[i] for i in order),
        breaching=tuple(flags[i] for i in order) if flags else (),
        filled=filled,
    )
