"""A metric alarm's plan (its query or metric math) and its datapoints, read from moto's metric data."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import (
    Alarm,
    MetricAggregatedDatum,
    MetricDatum,
    MetricDatumBase,
)

from localcloud.cloudwatch.decisions import evaluation_range_length
from localcloud.cloudwatch.metric_math import (
    Expression,
    MetricMathError,
    Series,
    evaluate_expression,
    parse_expression,
)
from localcloud.cloudwatch.models import (
    ANOMALY_COMPARISONS,
    COMPARISONS,
    PERCENTILE,
    STATISTICS,
    TREATMENTS,
    AlarmConfigurationError,
    Datapoint,
)


@dataclass(frozen=True)
class MetricQuery:
    """One metric's statistic per period: a `MetricStat` query, or a single-metric alarm's metric."""

    query_id: str
    namespace: str
    metric_name: str
    dimensions: frozenset[tuple[str, str]]
    period: int
    statistic: str
    unit: str | None = None


@dataclass(frozen=True)
class MetricAlarmPlan:
    """What to compute for a metric alarm, checked once per evaluation."""

    alarm: Alarm
    period: int
    queries: tuple[MetricQuery, ...]
    expressions: tuple[tuple[str, Expression], ...]
    returned_id: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    low_sample_minimum: float | None

    @property
    def is_math(self) -> bool:
        return bool(self.expressions) or bool(self.alarm.metric_data_queries)


def metric_alarm_plan(alarm: Alarm) -> MetricAlarmPlan:
    """The alarm's evaluation plan; `AlarmConfigurationError` says why an alarm cannot be evaluated."""
    refuse = _refusal(alarm.name)
    comparison = str(alarm.comparison_operator)
    if comparison in ANOMALY_COMPARISONS or alarm.threshold_metric_id:
        raise refuse(f"{comparison} compares with an anomaly detection band, which is not emulated")
    if comparison not in COMPARISONS:
        raise refuse(f"unknown ComparisonOperator {comparison!r} (one of {', '.join(COMPARISONS)})")
    if alarm.threshold is None:
        raise refuse("has no Threshold")
    treatment = alarm.treat_missing_data or "missing"
    if treatment not in TREATMENTS:
        raise refuse(f"unknown TreatMissingData {treatment!r} (one of {', '.join(TREATMENTS)})")
    evaluation_periods = _positive_int(alarm.evaluation_periods, "EvaluationPeriods", refuse)
    datapoints_to_alarm = (
        evaluation_periods
        if alarm.datapoints_to_alarm is None
        else _positive_int(alarm.datapoints_to_alarm, "DatapointsToAlarm", refuse)
    )
    if datapoints_to_alarm > evaluation_periods:
        raise refuse(
            f"DatapointsToAlarm {datapoints_to_alarm} exceeds EvaluationPeriods {evaluation_periods}"
        )
    if alarm.metric_data_queries:
        queries, expressions, returned_id = _math_queries(alarm, refuse)
        periods = {query.period for query in queries}
        if len(periods) != 1:
            raise refuse(f"the metrics of a math alarm must share one period, found {sorted(periods)}")
        period, low_sample_minimum = periods.pop(), None
    else:
        query = _single_metric_query(alarm, refuse)
        queries, expressions, returned_id = [query], [], query.query_id
        period, low_sample_minimum = query.period, _low_sample_minimum(alarm, query.statistic)
    if period not in (10, 30) and period % 60:
        raise refuse(f"Period {period} is neither 10, 30 nor a multiple of 60 seconds")
    return MetricAlarmPlan(
        alarm=alarm,
        period=period,
        queries=tuple(queries),
        expressions=tuple(expressions),
        returned_id=returned_id,
        threshold=float(alarm.threshold),
        comparison=comparison,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data=treatment,
        low_sample_minimum=low_sample_minimum,
    )


Refusal = Callable[[str], AlarmConfigurationError]


def _refusal(alarm_name: str) -> Refusal:
    return lambda problem: AlarmConfigurationError(f"alarm {alarm_name}: {problem}")


def _single_metric_query(alarm: Alarm, refuse: Refusal) -> MetricQuery:
    statistic = alarm.extended_statistic or alarm.statistic
    if not statistic:
        raise refuse("has neither Statistic nor ExtendedStatistic")
    return MetricQuery(
        query_id="m1",
        namespace=str(alarm.namespace),
        metric_name=str(alarm.metric_name),
        dimensions=frozenset((str(d.name), str(d.value)) for d in alarm.dimensions),
        period=_positive_int(alarm.period, "Period", refuse),
        statistic=_statistic(str(statistic), refuse),
        unit=alarm.unit,
    )


