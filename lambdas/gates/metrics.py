"""The metric-thresholds gate: held-out metrics against absolute minimums and against the champion's."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from lambdas.gates.settings import (
    CLASSIFICATION_METRICS,
    ClassificationMetric,
    FrozenModel,
    GateName,
    GateResult,
    GateSettings,
    GateStatus,
)

__all__ = ["MetricCheck", "MetricGateResult", "metric_gate"]


# Float rounding must not turn a drop of exactly the allowed size into a failure.
_RELATIVE_DROP_SLACK = 1e-12
# -- metric thresholds -------------------------------------------------------------------------------


class MetricCheck(FrozenModel):
    """One metric against its absolute minimum and against the champion."""

    metric: ClassificationMetric
    candidate: float | None = Field(description="The candidate's value; None when it registered none.")
    minimum: float | None = Field(description="The configured absolute minimum; None when none is set.")
    champion: float | None = Field(description="The champion's value; None when not compared.")
    relative_drop: float | None = Field(
        description="(champion - candidate) / champion; negative is an improvement; None when not compared."
    )
    passed: bool
    reason: str


class MetricGateResult(GateResult):
    gate: Literal[GateName.METRIC_THRESHOLDS] = GateName.METRIC_THRESHOLDS
    max_relative_drop: float
    checks: tuple[MetricCheck, ...] = Field(description="One per metric compared, in a fixed order.")


def metric_gate(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, settings: GateSettings
) -> MetricGateResult:
    """Compare the candidate's registered metrics with the minimums and with the champion's.

    Only the classification metrics (all higher-is-better) take part; other registered metrics are
    ignored. A metric the champion registered must be registered by the candidate too: a candidate
    cannot escape the comparison by leaving a metric out. Raises ValueError on non-finite values or
    classification metrics outside 0-1.
    """
    candidate_known = _check_metrics(candidate, "candidate")
    champion_known = _check_metrics(champion or {}, "champion")
    if not candidate_known:
        return _metric_result(settings, (), "the candidate has no registered classification metrics")
    compared = [m for m in CLASSIFICATION_METRICS if m in settings.minimum_metrics or m in champion_known]
    checks = tuple(_check_metric(m, candidate, champion_known, settings) for m in compared)
    notes = [] if champion_known else ["the champion has no registered metrics: relative check skipped"]
    failures = [check.reason for check in checks if not check.passed]
    if failures:
        return _metric_result(settings, checks, "; ".join(failures + notes))
    summary = f"{len(checks)} metric(s) checked, all within limits" if checks else "no limits to check"
    return _metric_result(settings, checks, "; ".join([summary, *notes]), passed=True)


def _metric_result(
    settings: GateSettings, checks: tuple[MetricCheck, ...], reason: str, *, passed: bool = False
) -> MetricGateResult:
    return MetricGateResult(
        status=GateStatus.PASSED if passed else GateStatus.FAILED,
        blocks_promotion=not passed,
        reason=reason,
        max_relative_drop=settings.max_relative_drop,
        checks=checks,
    )


def _check_metrics(metrics: Mapping[str, float], whose: str) -> dict[ClassificationMetric, float]:
    """The classification metrics of a registered set, after checking every value is usable."""
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise ValueError(f"{whose} metric {name!r} must be a finite number, got {value}")
    known = {name: float(metrics[name]) for name in CLASSIFICATION_METRICS if name in metrics}
    outside = {name: value for name, value in known.items() if not 0 <= value <= 1}
    if outside:
        raise ValueError(f"{whose} metrics must be within 0-1, got {outside}")
    return known


def _check_metric(
    metric: ClassificationMetric,
    candidate: Mapping[str, float],
    champion: Mapping[ClassificationMetric, float],
    settings: GateSettings,
) -> MetricCheck:
    value = candidate.get(metric)
    minimum = settings.minimum_metrics.get(metric)
    reference = champion.get(metric)
    if value is None:
        needed_by = "a minimum" if minimum is not None else "the champion's registered value"
        return MetricCheck(
            metric=metric,
            candidate=None,
            minimum=minimum,
            champion=reference,
            relative_drop=None,
            passed=False,
            reason=f"{metric}: missing from the candidate's metrics but required by {needed_by}",
        )
    problems: list[str] = []
    if minimum is not None and value < minimum:
        problems.append(f"{metric} {value:.4g} is below the minimum {minimum:.4g}")
    drop = None if reference is None else _relative_drop(value, reference)
    if drop is not None and drop > settings.max_relative_drop + _RELATIVE_DROP_SLACK:
        problems.append(
            f"{metric} {value:.4g} is {drop:.2%} below the champion's {reference:.4g} "
            f"(at most {settings.max_relative_drop:.2%} allowed)"
        )
    return MetricCheck(
        metric=metric,
        candidate=value,
        minimum=minimum,
        champion=reference,
        relative_drop=drop,
        passed=not problems,
        reason="; ".join(problems) or f"{metric} {value:.4g} within limits",
    )


def _relative_drop(candidate: float, champion: float) -> float:
    # A champion at 0 cannot be undercut (metrics are >= 0), so there is no drop to speak of.
    return (champion - candidate) / champion if champion > 0 else 0.0
