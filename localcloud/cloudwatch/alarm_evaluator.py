"""CloudWatch alarm evaluation on moto, which stores alarms and metric data but never evaluates them.

`AlarmEvaluator` reads moto's CloudWatch backend in-process (alarms and datapoints, whether they arrived
under `mock_aws` or through a `ThreadedMotoServer` in the same process), decides each alarm's state as
CloudWatch does, and on a change writes the state into moto (DescribeAlarms shows it), puts a
"CloudWatch Alarm State Change" event on the account's default EventBridge bus and publishes to the
alarm's SNS actions. `emulate_alarm_apis` adds PutCompositeAlarm and DescribeAlarmHistory, which moto
5.2.5 lacks; `put_template_alarms` creates a synthesized template's alarms through the API.

What CloudWatch does ("Using Amazon CloudWatch alarms", "Configuring how CloudWatch alarms treat
missing data", "Creating a composite alarm", "Alarm events and EventBridge"), and the emulation follows:

* **Periods.** One datapoint per `Period` (10, 30 or a multiple of 60 seconds). The newest period ends
  at the evaluation time cut to the minute (to the period below a minute): CloudWatch's own events show
  a 300 s alarm evaluated at 17:04:40 judging 16:59:00-17:04:00. The current, partial minute is not
  evaluated. The clock is injectable (`clock`, epoch seconds), so a test decides "now".
* **Statistics.** `Statistic` (SampleCount, Average, Sum, Minimum, Maximum) over the datapoints of the
  period with the alarm's exact dimensions (and `Unit`, if set). `ExtendedStatistic` pNN: nearest rank
  over the raw values. CloudWatch's percentiles are approximations from its own histograms and may
  differ slightly on large samples; statistic sets count only when their values are all equal (SampleCount
  1 or Minimum = Maximum), as CloudWatch computes percentiles from sets; otherwise the period has no
  percentile. `EvaluateLowSampleCountPercentile: ignore` keeps the state while an evaluated period has
  fewer than 10/(1-p) samples (10/p below p50). Trimmed and other extended statistics are refused.
* **Metric math.** `Metrics` queries: every `MetricStat` series over the evaluation range, then the
  expressions in dependency order (`metric_math`: arithmetic, comparisons, IF, FILL); the
  one query with `ReturnData` true is the alarm's series. All metrics must share one period, as CloudWatch
  requires. Cross-account queries are refused.
* **Evaluation range and missing data.** CloudWatch retrieves more periods than `EvaluationPeriods` (N):
  the documentation's tables show 5 for N = 3 and do not give the general number; this uses
  N + max(2, N // 3). Then, as documented: with at least N datapoints in the range, the newest N decide
  (the treatment of missing data is not used); with fewer, every real datapoint in the range counts and
  the rest of N are filled as `breaching` or `notBreaching`; under `missing` and `ignore` a non-breaching
  datapoint makes the alarm OK; a range without data is INSUFFICIENT_DATA (`missing`), ALARM
  (`breaching`), OK (`notBreaching`), or unchanged (`ignore`). Breaching datapoints fewer than
  `DatapointsToAlarm` (M) with nothing else in the range: ALARM under `missing` when the oldest is at least
  M periods old ("avoiding premature transitions"), else INSUFFICIENT_DATA (unchanged under `ignore`).
  Every row of both documented tables is a test. ALARM when at least M of the evaluated datapoints breach,
  else OK.
* **Comparisons.** The four threshold comparisons. The anomaly-band ones (`LessThanLowerThreshold`,
  `GreaterThanUpperThreshold`, `LessThanLowerOrGreaterThanUpperThreshold`, with `ThresholdMetricId`)
  are refused: anomaly detection models are not emulated.
* **Composite alarms.** `AlarmRule` with `ALARM(...)`, `OK(...)`, `INSUFFICIENT_DATA(...)` (name or ARN,
  quoted or not), `TRUE`, `FALSE`, `AND`, `OR`, `NOT` and parentheses; ALARM when the rule holds, else
  OK. Composites are evaluated after the metric alarms, children before parents; the members of a cycle
  are not evaluated, as CloudWatch stops evaluating them. Action suppressors are not emulated.
* **State changes.** A change only: the same state again changes nothing and sends nothing. Reasons and
  `StateReasonData` follow CloudWatch's formats ("Threshold Crossed: 3 out of the last 5 datapoints
  [...] were greater than the threshold (1.0) (minimum 3 datapoints for OK -> ALARM transition).",
  `{"version": "1.0", "queryDate", "startDate", "statistic", "period", "recentDatapoints", "threshold",
  "evaluatedDatapoints"}`; composites `{"triggeringAlarms": [...]}`); the wording of the rarer cases is
  this module's own. moto creates alarms in OK; CloudWatch in INSUFFICIENT_DATA: an alarm moto has never
  changed is taken as INSUFFICIENT_DATA, so its first evaluation is the transition CloudWatch makes.
* **Events.** source `aws.cloudwatch`, detail-type `CloudWatch Alarm State Change`, resources [alarm
  ARN], detail {alarmName, state, previousState, configuration} as documented; moto's EventBridge routes
  it to the rules' targets. **Actions:** SNS topics in `AlarmActions`/`OKActions`/
  `InsufficientDataActions` get CloudWatch's JSON notification through moto's SNS when actions are
  enabled (a missing topic is ignored, as CloudWatch does not check); other action types are not run.
* **Timing.** CloudWatch evaluates every minute by itself; here `evaluate()` evaluates once, now, and
  `running(interval_seconds)` keeps evaluating on a background thread (with an accelerated clock, a
  minute can pass in a fraction of a second).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from unittest import mock

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    Metric,
    MetricAggregatedDatum,
    MetricDatum,
    MetricDatumBase,
    cloudwatch_backends,
)
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.events.models import events_backends
from moto.sns.exceptions import SNSNotFoundError
from moto.sns.models import sns_backends

from localcloud.cloudwatch.metric_math import (
    Expression,
    MetricMathError,
    Series,
    evaluate_expression,
    parse_expression,
)

if TYPE_CHECKING:
    pass

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
STATES: tuple[State, ...] = ("OK", "ALARM", "INSUFFICIENT_DATA")
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
EVENT_SOURCE = "aws.cloudwatch"
EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"
DEFAULT_ACCOUNT_ID = "123456789012"
# moto's reason for a new alarm, which it puts in OK (CloudWatch puts new alarms in INSUFFICIENT_DATA).
MOTO_CREATION_REASON = "Unchecked: Initial alarm creation"
# moto 5.2.5 has neither PutCompositeAlarm nor DescribeAlarmHistory; a later one may (`check_moto`).
MOTO_VERSION = "5.2.5"

_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (
        lambda value, threshold: value >= threshold,
        "greater than or equal to",
    ),
    "GreaterThanThreshold": (lambda value, threshold: value > threshold, "greater than"),
    "LessThanThreshold": (lambda value, threshold: value < threshold, "less than"),
    "LessThanOrEqualToThreshold": (lambda value, threshold: value <= threshold, "less than or equal to"),
}
_ANOMALY_COMPARISONS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d{1,10})?|100)")


class AlarmConfigurationError(ValueError):
    """An alarm this evaluator cannot evaluate faithfully; the message names the alarm and the reason."""


class AlarmEvaluationStopped(RuntimeError):
    """The background evaluation of `AlarmEvaluator.running` failed; the cause is chained."""


class MotoHasAlarmApisError(RuntimeError):
    """moto implements an API `emulate_alarm_apis` adds: the emulation would hide moto's behaviour."""


