"""Per-variant windows for the judge, from CloudWatch GetMetricData.

One window per metric period (60 s by default) in which either variant has data, champion and
challenger paired on the same minutes. Per variant (dimensions EndpointName + VariantName):

* requests      -- AWS/SageMaker ``Invocations`` Sum;
* errors_5xx    -- ``Invocation5XXErrors`` Sum (4XX are the caller's fault and count for neither);
* model_errors  -- ``InvocationModelErrors`` Sum (the container answered with an error or not at all);
* latency       -- ``ModelLatency`` SampleCount and Average, and p50 / p90 / p99 when the judge compares
                   a percentile (read only then: with ``average`` they are set to the average, which
                   the judge does not look at);
* outcomes      -- the endpoint's business metric (one 0/1 value per feedback): SampleCount = trials,
                   Sum = successes.

CloudWatch counts of different metrics arrive separately, so a window's errors are capped at its
requests and its successes at its trials.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.rollout.judge import LatencyStats, RolloutWindows, VariantWindow
from lambdas.rollout.judge_settings import LatencyStatistic
from lambdas.shared.business_metric import BusinessMetricName

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDataQueryTypeDef, MetricStatTypeDef

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
DEFAULT_PERIOD_SECONDS = 60
PERCENTILES = ("p50", "p90", "p99")

# series key -> (metric name, statistic); the business metric's name comes from the endpoint.
SAGEMAKER_SERIES = {
    "requests": ("Invocations", "Sum"),
    "errors_5xx": ("Invocation5XXErrors", "Sum"),
    "model_errors": ("InvocationModelErrors", "Sum"),
    "latency_count": ("ModelLatency", "SampleCount"),
    "latency_average": ("ModelLatency", "Average"),
}
BUSINESS_SERIES = {"outcome_successes": "Sum", "outcome_trials": "SampleCount"}

Series = dict[tuple[str, str], dict[datetime, float]]
"""(variant, series key) -> value per period start."""


@dataclass(frozen=True, slots=True)
class WindowQuery:
    endpoint_name: str
    champion: str
    challenger: str
    business_metric: BusinessMetricName
    start: int
    """epoch seconds, inclusive (aligned up to the next whole period)"""
    end: int
    """epoch seconds, exclusive"""
    latency_statistic: LatencyStatistic = "average"


class CloudWatchWindowReader:
    def __init__(self, *, client: CloudWatchClient, period_seconds: int = DEFAULT_PERIOD_SECONDS) -> None:
        if period_seconds not in (1, 5, 10, 30) and (period_seconds < 60 or period_seconds % 60):
            raise ValueError(f"a CloudWatch period is 1, 5, 10, 30 or a multiple of 60, got {period_seconds}")
        self._client = client
        self._period = period_seconds

    def windows(self, query: WindowQuery) -> RolloutWindows:
        """Champion and challenger windows between start and end; none when the range is empty."""
        # From the first whole period after the start: the minute the weights changed in is mixed.
        start = -(-query.start // self._period) * self._period
        if query.end <= start:
            return RolloutWindows()
        average = replace(query, latency_statistic="average")
        series = self._fetch(list(_queries(average, self._period)), start, query.end)
        statistic = query.latency_statistic
        if statistic != "average":
            # A source may have no percentiles (a metric published as statistic sets, an emulator
            # whose GetMetricData fails on them): the windows then carry the average alone, and the
            # judge, seeing no percentile in them, judges the average and says so.
            try:
                series |= self._fetch(list(_percentile_queries(query, self._period)), start, query.end)
            except ClientError as error:
                if int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) < 500:
                    raise
                statistic = "average"
        return windows_from_series(series, query.champion, query.challenger, statistic)

    def _fetch(self, queries: list[MetricDataQueryTypeDef], start: int, end: int) -> Series:
        ids = {str(q["Id"]): str(q["Label"]) for q in queries}
        series: Series = defaultdict(dict)
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"NextToken": token} if token else {}
            page = self._client.get_metric_data(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(start, UTC),
                EndTime=datetime.fromtimestamp(end, UTC),
                ScanBy="TimestampAscending",
                **extra,
            )
            for result in page.get("MetricDataResults", []):
                variant, key = ids[str(result.get("Id"))].split("/", 1)
                points = zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
                series[(variant, key)].update((timestamp, float(value)) for timestamp, value in points)
            token = page.get("NextToken")
            if not token:
                return series


def _percentile_queries(query: WindowQuery, period: int) -> Iterator[MetricDataQueryTypeDef]:
    for index, variant in enumerate((query.champion, query.challenger)):
        dimensions: list[DimensionTypeDef] = [
            {"Name": "EndpointName", "Value": query.endpoint_name},
            {"Name": "VariantName", "Value": variant},
        ]
        for name in PERCENTILES:
            metric_stat: MetricStatTypeDef = {
                "Metric": {
                    "Namespace": SAGEMAKER_NAMESPACE,
                    "MetricName": "ModelLatency",
                    "Dimensions": dimensions,
                },
                "Period": period,
                "Stat": name,
            }
            yield {"Id": f"v{index}_{name}", "Label": f"{variant}/{name}", "MetricStat": metric_stat}


def _queries(query: WindowQuery, period: int) -> Iterator[MetricDataQueryTypeDef]:
    series = dict(SAGEMAKER_SERIES)
    for index, variant in enumerate((query.champion, query.challenger)):
        dimensions: list[DimensionTypeDef] = [
            {"Name": "EndpointName", "Value": query.endpoint_name},
            {"Name": "VariantName", "Value": variant},
        ]
        business = query.business_metric
        metrics = {key: (SAGEMAKER_NAMESPACE, metric, stat) for key, (metric, stat) in series.items()} | {
            key: (business.namespace, business.name, stat) for key, stat in BUSINESS_SERIES.items()
        }
        for key, (namespace, metric, statistic) in metrics.items():
            metric_stat: MetricStatTypeDef = {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": statistic,
            }
            # The label carries variant and series back from the answer; ids only allow [a-zA-Z0-9_].
            yield {"Id": f"v{index}_{key}", "Label": f"{variant}/{key}", "MetricStat": metric_stat}


def windows_from_series(
    series: Mapping[tuple[str, str], Mapping[datetime, float]],
    champion: str,
    challenger: str,
    latency_statistic: LatencyStatistic = "average",
) -> RolloutWindows:
    """Pair the variants' values per period; a period either variant has data in is a window."""
    periods = sorted({timestamp for values in series.values() for timestamp in values})
    return RolloutWindows(
        champion=tuple(_window(series, champion, period, latency_statistic) for period in periods),
        challenger=tuple(_window(series, challenger, period, latency_statistic) for period in periods),
        period_starts=tuple(int(period.timestamp()) for period in periods),
    )


