"""Embedded metric format: a function's logged metrics reach moto's CloudWatch
(`localcloud.cloudwatch.emf`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from localcloud.awslambda.invocations import create_functions, route_lambda_invocations
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner
from localcloud.cloudwatch.emf import EmfError, metrics_in_log, publish_log_metrics
from tests.functional.localcloud.awslambda.test_runner import small_asset

AT_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DOCUMENT = {
    "_aws": {
        "Timestamp": AT_MS,
        "CloudWatchMetrics": [
            {
                "Namespace": "mlrollout",
                "Dimensions": [["EndpointName", "VariantName"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "LatencyMs", "Unit": "Milliseconds"},
                ],
            }
        ],
    },
    "EndpointName": "churn",
    "VariantName": "challenger",
    "Requests": 1,
    "LatencyMs": [3.5, 4.5],
    "service": "router",
}
# A handler that logs with Powertools Metrics, as the project's functions do.
POWERTOOLS = """
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

metrics = Metrics(namespace="mlrollout/business", service="feedback")

@metrics.log_metrics
def handler(event, context):
    metrics.add_dimension(name="EndpointName", value="churn")
    metrics.add_metric(name="Conversion", unit=MetricUnit.Count, value=event["converted"])
    return {"ok": True}
"""


def test_a_document_gives_one_datum_per_value_and_dimension_set() -> None:
    log = "START RequestId: 1\n" + json.dumps(DOCUMENT) + '\nnot json {"_aws"\nEND\n'
    data = metrics_in_log(log)
    assert [(d.name, d.value, d.unit) for d in data] == [
        ("Requests", 1.0, "Count"),
        ("LatencyMs", 3.5, "Milliseconds"),
        ("LatencyMs", 4.5, "Milliseconds"),
    ]
    assert data[0].dimensions == (("EndpointName", "churn"), ("VariantName", "challenger"))
    assert data[0].timestamp == datetime(2026, 1, 1)


def test_a_metric_without_its_value_or_dimension_is_named() -> None:
    broken = json.loads(json.dumps(DOCUMENT))
    del broken["VariantName"]
    with pytest.raises(EmfError, match=r"dimension\(s\) \['VariantName'\]"):
        metrics_in_log(json.dumps(broken))
    del broken["Requests"]
    with pytest.raises(EmfError, match="'Requests' of mlrollout has no value"):
        metrics_in_log(json.dumps(broken))


def test_published_metrics_are_read_back_with_get_metric_data() -> None:
    with mock_aws():
        assert publish_log_metrics(json.dumps(DOCUMENT), account_id="123456789012", region="us-east-1") == 3
        found = boto3.client("cloudwatch").get_metric_statistics(
            Namespace="mlrollout",
            MetricName="LatencyMs",
            Dimensions=[
                {"Name": "EndpointName", "Value": "churn"},
                {"Name": "VariantName", "Value": "challenger"},
            ],
            StartTime=datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
            EndTime=datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
            Period=60,
            Statistics=["Sum", "SampleCount"],
        )
        [point] = found["Datapoints"]
        assert (point["Sum"], point["SampleCount"]) == (8.0, 2.0)


def test_a_functions_powertools_metrics_reach_cloudwatch_through_lambda_invoke(tmp_path: Path) -> None:
    spec = FunctionSpec(
        function_name="feedback",
        handler="feedback.handler",
        code_dir=small_asset(tmp_path, "feedback", POWERTOOLS),
    )
    with mock_aws(), LambdaRunner([spec]) as runner, route_lambda_invocations(runner):
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        create_functions(boto3.client("lambda"), [spec], role_arn=role)
        for converted in (1, 0, 1):
            boto3.client("lambda").invoke(
                FunctionName="feedback", Payload=json.dumps({"converted": converted})
            )
        listed = boto3.client("cloudwatch").list_metrics(Namespace="mlrollout/business")["Metrics"]
        assert {m["MetricName"] for m in listed} == {"Conversion"}
        now = datetime.now(UTC)
        stats = boto3.client("cloudwatch").get_metric_statistics(
            Namespace="mlrollout/business",
            MetricName="Conversion",
            Dimensions=[{"Name": "EndpointName", "Value": "churn"}, {"Name": "service", "Value": "feedback"}],
            StartTime=now.replace(year=now.year - 1),
            EndTime=now.replace(year=now.year + 1),
            Period=3600 * 24 * 366 * 3,
            Statistics=["Sum", "SampleCount"],
        )
        [point] = stats["Datapoints"]
        assert (point["Sum"], point["SampleCount"]) == (2.0, 3.0)
