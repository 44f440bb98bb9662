"""What an alarm evaluation reads and decides: states, statistics, datapoints, decisions and transitions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


STATES: tuple[State, ...] = ("OK", "ALARM", "INSUFFICIENT_DATA")


TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


EVENT_SOURCE = "aws.cloudwatch"


EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"


DEFAULT_ACCOUNT_ID = "123456789012"


# moto's reason for a new alarm, which it puts in OK (CloudWatch puts new alarms in INSUFFICIENT_DATA).
MOTO_CREATION_REASON = "Unchecked: Initial alarm creation"


# moto 5.2.5 has neither PutCompositeAlarm nor DescribeAlarmHistory; a later one may (`check_moto`).
MOTO_VERSION = "5.2.5"


COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (
        lambda value, threshold: value >= threshold,
        "greater than or equal to",
    ),
    "GreaterThanThreshold": (lambda value, threshold: value > threshold, "greater than"),
    "LessThanThreshold": (lambda value, threshold: value < threshold, "less than"),
    "LessThanOrEqualToThreshold": (lambda value, threshold: value <= threshold, "less than or equal to"),
}


ANOMALY_COMPARISONS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)


PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d{1,10})?|100)")


class AlarmConfigurationError(ValueError):
    """An alarm this evaluator cannot evaluate faithfully; the message names the alarm and the reason."""


class AlarmEvaluationStopped(RuntimeError):
    """The background evaluation of `AlarmEvaluator.running` failed; the cause is chained."""


class MotoHasAlarmApisError(RuntimeError):
    """moto implements an API `emulate_alarm_apis` adds: the emulation would hide moto's behaviour."""


@dataclass(frozen=True)
class StateTransition:
    """One alarm state change, as written to moto and sent to EventBridge."""

    alarm_name: str
    alarm_arn: str
    alarm_type: Literal["MetricAlarm", "CompositeAlarm"]
    previous_state: State
    state: State
    reason: str
    reason_data: str
    timestamp: datetime


@dataclass(frozen=True)
class Datapoint:
    """One period of the evaluation range: its start (epoch seconds) and value, None when missing."""

    timestamp: int
    value: float | None
    sample_count: float | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation. `state` None keeps the current state (`ignore`).

    `evaluated` are the datapoints the decision used, newest first; `breaching` says for each whether
    it breached (a filled missing datapoint has value None and the treatment's verdict); `filled` counts
    the missing datapoints filled by the treatment.
    """

    state: State | None
    evaluated: tuple[Datapoint, ...]
    breaching: tuple[bool, ...]
    filled: int
    premature: bool = False