@dataclass(frozen=True)
class StateTransition:
    """One alarm state change, as written to moto and sent to EventBridge."""

    alarm_name: str
    alarm_arn: str
    alarm_type: Literal["MetricAlarm", "CompositeAlarm"]
    previous_state: State
    state: State
    reason: str
    reason_data: str
    timestamp: datetime


# --- evaluating datapoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Datapoint:
    """One period of the evaluation range: its start (epoch seconds) and value, None when missing."""

    timestamp: int
    value: float | None
    sample_count: float | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation. `state` None keeps the current state (`ignore`).

    `evaluated` are the datapoints the decision used, newest first; `breaching` says for each whether
    it breached (a filled missing datapoint has value None and the treatment's verdict); `filled` counts
    the missing datapoints filled by the treatment.
    """

    state: State | None
    evaluated: tuple[Datapoint, ...]
    breaching: tuple[bool, ...]
    filled: int
    premature: bool = False


def evaluation_range_length(evaluation_periods: int) -> int:
    """How many periods an evaluation retrieves: more than N, as documented (5 for N = 3)."""
    return evaluation_periods + max(2, evaluation_periods // 3)


def decide(
    datapoints: Sequence[Datapoint],
    *,
    is_breaching: Callable[[float], bool],
    evaluation_periods: int,
    datapoints_to_alarm: int,
    treat_missing_data: str,
) -> Decision:
    """CloudWatch's decision over the evaluation range (`datapoints` oldest first, one per period)."""
    n, m = evaluation_periods, datapoints_to_alarm
    existing = [point for point in datapoints if point.value is not None]
    missing = [point for point in datapoints if point.value is None]
    if len(existing) >= n:
        evaluated = existing[-n:]
        flags = [is_breaching(_value(point)) for point in evaluated]
        return _decided(evaluated, flags, "ALARM" if sum(flags) >= m else "OK", filled=0)
    if treat_missing_data in ("breaching", "notBreaching"):
        # Real datapoints anywhere in the range count; missing ones fill up to N, as few as possible.
        fills = missing[len(missing) - (n - len(existing)) :]
        evaluated = sorted(existing + fills, key=lambda point: point.timestamp)
        fill_verdict = treat_missing_data == "breaching"
        flags = [fill_verdict if point.value is None else is_breaching(point.value) for point in evaluated]
        return _decided(evaluated, flags, "ALARM" if sum(flags) >= m else "OK", filled=len(fills))
    keep_or_insufficient: State | None = "INSUFFICIENT_DATA" if treat_missing_data == "missing" else None
    if not existing:
        return _decided(missing[-n:], [], keep_or_insufficient, filled=0)
    flags = [is_breaching(_value(point)) for point in existing]
    if sum(flags) >= m:
        return _decided(existing, flags, "ALARM", filled=0)
    if not all(flags):
        return _decided(existing, flags, "OK", filled=0)
    # Only breaching datapoints, fewer than M: ALARM once the oldest is M periods old ("premature").
    oldest_age = len(datapoints) - list(datapoints).index(existing[0])
    if treat_missing_data == "missing" and oldest_age >= m:
        return replace(_decided(existing, flags, "ALARM", filled=0), premature=True)
    return _decided(existing, flags, keep_or_insufficient, filled=0)


def _value(point: Datapoint) -> float:
    if point.value is None:
        raise AssertionError("a missing datapoint has no value")
    return point.value


def _decided(
    evaluated: Sequence[Datapoint], flags: Sequence[bool], state: State | None, *, filled: int
) -> Decision:
    order = sorted(range(len(evaluated)), key=lambda i: evaluated[i].timestamp, reverse=True)
    return Decision(
        state=state,
        evaluated=tuple(evaluated[i] for i in order),
        breaching=tuple(flags[i] for i in order) if flags else (),
        filled=filled,
    )


# --- metric alarms -------------------------------------------------------------------------------------


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
    if comparison in _ANOMALY_COMPARISONS or alarm.threshold_metric_id:
        raise refuse(f"{comparison} compares with an anomaly detection band, which is not emulated")
    if comparison not in _COMPARISONS:
        raise refuse(f"unknown ComparisonOperator {comparison!r} (one of {', '.join(_COMPARISONS)})")
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
    if statistic in STATISTICS or _PERCENTILE.fullmatch(statistic):
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


class _MetricStore:
    """A snapshot of moto's datapoints, grouped by metric identity (namespace, name, exact dimensions)."""

    def __init__(self, data: Iterable[MetricDatumBase]) -> None:
        self._by_metric: dict[
            tuple[str, str, frozenset[tuple[str, str]]], list[tuple[float, MetricDatumBase]]
        ] = {}
        for datum in data:
            key = (
                str(datum.namespace),
                str(datum.name),
                frozenset((str(d.name), str(d.value)) for d in datum.dimensions),
            )
            self._by_metric.setdefault(key, []).append((_epoch(datum.timestamp), datum))

    def datapoints(self, query: MetricQuery, starts: Sequence[int]) -> list[Datapoint]:
        data = self._by_metric.get((query.namespace, query.metric_name, query.dimensions), [])
        points: list[Datapoint] = []
        for start in starts:
            in_period = [
                datum
                for moment, datum in data
                if start <= moment < start + query.period and (query.unit is None or datum.unit == query.unit)
            ]
            value, samples = _statistic_value(query.statistic, in_period)
            points.append(Datapoint(start, value, samples if value is not None else None))
        return points


def _statistic_value(statistic: str, data: Sequence[MetricDatumBase]) -> tuple[float | None, float]:
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


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def period_starts(now: float, period: int, count: int) -> list[int]:
    """The starts of the `count` periods evaluated at `now`, oldest first (the newest ends at the minute)."""
    step = 60 if period >= 60 else period
    end = int(now // step) * step
    return [end - period * (count - index) for index in range(count)]


def alarm_datapoints(plan: MetricAlarmPlan, store: _MetricStore, now: float) -> list[Datapoint]:
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


# --- composite alarms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateIs:
    state: State
    alarm: str


@dataclass(frozen=True)
class Constant:
    value: bool


@dataclass(frozen=True)
class Not:
    operand: RuleNode


@dataclass(frozen=True)
class Junction:
    operator: Literal["AND", "OR"]
    operands: tuple[RuleNode, ...]


RuleNode = StateIs | Constant | Not | Junction

_RULE_TOKEN = re.compile(r'\s*(?:(?P<quoted>"[^"]*")|(?P<symbol>[()])|(?P<word>[^\s()"]+))')


def parse_alarm_rule(rule: str) -> RuleNode:
    """A composite alarm's `AlarmRule`; `AlarmConfigurationError` names what is wrong."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while rule[position:].strip():
        match = _RULE_TOKEN.match(rule, position)
        if match is None or match.lastgroup is None:
            raise AlarmConfigurationError(f"AlarmRule {rule!r}: cannot read it at position {position}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    parser = _RuleParser(rule, tokens)
    node = parser.disjunction()
    if parser.index < len(tokens):
        raise AlarmConfigurationError(f"AlarmRule {rule!r}: unexpected {tokens[parser.index][1]!r}")
    return node


class _RuleParser:
    def __init__(self, rule: str, tokens: list[tuple[str, str]]) -> None:
        self.rule = rule
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: ends where a condition was expected")
        self.index += 1
        return self.tokens[self.index - 1]

    def _expect(self, text: str) -> None:
        if self.index >= len(self.tokens):
            raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: expected {text!r}, found the end")
        _, found = self._take()
        if found != text:
            raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: expected {text!r}, found {found!r}")

    def disjunction(self) -> RuleNode:
        operands = [self._conjunction()]
        while self._peek() == "OR":
            self.index += 1
            operands.append(self._conjunction())
        return operands[0] if len(operands) == 1 else Junction("OR", tuple(operands))

    def _conjunction(self) -> RuleNode:
        operands = [self._negation()]
        while self._peek() == "AND":
            self.index += 1
            operands.append(self._negation())
        return operands[0] if len(operands) == 1 else Junction("AND", tuple(operands))

    def _negation(self) -> RuleNode:
        if self._peek() == "NOT":
            self.index += 1
            return Not(self._negation())
        return self._atom()

    def _atom(self) -> RuleNode:
        _, text = self._take()
        if text == "(":
            node = self.disjunction()
            self._expect(")")
            return node
        if text in ("TRUE", "FALSE"):
            return Constant(text == "TRUE")
        if text in STATES:
            self._expect("(")
            name_kind, name = self._take()
            if name_kind == "symbol":
                raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: {text}() names no alarm")
            self._expect(")")
            return StateIs(text, name.strip('"'))
        raise AlarmConfigurationError(
            f"AlarmRule {self.rule!r}: unexpected {text!r} (expected ALARM(...), OK(...), "
            "INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or a parenthesis; AND, OR and NOT are upper case)"
        )


def rule_references(node: RuleNode) -> list[str]:
    """The alarms a rule names, in order, as written (name or ARN)."""
    if isinstance(node, StateIs):
        return [node.alarm]
    if isinstance(node, Not):
        return rule_references(node.operand)
    if isinstance(node, Junction):
        return [name for operand in node.operands for name in rule_references(operand)]
    return []


def rule_holds(node: RuleNode, state_of: Callable[[str], str]) -> bool:
    if isinstance(node, StateIs):
        return state_of(node.alarm) == node.state
    if isinstance(node, Constant):
        return node.value
    if isinstance(node, Not):
        return not rule_holds(node.operand, state_of)
    results = (rule_holds(operand, state_of) for operand in node.operands)
    return all(results) if node.operator == "AND" else any(results)


# --- formats -------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """CloudWatch's timestamp format in reasons and events: 2019-10-02T17:04:40.989+0000."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _number(value: float) -> str:
    return repr(float(value))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _metric_reason(plan: MetricAlarmPlan, decision: Decision, previous: str, state: State) -> str:
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
        f"{_number(point.value)} ({_at(point.timestamp):%d/%m/%y %H:%M:%S})"
        for point in counted
        if point.value is not None
    )
    relation = _COMPARISONS[plan.comparison][1]
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


def _metric_reason_data(plan: MetricAlarmPlan, decision: Decision, now: float) -> dict[str, Any]:
    alarm = plan.alarm
    data: dict[str, Any] = {"version": "1.0", "queryDate": _iso(_at(now))}
    if decision.evaluated:
        data["startDate"] = _iso(_at(decision.evaluated[-1].timestamp))
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
        entry: dict[str, Any] = {"timestamp": _iso(_at(point.timestamp))}
        if point.value is not None:
            if not plan.is_math and point.sample_count is not None:
                entry["sampleCount"] = point.sample_count
            entry["value"] = point.value
        evaluated.append(entry)
    data["evaluatedDatapoints"] = evaluated
    return data


def _metric_configuration(alarm: Alarm) -> dict[str, Any]:
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


# --- the evaluator -------------------------------------------------------------------------------------


@dataclass
class BackgroundEvaluation:
    """The evaluation `AlarmEvaluator.running` keeps going; `failed` once an evaluation has raised."""

    evaluator: AlarmEvaluator
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@dataclass
class _Change:
    alarm: Alarm
    state: State
    reason: str
    reason_data: dict[str, Any]
    configuration: dict[str, Any]


class AlarmEvaluator:
    """Evaluates the alarms of one account and region of moto's CloudWatch, as CloudWatch would at `clock()`.

    Use it inside `mock_aws()` (a `ThreadedMotoServer` in the same process shares the same backends)::

        evaluator = AlarmEvaluator(clock=lambda: now)
        transitions = evaluator.evaluate()          # once
        with evaluator.running(interval_seconds=1):  # or now and then continuously, in the background
            ...

    `transitions` keeps every change this evaluator made, oldest first.
    """

    def __init__(
        self,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
        *,
        send_events: bool = True,
        run_actions: bool = True,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.send_events = send_events
        self.run_actions = run_actions
        self.transitions: list[StateTransition] = []
        self._lock = threading.Lock()

    @property
    def backend(self) -> CloudWatchBackend:
        return cloudwatch_backends[self.account_id][self.region]

    def evaluate(self) -> list[StateTransition]:
        """Evaluate every metric alarm, then every composite alarm; return the state changes made.

        Every alarm is checked before any state changes: an alarm the evaluator cannot evaluate raises
        `AlarmConfigurationError` naming it, and nothing is changed.
        """
        with self._lock:
            now = self.clock()
            alarms = list(self.backend.alarms.values())
            metric_plans = [metric_alarm_plan(alarm) for alarm in alarms if alarm.rule is None]
            composites = _composite_order([alarm for alarm in alarms if alarm.rule is not None], alarms)
            for alarm in alarms:
                _adopt_creation_state(alarm)
            store = _MetricStore(self.backend.get_all_metrics())
            made: list[StateTransition] = []
            for plan in metric_plans:
                change = self._metric_change(plan, store, now)
                if change is not None:
                    made.append(self._apply(change, now))
            for _ in range(len(composites) + 1):  # children come first; repeat until nothing changes
                changes = [self._composite_change(alarm, rule, alarms) for alarm, rule in composites]
                applied = [self._apply(change, now) for change in changes if change is not None]
                made.extend(applied)
                if not applied:
                    break
            self.transitions.extend(made)
            return made

    @contextmanager
    def running(self, interval_seconds: float) -> Iterator[BackgroundEvaluation]:
        """Evaluate now, then every `interval_seconds` (real time) on a background thread until the block ends

        The first evaluation runs in the caller, so a bad alarm raises here. A later failure stops the
        thread (`failed` says so) and leaving the block raises `AlarmEvaluationStopped` with the cause.
        """
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.evaluate()
        background = BackgroundEvaluation(self)

        def loop() -> None:
            while not background.stop.wait(interval_seconds):
                try:
                    self.evaluate()
                except Exception as error:  # surfaced when the block ends
                    background.failures.append(error)
                    return

        thread = threading.Thread(target=loop, name="cloudwatch-alarm-evaluator", daemon=True)
        thread.start()
        try:
            yield background
        finally:
            background.stop.set()
            thread.join(timeout=max(30.0, 2 * interval_seconds))
            if background.failures:
                failure = background.failures[0]
                raise AlarmEvaluationStopped(f"alarm evaluation failed: {failure}") from failure

    def _metric_change(self, plan: MetricAlarmPlan, store: _MetricStore, now: float) -> _Change | None:
        threshold, (compare, _) = plan.threshold, _COMPARISONS[plan.comparison]
        decision = decide(
            alarm_datapoints(plan, store, now),
            is_breaching=lambda value: compare(value, threshold),
            evaluation_periods=plan.evaluation_periods,
            datapoints_to_alarm=plan.datapoints_to_alarm,
            treat_missing_data=plan.treat_missing_data,
        )
        alarm = plan.alarm
        if decision.state is None or decision.state == alarm.state_value:
            return None
        if plan.low_sample_minimum is not None and any(
            (point.sample_count or 0) < plan.low_sample_minimum
            for point in decision.evaluated
            if point.value is not None
        ):
            return None  # EvaluateLowSampleCountPercentile: ignore
        return _Change(
            alarm=alarm,
            state=decision.state,
            reason=_metric_reason(plan, decision, alarm.state_value, decision.state),
            reason_data=_metric_reason_data(plan, decision, now),
            configuration=_metric_configuration(alarm),
        )

    def _composite_change(self, alarm: Alarm, rule: RuleNode, alarms: Sequence[Alarm]) -> _Change | None:
        children = _children(alarm, rule, alarms)
        state: State = "ALARM" if rule_holds(rule, lambda name: children[name].state_value) else "OK"
        if state == alarm.state_value:
            return None
        triggering = sorted(children.values(), key=lambda child: _epoch(child.state_updated_timestamp))[-1:]
        reason = (
            f"{triggering[0].alarm_arn} transitioned to {triggering[0].state_value} at "
            f"{_epoch_text(triggering[0].state_updated_timestamp)}"
            if triggering
            else f"The alarm rule {alarm.rule} evaluated to {'TRUE' if state == 'ALARM' else 'FALSE'}"
        )
        reason_data = {
            "triggeringAlarms": [
                {
                    "arn": child.alarm_arn,
                    "state": {
                        "value": child.state_value,
                        "timestamp": _iso(_aware(child.state_updated_timestamp)),
                    },
                }
                for child in triggering
            ]
        }
        configuration: dict[str, Any] = {"alarmRule": alarm.rule}
        if alarm.description:
            configuration["description"] = alarm.description
        return _Change(alarm, state, reason, reason_data, configuration)

    def _apply(self, change: _Change, now: float) -> StateTransition:
        alarm = change.alarm
        moment = _at(now)
        previous = {
            "value": alarm.state_value,
            "reason": alarm.state_reason,
            "reasonData": alarm.state_reason_data,
            "timestamp": _iso(_aware(alarm.state_updated_timestamp)),
        }
        if previous["reasonData"] in (None, "", "{}"):
            del previous["reasonData"]
        reason_data = json.dumps(change.reason_data)
        alarm.update_state(change.reason, reason_data, change.state)
        alarm.state_updated_timestamp = moment.replace(tzinfo=None)  # moto keeps naive UTC times
        transition = StateTransition(
            alarm_name=alarm.name,
            alarm_arn=alarm.alarm_arn,
            alarm_type="CompositeAlarm" if alarm.rule is not None else "MetricAlarm",
            previous_state=_state(previous["value"]),
            state=change.state,
            reason=change.reason,
            reason_data=reason_data,
            timestamp=moment,
        )
        detail = {
            "alarmName": alarm.name,
            "state": {
                "value": change.state,
                "reason": change.reason,
                "reasonData": reason_data,
                "timestamp": _iso(moment),
            },
            "previousState": previous,
            "configuration": change.configuration,
        }
        if self.send_events:
            self._send_event(alarm, detail, now)
        if self.run_actions and alarm.actions_enabled:
            self._notify(alarm, transition)
        return transition

    def _send_event(self, alarm: Alarm, detail: dict[str, Any], now: float) -> None:
        entries = events_backends[self.account_id][self.region].put_events(
            [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Resources": [alarm.alarm_arn],
                    "Detail": json.dumps(detail),
                    "Time": now,
                }
            ]
        )
        failed = [entry for entry in entries if "ErrorCode" in entry]
        if failed:
            raise RuntimeError(f"EventBridge refused the state change event of alarm {alarm.name}: {failed}")

    def _notify(self, alarm: Alarm, transition: StateTransition) -> None:
        actions = {
            "ALARM": alarm.alarm_actions,
            "OK": alarm.ok_actions,
            "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
        }[transition.state]
        for action in actions or []:
            parts = str(action).split(":")
            if len(parts) < 6 or parts[2] != "sns":
                continue  # Auto Scaling, EC2, Systems Manager and Lambda actions are not run
            message = _notification(alarm, transition, self.account_id, self.region)
            subject = f'{transition.state}: "{alarm.name}" in {self.region}'[:100]
            try:
                sns_backends[parts[4]][parts[3]].publish(
                    message=json.dumps(message), arn=action, subject=subject
                )
            except SNSNotFoundError:
                continue  # CloudWatch does not check that an action's topic exists


def _state(value: str) -> State:
    for state in STATES:
        if value == state:
            return state
    raise AssertionError(f"moto holds an alarm in unknown state {value!r}")


def _adopt_creation_state(alarm: Alarm) -> None:
    """moto creates alarms in OK, CloudWatch in INSUFFICIENT_DATA: a never-changed alarm is the latter."""
    if alarm.state_value == "OK" and alarm.state_reason == MOTO_CREATION_REASON and not alarm.history:
        alarm.state_value = "INSUFFICIENT_DATA"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _epoch_text(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).strftime("%A %d %B, %Y %H:%M:%S UTC")


def _find_alarm(reference: str, alarms: Sequence[Alarm]) -> Alarm | None:
    for alarm in alarms:
        if reference in (alarm.name, alarm.alarm_arn):
            return alarm
    return None


def _children(alarm: Alarm, rule: RuleNode, alarms: Sequence[Alarm]) -> dict[str, Alarm]:
    children: dict[str, Alarm] = {}
    for reference in rule_references(rule):
        child = _find_alarm(reference, alarms)
        if child is None:
            raise AlarmConfigurationError(
                f"composite alarm {alarm.name}: its rule names no alarm {reference!r}"
            )
        children[reference] = child
    return children


def _composite_order(composites: Sequence[Alarm], alarms: Sequence[Alarm]) -> list[tuple[Alarm, RuleNode]]:
    """Composites with their rules, children before parents; members of a cycle are left out."""
    rules: dict[str, RuleNode] = {}
    for alarm in composites:
        try:
            rules[alarm.name] = parse_alarm_rule(str(alarm.rule))
        except AlarmConfigurationError as error:
            raise AlarmConfigurationError(f"composite alarm {alarm.name}: {error}") from None
    depends = {
        alarm.name: {
            child.name
            for child in _children(alarm, rules[alarm.name], alarms).values()
            if child.rule is not None
        }
        for alarm in composites
    }
    ordered: list[tuple[Alarm, RuleNode]] = []
    done: set[str] = set()
    pending = list(composites)
    while pending:
        ready = [alarm for alarm in pending if depends[alarm.name] <= done]
        if not ready:
            break  # the rest wait on a cycle: CloudWatch stops evaluating them
        for alarm in ready:
            ordered.append((alarm, rules[alarm.name]))
            done.add(alarm.name)
            pending.remove(alarm)
    return ordered


def _notification(alarm: Alarm, transition: StateTransition, account_id: str, region: str) -> dict[str, Any]:
    """CloudWatch's SNS message for a state change (the Region is the region code here, not its long name)."""
    message: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _iso(_aware(alarm.configuration_updated_timestamp)),
        "NewStateValue": transition.state,
        "NewStateReason": transition.reason,
        "StateChangeTime": _iso(transition.timestamp),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": transition.previous_state,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
    }
    if alarm.rule is not None:
        message["AlarmRule"] = alarm.rule
        message["TriggeringChildren"] = json.loads(transition.reason_data).get("triggeringAlarms", [])
        return message
    trigger: dict[str, Any] = {
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data or "missing",
    }
    if alarm.metric_data_queries:
        trigger["Metrics"] = _metric_configuration(alarm)["metrics"]
    else:
        trigger.update(
            MetricName=alarm.metric_name,
            Namespace=alarm.namespace,
            StatisticType="ExtendedStatistic" if alarm.extended_statistic else "Statistic",
            Statistic=(alarm.extended_statistic or str(alarm.statistic).upper()),
            Unit=alarm.unit,
            Dimensions=[{"value": d.value, "name": d.name} for d in alarm.dimensions],
        )
    message["Trigger"] = trigger
    return message