def _window(
    series: Mapping[tuple[str, str], Mapping[datetime, float]],
    variant: str,
    period: datetime,
    latency_statistic: LatencyStatistic,
) -> VariantWindow:
    def value(key: str) -> float:
        return series.get((variant, key), {}).get(period, 0.0)

    requests = round(value("requests"))
    trials = round(value("outcome_trials"))
    return VariantWindow(
        requests=requests,
        errors_5xx=min(requests, round(value("errors_5xx"))),
        model_errors=min(requests, round(value("model_errors"))),
        latency=_latency(value, latency_statistic, requests),
        outcome_trials=trials,
        outcome_successes=min(trials, max(0, round(value("outcome_successes")))),
    )


def _latency(value: Any, latency_statistic: LatencyStatistic, requests: int) -> LatencyStats | None:
    # Like the errors, the latency samples of a window are capped at its requests (the series arrive
    # separately); a window without requests has no latency to compare.
    count = min(requests, round(value("latency_count")))
    if count == 0:
        return None
    average = value("latency_average")
    if latency_statistic == "average":
        return LatencyStats(sample_count=count, average=average, p50=average, p90=average, p99=average)
    return LatencyStats(
        sample_count=count, average=average, p50=value("p50"), p90=value("p90"), p99=value("p99")
    )
