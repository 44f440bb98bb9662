"""The CloudWatch APIs moto lacks and the stack needs: PutCompositeAlarm and DescribeAlarmHistory."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from unittest import mock

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import (
    Alarm,
)
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, EmptyResult

from localcloud.cloudwatch.alarm_evaluator import aware, find_alarm
from localcloud.cloudwatch.alarm_rules import parse_alarm_rule, rule_references
from localcloud.cloudwatch.models import (
    MOTO_VERSION,
    AlarmConfigurationError,
    MotoHasAlarmApisError,
)


def check_moto() -> None:
    for action in ("put_composite_alarm", "describe_alarm_history"):
        if hasattr(CloudWatchResponse, action):
            raise MotoHasAlarmApisError(
                f"moto's CloudWatchResponse has {action}: drop localcloud.cloudwatch's emulation of it "
                f"(written for moto {MOTO_VERSION}, which had none)"
            )


@contextmanager
def emulate_alarm_apis() -> Iterator[None]:
    """While open, moto answers PutCompositeAlarm and DescribeAlarmHistory (in-process and through its server)

    PutCompositeAlarm checks the rule (a `ValidationError` names the problem), creates the alarm in
    INSUFFICIENT_DATA as CloudWatch does, and keeps the state of an alarm it updates. DescribeAlarmHistory
    lists the `StateUpdate` items (moto records no configuration or action history), newest first unless
    `ScanBy` says otherwise, and only metric alarms unless `AlarmTypes` names composites, as the API does.
    """
    check_moto()
    with (
        mock.patch.object(CloudWatchResponse, "put_composite_alarm", _put_composite_alarm, create=True),
        mock.patch.object(CloudWatchResponse, "describe_alarm_history", _describe_alarm_history, create=True),
    ):
        yield


def _put_composite_alarm(response: CloudWatchResponse) -> ActionResult:
    backend = response.cloudwatch_backend
    name = str(response._get_param("AlarmName"))
    rule = str(response._get_param("AlarmRule") or "")
    try:
        references = rule_references(parse_alarm_rule(rule))
    except AlarmConfigurationError as error:
        raise ValidationError(str(error)) from None
    for reference in references:
        if find_alarm(reference, list(backend.alarms.values())) is None:
            raise ValidationError(f"Could not find alarm {reference} named in the AlarmRule of {name}")
    previous = backend.alarms.get(name)
    alarm = backend.put_metric_alarm(
        name=name,
        namespace=None,  # type: ignore[arg-type]
        metric_name=None,  # type: ignore[arg-type]
        comparison_operator=None,  # type: ignore[arg-type]
        evaluation_periods=None,  # type: ignore[arg-type]
        period=None,  # type: ignore[arg-type]
        threshold=None,  # type: ignore[arg-type]
        statistic=None,  # type: ignore[arg-type]
        description=response._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=response._get_param("AlarmActions", []),
        ok_actions=response._get_param("OKActions", []),
        insufficient_data_actions=response._get_param("InsufficientDataActions", []),
        actions_enabled=response._get_bool_param("ActionsEnabled"),
        rule=rule,
        tags=response._get_param("Tags", []),
    )
    if previous is not None and previous.rule is not None:
        alarm.state_value = previous.state_value
        alarm.state_reason = previous.state_reason
        alarm.state_reason_data = previous.state_reason_data
        alarm.state_updated_timestamp = previous.state_updated_timestamp
        alarm.history = previous.history
    else:
        alarm.state_value = "INSUFFICIENT_DATA"
    return EmptyResult()


@dataclass(frozen=True)
class _Snapshot:
    value: str
    reason: str
    reason_data: str | None
    timestamp: datetime


def _history_items(alarm: Alarm) -> list[dict[str, Any]]:
    # moto's history holds the state before each update (type, reason, data, value, time), oldest first.
    snapshots = [
        _Snapshot(value, reason, data, aware(when)) for _, reason, data, value, when in alarm.history
    ]
    snapshots.append(
        _Snapshot(
            alarm.state_value,
            alarm.state_reason,
            alarm.state_reason_data,
            aware(alarm.state_updated_timestamp),
        )
    )
    items = []
    for old, new in itertools.pairwise(snapshots):

        def state(snapshot: _Snapshot) -> dict[str, Any]:
            entry: dict[str, Any] = {"stateValue": snapshot.value, "stateReason": snapshot.reason}
            if snapshot.reason_data not in (None, "", "{}"):
                entry["stateReasonData"] = json.loads(str(snapshot.reason_data))
            return entry

        items.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if alarm.rule is not None else "MetricAlarm",
                "Timestamp": new.timestamp,
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old.value} to {new.value}",
                "HistoryData": json.dumps({"version": "1.0", "oldState": state(old), "newState": state(new)}),
            }
        )
    return items


def _describe_alarm_history(response: CloudWatchResponse) -> ActionResult:
    backend = response.cloudwatch_backend
    name = response._get_param("AlarmName")
    types = response._get_param("AlarmTypes") or ["MetricAlarm"]
    item_type = response._get_param("HistoryItemType")
    start, end = response._get_param("StartDate"), response._get_param("EndDate")
    alarms = [alarm for alarm in backend.alarms.values() if name in (None, alarm.name)]
    items = [item for alarm in alarms for item in _history_items(alarm) if item["AlarmType"] in types]
    if item_type:
        items = [item for item in items if item["HistoryItemType"] == item_type]
    if start is not None:
        items = [item for item in items if item["Timestamp"] >= aware(start)]
    if end is not None:
        items = [item for item in items if item["Timestamp"] <= aware(end)]
    items.sort(
        key=lambda item: item["Timestamp"], reverse=response._get_param("ScanBy") != "TimestampAscending"
    )
    offset = int(response._get_param("NextToken") or 0)
    limit = int(response._get_param("MaxRecords") or 100)
    page = items[offset : offset + limit]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + limit < len(items):
        result["NextToken"] = str(offset + limit)
    return ActionResult(result)