# --- the APIs moto lacks -------------------------------------------------------------------------------


def check_moto() -> None:
    for action in ("put_composite_alarm", "describe_alarm_history"):
        if hasattr(CloudWatchResponse, action):
            raise MotoHasAlarmApisError(
                f"moto's CloudWatchResponse has {action}: drop localcloud.cloudwatch's emulation of it "
                f"(written for moto {MOTO_VERSION}, which had none)"
            )


@contextmanager
def emulate_alarm_apis() -> Iterator[None]:
    """While open, moto answers PutCompositeAlarm and DescribeAlarmHistory (in-process and through its server)

    PutCompositeAlarm checks the rule (a `ValidationError` names the problem), creates the alarm in
    INSUFFICIENT_DATA as CloudWatch does, and keeps the state of an alarm it updates. DescribeAlarmHistory
    lists the `StateUpdate` items (moto records no configuration or action history), newest first unless
    `ScanBy` says otherwise, and only metric alarms unless `AlarmTypes` names composites, as the API does.
    """
    check_moto()
    with (
        mock.patch.object(CloudWatchResponse, "put_composite_alarm", _put_composite_alarm, create=True),
        mock.patch.object(CloudWatchResponse, "describe_alarm_history", _describe_alarm_history, create=True),
    ):
        yield


