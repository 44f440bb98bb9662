"""What users saw of a variant over a window, from moto's CloudWatch store (`localcloud.demo.sampling`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws

from localcloud.demo.sampling import VariantWindows
from localcloud.demo.story import REGION

START = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


def publish(cloudwatch: Any, variant: str, at: datetime, metric: str, values: list[float]) -> None:
    dimensions = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": variant}]
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[{"MetricName": metric, "Dimensions": dimensions, "Timestamp": at, "Values": values}],
    )


def test_a_window_counts_its_variants_requests_errors_and_latency_p99_as_they_arrive() -> None:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        windows = VariantWindows()
        end = START + timedelta(minutes=2)
        assert windows.window("ep", "champion", START, end) == {
            "requests": 0.0,
            "error_rate": None,
            "latency_p99_ms": None,
        }
        inside, outside = START + timedelta(seconds=30), START - timedelta(seconds=1)
        publish(cloudwatch, "champion", inside, "Invocations", [60.0, 40.0])
        publish(cloudwatch, "champion", inside, "Invocation5XXErrors", [5.0])
        publish(cloudwatch, "champion", inside, "ModelLatency", [float(v) for v in range(1000, 101000, 1000)])
        publish(cloudwatch, "champion", outside, "Invocations", [1000.0])  # before the window
        publish(cloudwatch, "challenger", inside, "Invocations", [7.0])  # another variant
        seen = windows.window("ep", "champion", START, end)
        assert seen == {"requests": 100.0, "error_rate": 5.0, "latency_p99_ms": 99.0}
        publish(cloudwatch, "champion", inside + timedelta(seconds=20), "Invocations", [100.0])
        assert windows.window("ep", "champion", START, end)["requests"] == 200.0
        assert windows.window("ep", "challenger", START, end)["requests"] == 7.0