def _low_sample_minimum(alarm: Alarm, statistic: str) -> float | None:
    """The samples a percentile needs under `EvaluateLowSampleCountPercentile: ignore` (10/(1-p), 10/p)."""
    if not statistic.startswith("p") or alarm.evaluate_low_sample_count_percentile != "ignore":
        return None
    fraction = float(statistic[1:]) / 100
    return 10 / (1 - fraction) if fraction >= 0.5 else 10 / fraction


def _math_queries(
    alarm: Alarm, refuse: Refusal
) -> tuple[list[MetricQuery], list[tuple[str, Expression]], str]:
    queries: list[MetricQuery] = []
    expressions: list[tuple[str, Expression]] = []
    returned: list[str] = []
    for query in alarm.metric_data_queries:
        query_id = str(query.id)
        if str(query.return_data).lower() != "false":  # ReturnData defaults to true
            returned.append(query_id)
        if getattr(query, "account_id", None):
            raise refuse(f"query {query_id} reads another account, which is not emulated")
        if query.expression:
            try:
                expressions.append((query_id, parse_expression(str(query.expression))))
            except MetricMathError as error:
                raise refuse(str(error)) from None
        elif query.metric_stat is not None:
            stat = query.metric_stat
            queries.append(
                MetricQuery(
                    query_id=query_id,
                    namespace=str(stat.metric.namespace),
                    metric_name=str(stat.metric.metric_name),
                    dimensions=frozenset((str(d.name), str(d.value)) for d in stat.metric.dimensions),
                    period=_positive_int(stat.period, f"query {query_id} Period", refuse),
                    statistic=_statistic(str(stat.stat), refuse),
                    unit=stat.unit,
                )
            )
        else:
            raise refuse(f"query {query_id} has neither Expression nor MetricStat")
    if len(returned) != 1:
        raise refuse(f"exactly one query must have ReturnData true, found {len(returned)}: {returned}")
    ordered = _dependency_order(expressions, {query.query_id for query in queries}, refuse)
    return queries, ordered, returned[0]


def _positive_int(value: Any, what: str, refuse: Refusal) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise refuse(f"{what} must be a positive whole number, got {value!r}") from None
    if number < 1:
        raise refuse(f"{what} must be a positive whole number, got {value!r}")
    return number


def _statistic(statistic: str, refuse: Refusal) -> str:
    if statistic in STATISTICS or PERCENTILE.fullmatch(statistic):
        return statistic
    raise refuse(
        f"statistic {statistic!r} is not supported by the local evaluator "
        f"({', '.join(STATISTICS)} or a percentile pNN)"
    )


def _dependency_order(
    expressions: list[tuple[str, Expression]],
    metric_ids: set[str],
    refuse: Refusal,
) -> list[tuple[str, Expression]]:
    ordered: list[tuple[str, Expression]] = []
    known = set(metric_ids)
    pending = list(expressions)
    while pending:
        ready = [(qid, expression) for qid, expression in pending if expression.references <= known]
        if not ready:
            unresolved = {qid: sorted(expr.references - known) for qid, expr in pending}
            raise refuse(
                f"expressions read ids that no query defines (or read each other in a cycle): {unresolved}"
            )
        for item in ready:
            ordered.append(item)
            known.add(item[0])
            pending.remove(item)
    return ordered


MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


