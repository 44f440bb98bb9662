"""What users saw of each variant, sampled from moto's CloudWatch: requests, error rate, latency p99."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

from localcloud.demo.story import ACCOUNT, REGION


def weights_of(described: dict[str, Any]) -> dict[str, float]:
    variants = described.get("ProductionVariants", [])
    total = sum(float(v.get("CurrentWeight", 0.0)) for v in variants) or 1.0
    return {
        str(v["VariantName"]): round(100 * float(v.get("CurrentWeight", 0.0)) / total, 1) for v in variants
    }


def variant_window(
    cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime
) -> dict[str, float | None]:
    """A variant's requests and 5XX rate over the window from CloudWatch, and its ModelLatency p99.

    moto answers no percentile statistics, so the p99 (nearest rank) is taken from the window's
    datapoints in moto's store, which this process shares."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    period = max(60, int((end - start).total_seconds()) // 60 * 60)

    def statistic(metric: str, name: str) -> float | None:
        found = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=[name],
        )["Datapoints"]
        values = [float(point[name]) for point in found if name in point]
        if not values:
            return None
        return max(values) if name == "Maximum" else sum(values)

    requests = statistic("Invocations", "Sum") or 0.0
    errors = statistic("Invocation5XXErrors", "Sum") or 0.0
    latency = _percentile(_datapoints(endpoint, variant, "ModelLatency", start, end), 0.99)
    return {
        "requests": requests,
        "error_rate": 100.0 * errors / requests if requests else None,
        "latency_p99_ms": latency / 1000.0 if latency is not None and requests else None,
    }


def _datapoints(endpoint: str, variant: str, metric: str, start: datetime, end: datetime) -> list[float]:
    backend = cloudwatch_backends[ACCOUNT][REGION]
    low, high = start.replace(tzinfo=None), end.replace(tzinfo=None)
    wanted = {("EndpointName", endpoint), ("VariantName", variant)}
    return [
        float(getattr(datum, "value", 0.0))
        for datum in list(backend.metric_data)
        if datum.namespace == "AWS/SageMaker"
        and datum.name == metric
        and low <= datum.timestamp <= high
        and {(d.name, d.value) for d in datum.dimensions} == wanted
    ]


def _percentile(values: list[float], quantile: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]
