"""The same metric series through LocalStack's CloudWatch alarm evaluation and through the local one.

LocalStack evaluates an alarm as soon as PutMetricAlarm stores it, then every Period x EvaluationPeriods
seconds (not configurable), over windows ending at that instant rather than at the minute. So every
scenario here is dense (a datapoint every 10 s for 10 minutes, or one gap of whole minutes at the
oldest end) or empty, and both evaluators see the same periods whatever the alignment. LocalStack
evaluates single-metric alarms with the four threshold comparisons and composite alarms that OR
`ALARM("arn")` terms; metric math, percentiles and the other rule operators are the local evaluator's
alone (tests/functional/test_local_alarms.py).

LocalStack is the session's (`localstack_endpoint`, tests/functional/localstack.py): skipped only where no
Python >= 3.12 exists to run it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws

from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.cloudwatch.responses import emulate_alarm_apis

SETTLE_TIMEOUT_SECONDS = 60
REGION = "us-east-1"
ACCOUNT = "000000000000"  # LocalStack's default account for the "test" access key
NAMESPACE = "Local/Compare"
MINUTE_LATEST_START = 40  # seconds into the minute; see `early_in_a_minute`


@dataclass(frozen=True)
class Scenario:
    """An alarm and the datapoints of its metric: `(seconds before now, value)`."""

    name: str
    alarm: dict[str, Any]
    points: list[tuple[int, float]] = field(default_factory=list)


def dense(value: float, *, newest: int = 5, oldest: int = 600) -> list[tuple[int, float]]:
    """A datapoint every 10 s between `newest` and `oldest` seconds ago."""
    return [(age, value) for age in range(newest, oldest, 10)]


def scenario(name: str, points: list[tuple[int, float]], **alarm: Any) -> Scenario:
    settings: dict[str, Any] = {
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    settings.update(alarm)
    return Scenario(name, settings, points)


SCENARIOS = [
    scenario("above", dense(10.0)),
    scenario("below", dense(1.0)),
    scenario("less-than", dense(1.0), ComparisonOperator="LessThanThreshold"),
    scenario("at-or-above", dense(5.0), ComparisonOperator="GreaterThanOrEqualToThreshold"),
    scenario("at-or-below", dense(6.0), ComparisonOperator="LessThanOrEqualToThreshold"),
    scenario("sum-of-six", dense(1.0), Statistic="Sum"),  # six datapoints a minute
    scenario("sample-count", dense(1.0), Statistic="SampleCount", Threshold=6.0),
    scenario("average", dense(4.0), Statistic="Average", EvaluationPeriods=3, DatapointsToAlarm=3),
    scenario("three-of-three", dense(10.0), EvaluationPeriods=3),
    # Breaching datapoints in the newest two minutes only; the third minute is missing.
    scenario("two-of-three-gap-missing", dense(10.0, oldest=115), EvaluationPeriods=3, DatapointsToAlarm=2),
    scenario(
        "three-of-three-gap-breaching",
        dense(1.0, oldest=115),
        EvaluationPeriods=3,
        TreatMissingData="breaching",
    ),
    scenario("no-data-missing", [], TreatMissingData="missing"),
    scenario("no-data-ignore", [], TreatMissingData="ignore"),
    scenario("no-data-not-breaching", [], TreatMissingData="notBreaching", EvaluationPeriods=2),
    # Last: LocalStack evaluates alarms in the order they are stored, so this one changing means all did.
    scenario("no-data-breaching", [], TreatMissingData="breaching", EvaluationPeriods=2),
]
COMPOSITES = {"any-of-two": ["above", "below"], "none-of-two": ["below", "no-data-not-breaching"]}


def put_scenarios(client: Any, now: datetime, region_account: tuple[str, str]) -> None:
    region, account = region_account
    for item in SCENARIOS:
        data = [
            {"MetricName": item.name, "Value": value, "Timestamp": now - timedelta(seconds=age)}
            for age, value in item.points
        ]
        for start in range(0, len(data), 20):
            client.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 20])
    arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:"
    rules = {
        name: " OR ".join(f'ALARM("{arn}{child}")' for child in children)
        for name, children in COMPOSITES.items()
    }
    if account == ACCOUNT:  # LocalStack evaluates composites only when a child changes: create them first
        for name, rule in rules.items():
            client.put_composite_alarm(AlarmName=name, AlarmRule=rule)
    for item in SCENARIOS:
        client.put_metric_alarm(AlarmName=item.name, Namespace=NAMESPACE, MetricName=item.name, **item.alarm)
    if account != ACCOUNT:
        for name, rule in rules.items():
            client.put_composite_alarm(AlarmName=name, AlarmRule=rule)


def early_in_a_minute() -> datetime:
    """Now, at most 40 s into a minute (waiting up to 21 s for the next one).

    LocalStack's newest period ends at its evaluation instant, the local one at the minute. A gap
    scenario's second-newest minute then holds datapoints in both only when the series starts early in
    a minute.
    """
    into_minute = time.time() % 60
    if into_minute > MINUTE_LATEST_START:
        time.sleep(60 - into_minute + 1)
    return datetime.now(UTC)


def states(client: Any) -> dict[str, str]:
    """The scenarios' alarms (the LocalStack of the run holds other modules' alarms too)."""
    ours = {item.name for item in SCENARIOS} | set(COMPOSITES)
    found = client.describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return {
        alarm["AlarmName"]: alarm["StateValue"]
        for alarm in [*found["MetricAlarms"], *found["CompositeAlarms"]]
        if alarm["AlarmName"] in ours
    }


def test_localstack_and_the_local_evaluator_reach_the_same_states(localstack_endpoint: str) -> None:
    localstack = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=localstack_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # LocalStack's fixed test credentials
    )
    now = early_in_a_minute()
    put_scenarios(localstack, now, (REGION, ACCOUNT))
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while states(localstack).get(SCENARIOS[-1].name) != "ALARM":
        assert time.monotonic() < deadline, f"LocalStack evaluated nothing within {SETTLE_TIMEOUT_SECONDS} s"
        time.sleep(0.2)
    time.sleep(1)  # the composites follow their children's last change
    expected = states(localstack)

    with mock_aws(), emulate_alarm_apis():
        local = boto3.client("cloudwatch", region_name=REGION)
        put_scenarios(local, now, (REGION, "123456789012"))
        AlarmEvaluator(clock=now.timestamp).evaluate()
        actual = states(local)

    assert actual == expected
    assert set(expected.values()) == {"ALARM", "OK", "INSUFFICIENT_DATA"}  # the comparison covers every state