def _put_composite_alarm(response: CloudWatchResponse) -> ActionResult:
    backend = response.cloudwatch_backend
    name = str(response._get_param("AlarmName"))
    rule = str(response._get_param("AlarmRule") or "")
    try:
        references = rule_references(parse_alarm_rule(rule))
    except AlarmConfigurationError as error:
        raise ValidationError(str(error)) from None
    for reference in references:
        if _find_alarm(reference, list(backend.alarms.values())) is None:
            raise ValidationError(f"Could not find alarm {reference} named in the AlarmRule of {name}")
    previous = backend.alarms.get(name)
    alarm = backend.put_metric_alarm(
        name=name,
        namespace=None,  # type: ignore[arg-type]
        metric_name=None,  # type: ignore[arg-type]
        comparison_operator=None,  # type: ignore[arg-type]
        evaluation_periods=None,  # type: ignore[arg-type]
        period=None,  # type: ignore[arg-type]
        threshold=None,  # type: ignore[arg-type]
        statistic=None,  # type: ignore[arg-type]
        description=response._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=response._get_param("AlarmActions", []),
        ok_actions=response._get_param("OKActions", []),
        insufficient_data_actions=response._get_param("InsufficientDataActions", []),
        actions_enabled=response._get_bool_param("ActionsEnabled"),
        rule=rule,
        tags=response._get_param("Tags", []),
    )
    if previous is not None and previous.rule is not None:
        alarm.state_value = previous.state_value
        alarm.state_reason = previous.state_reason
        alarm.state_reason_data = previous.state_reason_data
        alarm.state_updated_timestamp = previous.state_updated_timestamp
        alarm.history = previous.history
    else:
        alarm.state_value = "INSUFFICIENT_DATA"
    return EmptyResult()


