"""The CloudWatch reader: what it fills in for each statistic, and a source without percentiles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from lambdas.rollout.aws.metrics_reader import CloudWatchWindowReader, WindowQuery, windows_from_series
from lambdas.shared.business_metric import BusinessMetricName

MINUTE = datetime(2026, 1, 1, tzinfo=UTC)


class FakeCloudWatch:
    """Answers every base series with one minute of data; fails the percentiles with `status` if set."""

    def __init__(self, status: int | None) -> None:
        self.status = status
        self.asked: list[list[str]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        queries = request["MetricDataQueries"]
        stats = [q["MetricStat"]["Stat"] for q in queries]
        self.asked.append(stats)
        if "p99" in stats and self.status is not None:
            metadata = {"HTTPStatusCode": self.status}
            error: Any = {"Error": {"Code": "InternalFailure"}, "ResponseMetadata": metadata}
            raise ClientError(error, "GetMetricData")
        values = {
            "Sum": 100.0,
            "SampleCount": 100.0,
            "Average": 90.0,
            "p50": 80.0,
            "p90": 150.0,
            "p99": 300.0,
        }
        return {
            "MetricDataResults": [
                {"Id": q["Id"], "Timestamps": [MINUTE], "Values": [values[q["MetricStat"]["Stat"]]]}
                for q in queries
            ]
        }


def query(statistic: str) -> WindowQuery:
    return WindowQuery(
        endpoint_name="e",
        champion="champion",
        challenger="challenger",
        business_metric=BusinessMetricName(namespace="mlrollout/business", name="ConversionRate"),
        start=int(MINUTE.timestamp()),
        end=int(MINUTE.timestamp()) + 60,
        latency_statistic=cast(Any, statistic),
    )


def test_with_the_average_the_reader_sets_every_percentile_to_it() -> None:
    series = {("champion", "requests"): {MINUTE: 10.0}, ("champion", "latency_count"): {MINUTE: 10.0}}
    series |= {("champion", "latency_average"): {MINUTE: 90.0}}
    windows = windows_from_series(series, "champion", "challenger")
    latency = windows.champion[0].latency
    assert latency is not None
    assert (latency.p50, latency.p90, latency.p99) == (90.0, 90.0, 90.0)
    assert windows.period_starts == (int(MINUTE.timestamp()),)


def test_latency_samples_are_capped_at_the_requests() -> None:
    series = {("champion", "requests"): {MINUTE: 10.0}, ("champion", "latency_count"): {MINUTE: 12.0}}
    series |= {("champion", "latency_average"): {MINUTE: 90.0}}
    latency = windows_from_series(series, "champion", "challenger").champion[0].latency
    assert latency is not None and latency.sample_count == 10


def test_percentiles_are_read_when_the_judge_compares_one() -> None:
    client = FakeCloudWatch(status=None)
    windows = CloudWatchWindowReader(client=cast(Any, client)).windows(query("p99"))
    latency = windows.challenger[0].latency
    assert latency is not None and (latency.p50, latency.p90, latency.p99) == (80.0, 150.0, 300.0)


def test_a_source_whose_percentiles_fail_on_the_server_gives_the_average_alone() -> None:
    client = FakeCloudWatch(status=500)
    windows = CloudWatchWindowReader(client=cast(Any, client)).windows(query("p99"))
    latency = windows.challenger[0].latency
    assert latency is not None and latency.p99 == latency.average == 90.0


def test_a_refused_percentile_request_is_an_error() -> None:
    client = FakeCloudWatch(status=400)
    with pytest.raises(ClientError):
        CloudWatchWindowReader(client=cast(Any, client)).windows(query("p99"))
