"""Reading the guardrail alarms (lambdas/rollout/aws/guardrail_alarms.py) from CloudWatch on moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from lambdas.rollout.aws.guardrail_alarms import (
    GuardrailAlarmsInAlarm,
    GuardrailAlarmsMissing,
    check_guardrail_alarms,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


@pytest.fixture
def cloudwatch() -> Iterator[CloudWatchClient]:
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        for name in ("orders-db-cpu-high", "payments-api-5xx", "network-errors"):
            client.put_metric_alarm(
                AlarmName=name,
                Namespace="Outside",
                MetricName=name,
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
            )
        yield client


def test_alarms_ok_or_without_data_let_the_rollout_go_on(cloudwatch: CloudWatchClient) -> None:
    cloudwatch.set_alarm_state(AlarmName="orders-db-cpu-high", StateValue="OK", StateReason="fine")
    # payments-api-5xx has no data yet (INSUFFICIENT_DATA): no sign of harm.
    check_guardrail_alarms(cloudwatch, ["orders-db-cpu-high", "payments-api-5xx"], endpoint="churn")
    check_guardrail_alarms(cloudwatch, [], endpoint="churn")


def test_every_alarm_in_alarm_is_named_with_its_reason(cloudwatch: CloudWatchClient) -> None:
    for name in ("orders-db-cpu-high", "network-errors"):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=f"{name} breached")
    with pytest.raises(GuardrailAlarmsInAlarm) as raised:
        check_guardrail_alarms(
            cloudwatch, ["orders-db-cpu-high", "payments-api-5xx", "network-errors"], endpoint="churn"
        )
    assert str(raised.value) == (
        "endpoint churn: guardrail alarm(s) in ALARM: orders-db-cpu-high (orders-db-cpu-high breached); "
        "network-errors (network-errors breached)"
    )


def test_an_alarm_that_does_not_exist_is_named(cloudwatch: CloudWatchClient) -> None:
    with pytest.raises(GuardrailAlarmsMissing, match=r"\['orders-db-cpu-hgih'\] do not exist"):
        check_guardrail_alarms(cloudwatch, ["payments-api-5xx", "orders-db-cpu-hgih"], endpoint="churn")