@dataclass(frozen=True)
class _Snapshot:
    value: str
    reason: str
    reason_data: str | None
    timestamp: datetime


def _history_items(alarm: Alarm) -> list[dict[str, Any]]:
    # moto's history holds the state before each update (type, reason, data, value, time), oldest first.
    snapshots = [
        _Snapshot(value, reason, data, _aware(when)) for _, reason, data, value, when in alarm.history
    ]
    snapshots.append(
        _Snapshot(
            alarm.state_value,
            alarm.state_reason,
            alarm.state_reason_data,
            _aware(alarm.state_updated_timestamp),
        )
    )
    items = []
    for old, new in itertools.pairwise(snapshots):

        def state(snapshot: _Snapshot) -> dict[str, Any]:
            entry: dict[str, Any] = {"stateValue": snapshot.value, "stateReason": snapshot.reason}
            if snapshot.reason_data not in (None, "", "{}"):
                entry["stateReasonData"] = json.loads(str(snapshot.reason_data))
            return entry

        items.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if alarm.rule is not None else "MetricAlarm",
                "Timestamp": new.timestamp,
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old.value} to {new.value}",
                "HistoryData": json.dumps({"version": "1.0", "oldState": state(old), "newState": state(new)}),
            }
        )
    return items


def _describe_alarm_history(response: CloudWatchResponse) -> ActionResult:
    backend = response.cloudwatch_backend
    name = response._get_param("AlarmName")
    types = response._get_param("AlarmTypes") or ["MetricAlarm"]
    item_type = response._get_param("HistoryItemType")
    start, end = response._get_param("StartDate"), response._get_param("EndDate")
    alarms = [alarm for alarm in backend.alarms.values() if name in (None, alarm.name)]
    items = [item for alarm in alarms for item in _history_items(alarm) if item["AlarmType"] in types]
    if item_type:
        items = [item for item in items if item["HistoryItemType"] == item_type]
    if start is not None:
        items = [item for item in items if item["Timestamp"] >= _aware(start)]
    if end is not None:
        items = [item for item in items if item["Timestamp"] <= _aware(end)]
    items.sort(
        key=lambda item: item["Timestamp"], reverse=response._get_param("ScanBy") != "TimestampAscending"
    )
    offset = int(response._get_param("NextToken") or 0)
    limit = int(response._get_param("MaxRecords") or 100)
    page = items[offset : offset + limit]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + limit < len(items):
        result["NextToken"] = str(offset + limit)
    return ActionResult(result)


# --- a template's alarms -------------------------------------------------------------------------------
