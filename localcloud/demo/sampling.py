"""What users saw of each variant, sampled from moto's CloudWatch: requests, error rate, latency p99."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from moto.cloudwatch.models import MetricDatumBase, cloudwatch_backends

from localcloud.cloudwatch.metric_alarms import PublishedMetrics, epoch_of, statistic_value
from localcloud.demo.story import ACCOUNT, REGION


def weights_of(described: dict[str, Any]) -> dict[str, float]:
    variants = described.get("ProductionVariants", [])
    total = sum(float(v.get("CurrentWeight", 0.0)) for v in variants) or 1.0
    return {
        str(v["VariantName"]): round(100 * float(v.get("CurrentWeight", 0.0)) / total, 1) for v in variants
    }


class VariantWindows:
    """What users saw of a variant over a window: its requests and 5XX rate, and its ModelLatency p99
    (nearest rank; moto answers no percentile statistics). Read from moto's CloudWatch store, which this
    process shares, each datapoint indexed once as it arrives (`PublishedMetrics`): asking moto's API
    every second scanned every datapoint of the story each time."""

    def __init__(self) -> None:
        self._published = PublishedMetrics()

    def window(self, endpoint: str, variant: str, start: datetime, end: datetime) -> dict[str, float | None]:
        store = self._published.update(cloudwatch_backends[ACCOUNT][REGION].metric_data)
        dimensions = frozenset({("EndpointName", endpoint), ("VariantName", variant)})
        low, high = epoch_of(start), epoch_of(end)

        def data(metric: str) -> list[MetricDatumBase]:
            return store.between(("AWS/SageMaker", metric, dimensions), low, high)

        requests = statistic_value("Sum", data("Invocations"))[0] or 0.0
        errors = statistic_value("Sum", data("Invocation5XXErrors"))[0] or 0.0
        latency = statistic_value("p99", data("ModelLatency"))[0]
        return {
            "requests": requests,
            "error_rate": 100.0 * errors / requests if requests else None,
            "latency_p99_ms": latency / 1000.0 if latency is not None and requests else None,
        }