class MetricStore:
    """moto's datapoints, grouped by metric identity (namespace, name, exact dimensions), each metric's in
    time order; `beside`'s are read too. `add` indexes more, so that a store kept between evaluations
    indexes each datapoint once (`PublishedMetrics`)."""

    def __init__(self, data: Iterable[MetricDatumBase] = (), *, beside: MetricStore | None = None) -> None:
        self._by_metric: dict[MetricKey, tuple[list[float], list[MetricDatumBase]]] = {}
        self._beside = beside
        self.add(data)

    def add(self, data: Iterable[MetricDatumBase]) -> None:
        for datum in data:
            key = (
                str(datum.namespace),
                str(datum.name),
                frozenset((str(d.name), str(d.value)) for d in datum.dimensions),
            )
            moments, stored = self._by_metric.setdefault(key, ([], []))
            moment = epoch_of(datum.timestamp)
            at = bisect.bisect_right(moments, moment)  # the end, for data that arrives in time order
            moments.insert(at, moment)
            stored.insert(at, datum)

    def between(self, key: MetricKey, start: float, end: float) -> list[MetricDatumBase]:
        """The metric's datapoints from `start` (inclusive) to `end` (exclusive), in time order."""
        moments, stored = self._by_metric.get(key, ([], []))
        found = stored[bisect.bisect_left(moments, start) : bisect.bisect_left(moments, end)]
        return found + self._beside.between(key, start, end) if self._beside is not None else found

    def datapoints(self, query: MetricQuery, starts: Sequence[int]) -> list[Datapoint]:
        key = (query.namespace, query.metric_name, query.dimensions)
        points: list[Datapoint] = []
        for start in starts:
            in_period = [
                datum
                for datum in self.between(key, start, start + query.period)
                if query.unit is None or datum.unit == query.unit
            ]
            value, samples = statistic_value(query.statistic, in_period)
            points.append(Datapoint(start, value, samples if value is not None else None))
        return points


class PublishedMetrics:
    """The datapoints published to a moto CloudWatch backend (PutMetricData), indexed as they arrive: a
    fresh moto (a new backend) starts the index again."""

    def __init__(self) -> None:
        self._source: list[MetricDatumBase] | None = None
        self._indexed = 0
        self.store = MetricStore()

    def update(self, published: list[MetricDatumBase]) -> MetricStore:
        if published is not self._source or len(published) < self._indexed:
            self._source, self._indexed, self.store = published, 0, MetricStore()
        count = len(published)
        self.store.add(published[self._indexed : count])
        self._indexed = count
        return self.store


def statistic_value(statistic: str, data: Sequence[MetricDatumBase]) -> tuple[float | None, float]:
    """The statistic of one period and its sample count; (None, count) when the period has no value."""
    singles = [float(d.value) for d in data if isinstance(d, MetricDatum)]
    sets = [d for d in data if isinstance(d, MetricAggregatedDatum)]
    samples = len(singles) + sum(float(s.sample_count) for s in sets)
    if samples == 0:
        return None, 0.0
    if statistic == "SampleCount":
        return samples, samples
    total = sum(singles) + sum(float(s.sum) for s in sets)
    if statistic == "Sum":
        return total, samples
    if statistic == "Average":
        return total / samples, samples
    if statistic == "Minimum":
        return min(singles + [float(s.min) for s in sets]), samples
    if statistic == "Maximum":
        return max(singles + [float(s.max) for s in sets]), samples
    values = list(singles)
    for statistic_set in sets:
        if float(statistic_set.sample_count) != 1 and float(statistic_set.min) != float(statistic_set.max):
            return None, samples  # a set of differing values has no percentile
        values.extend([float(statistic_set.min)] * max(1, round(float(statistic_set.sample_count))))
    values.sort()
    rank = math.ceil(float(statistic[1:]) / 100 * len(values))
    return values[max(rank, 1) - 1], samples


def epoch_of(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def period_starts(now: float, period: int, count: int) -> list[int]:
    """The starts of the `count` periods evaluated at `now`, oldest first (the newest ends at the minute)."""
    step = 60 if period >= 60 else period
    end = int(now // step) * step
    return [end - period * (count - index) for index in range(count)]


def alarm_datapoints(plan: MetricAlarmPlan, store: MetricStore, now: float) -> list[Datapoint]:
    """The alarm's series over its evaluation range, oldest first."""
    starts = period_starts(now, plan.period, evaluation_range_length(plan.evaluation_periods))
    by_query = {query.query_id: store.datapoints(query, starts) for query in plan.queries}
    if not plan.expressions:
        return by_query[plan.returned_id]
    series: dict[str, Series] = {
        query_id: {p.timestamp: p.value for p in points if p.value is not None}
        for query_id, points in by_query.items()
    }
    for query_id, expression in plan.expressions:
        try:
            series[query_id] = evaluate_expression(expression, series, starts)
        except MetricMathError as error:
            raise AlarmConfigurationError(f"alarm {plan.alarm.name}: {error}") from None
    if plan.returned_id in by_query:
        return by_query[plan.returned_id]
    result = series[plan.returned_id]
    return [Datapoint(start, result.get(start)) for start in starts]
