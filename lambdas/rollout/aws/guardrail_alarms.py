"""The guardrail alarms' states, read with CloudWatch DescribeAlarms (metric and composite alarms)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

__all__ = ["GuardrailAlarmsInAlarm", "GuardrailAlarmsMissing", "check_guardrail_alarms"]

# DescribeAlarms takes at most 100 names a call.
NAMES_PER_CALL = 100


class GuardrailAlarmsInAlarm(Exception):
    """A guardrail alarm is in ALARM: no rollout starts (or goes on) while the system is unhealthy."""


class GuardrailAlarmsMissing(Exception):
    """A guardrail alarm does not exist: the guard the config asks for is not there to watch."""


@dataclass(frozen=True, slots=True)
class AlarmState:
    name: str
    state: str
    reason: str


def read_alarm_states(client: CloudWatchClient, names: Sequence[str]) -> dict[str, AlarmState]:
    """The alarms' current states by name; an alarm that does not exist is absent."""
    states: dict[str, AlarmState] = {}
    for first in range(0, len(names), NAMES_PER_CALL):
        names_now = list(names[first : first + NAMES_PER_CALL])
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"NextToken": token} if token else {}
            page = client.describe_alarms(
                AlarmNames=names_now, AlarmTypes=["MetricAlarm", "CompositeAlarm"], **extra
            )
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                name = str(alarm["AlarmName"])
                states[name] = AlarmState(name, str(alarm["StateValue"]), str(alarm.get("StateReason", "")))
            token = page.get("NextToken")
            if not token:
                break
    return states


def check_guardrail_alarms(client: CloudWatchClient, names: Sequence[str], *, endpoint: str) -> None:
    """Raise naming every guardrail alarm that is missing or in ALARM; nothing when all are OK (or have
    too little data, which is no sign of harm)."""
    if not names:
        return
    states = read_alarm_states(client, names)
    missing = [name for name in names if name not in states]
    if missing:
        raise GuardrailAlarmsMissing(
            f"endpoint {endpoint}: guardrail alarm(s) {missing} do not exist in this account and region: "
            "create them or remove them from the endpoint's rollout.guardrails.alarms"
        )
    raised = [states[name] for name in names if states[name].state == "ALARM"]
    if raised:
        which = "; ".join(
            f"{alarm.name} ({alarm.reason})" if alarm.reason else alarm.name for alarm in raised
        )
        raise GuardrailAlarmsInAlarm(f"endpoint {endpoint}: guardrail alarm(s) in ALARM: {which}")
