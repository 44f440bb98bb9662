"""The texts and data CloudWatch writes with a state change: reasons, reason data, alarm configurations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import (
    Alarm,
    Metric,
)

from localcloud.cloudwatch.metric_alarms import (
    MetricAlarmPlan,
)
from localcloud.cloudwatch.models import (
    COMPARISONS,
    Decision,
    State,
)


def iso(moment: datetime) -> str:
    """CloudWatch's timestamp format in reasons and events: 2019-10-02T17:04:40.989+0000."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def datetime_at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _number(value: float) -> str:
    return repr(float(value))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def metric_reason(plan: MetricAlarmPlan, decision: Decision, previous: str, state: State) -> str:
    n, m = plan.evaluation_periods, plan.datapoints_to_alarm
    if state == "INSUFFICIENT_DATA":
        unknown = n - sum(1 for point in decision.evaluated if point.value is not None)
        return f"Insufficient Data: {_plural(unknown, 'datapoint')} {_was(unknown)} unknown."
    treatment = "[Breaching]" if plan.treat_missing_data == "breaching" else "[NonBreaching]"
    if decision.filled and decision.filled == len(decision.evaluated):
        return (
            f"Threshold Crossed: no datapoints were received for {_plural(n, 'period')} and "
            f"{_plural(decision.filled, 'missing datapoint')} {_was(decision.filled)} treated as {treatment}."
        )
    wanted = state == "ALARM"
    counted = [
        point for point, flag in zip(decision.evaluated, decision.breaching, strict=True) if flag == wanted
    ]
    listed = ", ".join(
        f"{_number(point.value)} ({datetime_at(point.timestamp):%d/%m/%y %H:%M:%S})"
        for point in counted
        if point.value is not None
    )
    relation = COMPARISONS[plan.comparison][1]
    minimum = m if wanted else n - m + 1
    filled = (
        f" and {_plural(decision.filled, 'missing datapoint')} {_was(decision.filled)} treated as {treatment}"
        if decision.filled
        else ""
    )
    premature = " (the oldest breaching datapoint is at least M periods old)" if decision.premature else ""
    return (
        f"Threshold Crossed: {len(counted)} out of the last {len(decision.evaluated)} datapoints [{listed}] "
        f"{_was(len(counted))} {'' if wanted else 'not '}{relation} the threshold ({_number(plan.threshold)})"
        f"{filled}{premature} (minimum {_plural(minimum, 'datapoint')} for {previous} -> {state} transition)."
    )


def metric_reason_data(plan: MetricAlarmPlan, decision: Decision, now: float) -> dict[str, Any]:
    alarm = plan.alarm
    data: dict[str, Any] = {"version": "1.0", "queryDate": iso(datetime_at(now))}
    if decision.evaluated:
        data["startDate"] = iso(datetime_at(decision.evaluated[-1].timestamp))
    if not plan.is_math:
        if alarm.extended_statistic:
            data["extendedStatistic"] = alarm.extended_statistic
        else:
            data["statistic"] = alarm.statistic
        if alarm.unit:
            data["unit"] = alarm.unit
    data["period"] = plan.period
    data["recentDatapoints"] = [p.value for p in reversed(decision.evaluated) if p.value is not None]
    data["threshold"] = plan.threshold
    evaluated: list[dict[str, Any]] = []
    for point in decision.evaluated:
        entry: dict[str, Any] = {"timestamp": iso(datetime_at(point.timestamp))}
        if point.value is not None:
            if not plan.is_math and point.sample_count is not None:
                entry["sampleCount"] = point.sample_count
            entry["value"] = point.value
        evaluated.append(entry)
    data["evaluatedDatapoints"] = evaluated
    return data


def metric_configuration(alarm: Alarm) -> dict[str, Any]:
    """The event's `configuration`: the description and the metrics, as CloudWatch's events show them."""
    configuration: dict[str, Any] = {}
    if alarm.description:
        configuration["description"] = alarm.description
    metrics: list[dict[str, Any]] = []
    if alarm.metric_data_queries:
        for query in alarm.metric_data_queries:
            entry: dict[str, Any] = {"id": query.id}
            if query.expression:
                entry["expression"] = query.expression
            if query.label:
                entry["label"] = query.label
            if query.metric_stat is not None:
                stat = query.metric_stat
                entry["metricStat"] = _metric_stat(stat.metric, stat.period, stat.stat, stat.unit)
            entry["returnData"] = str(query.return_data).lower() != "false"
            metrics.append(entry)
    else:
        metrics.append(
            {
                # CloudWatch gives the single metric a generated id; this one is stable per alarm.
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
                "metricStat": _metric_stat(
                    Metric(alarm.metric_name, alarm.namespace, alarm.dimensions),
                    alarm.period,
                    alarm.extended_statistic or alarm.statistic,
                    alarm.unit,
                ),
                "returnData": True,
            }
        )
    configuration["metrics"] = metrics
    return configuration


def _metric_stat(metric: Metric, period: Any, stat: Any, unit: Any) -> dict[str, Any]:
    metric_stat: dict[str, Any] = {
        "metric": {
            "dimensions": {str(d.name): str(d.value) for d in metric.dimensions},
            "name": metric.metric_name,
            "namespace": metric.namespace,
        },
        "period": int(period),
        "stat": stat,
    }
    if unit:
        metric_stat["unit"] = unit
    return metric_stat
