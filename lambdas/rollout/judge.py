"""The rollout judge: may the challenger have more traffic, must it go, or is it too early to say?

It compares the challenger with the champion over the same time windows, metric by metric, with
the anytime-valid tests of `lambdas.rollout.sequential`, so it can be asked after every bake window:

* rollback     -- some metric in play shows harm: the challenger is confidently worse than the
                  champion by more than that metric's tolerance;
* promote      -- every metric in play is confidently within its non-inferiority margin;
* continue     -- enough data on every metric, no harm shown, not yet shown non-inferior;
* inconclusive -- no harm shown and too little data (minimum-sample guard) on some metric.
                  No data at all is inconclusive, never a pass.

Pure domain code: no boto3, no network, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lambdas.rollout.judge_settings import JudgeSettings, LatencyStatistic, Metric
from lambdas.rollout.sequential import (
    CountWindow,
    RateRatioData,
    bernoulli_rate_log_e_value,
    normal_mixture_radius,
    rate_ratio_dispersion,
    rate_ratio_estimate,
    rate_ratio_log_e_value,
    rate_ratio_lower_bound,
    rate_ratio_upper_bound,
)

__all__ = [
    "JudgeResult",
    "JudgeSettings",
    "LatencyStats",
    "Metric",
    "MetricEvidence",
    "MetricOutcome",
    "RolloutWindows",
    "VariantWindow",
    "Verdict",
    "judge",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencyStats(_Frozen):
    """One variant's latency over one window, as CloudWatch reports it (any unit, the same for both)."""

    sample_count: int = Field(ge=0, description="SampleCount of the latency metric.")
    average: float = Field(ge=0.0, allow_inf_nan=False)
    p50: float = Field(ge=0.0, allow_inf_nan=False)
    p90: float = Field(ge=0.0, allow_inf_nan=False)
    p99: float = Field(ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _percentiles_are_ordered(self) -> LatencyStats:
        if not self.p50 <= self.p90 <= self.p99:
            raise ValueError(
                f"latency percentiles must satisfy p50 <= p90 <= p99, got {self.p50}, {self.p90}, {self.p99}"
            )
        return self


class VariantWindow(_Frozen):
    """What one variant served over one window."""

    requests: int = Field(ge=0, description="Invocations.")
    errors_5xx: int = Field(default=0, ge=0, description="Invocation5XXErrors.")
    model_errors: int = Field(default=0, ge=0, description="Model errors (invalid output, timeouts).")
    latency: LatencyStats | None = Field(
        default=None, description="None when the window had no latency data."
    )
    outcome_trials: int = Field(
        default=0, ge=0, description="Feedback received for this window's inferences."
    )
    outcome_successes: int = Field(
        default=0, ge=0, description="Feedback that reported a success (conversion)."
    )

    @model_validator(mode="after")
    def _counts_are_consistent(self) -> VariantWindow:
        if self.errors_5xx > self.requests:
            raise ValueError(f"errors_5xx ({self.errors_5xx}) exceeds requests ({self.requests})")
        if self.model_errors > self.requests:
            raise ValueError(f"model_errors ({self.model_errors}) exceeds requests ({self.requests})")
        if self.latency is not None and self.latency.sample_count > self.requests:
            raise ValueError(
                f"latency.sample_count ({self.latency.sample_count}) exceeds requests ({self.requests}): "
                "a window's latency samples come from its requests"
            )
        if self.outcome_successes > self.outcome_trials:
            raise ValueError(
                f"outcome_successes ({self.outcome_successes}) exceeds outcome_trials ({self.outcome_trials})"
            )
        return self

    @property
    def failed_requests(self) -> int:
        """5XX plus model errors, capped at the requests: a request counted in both errs toward caution."""
        return min(self.requests, self.errors_5xx + self.model_errors)


class RolloutWindows(_Frozen):
    """Champion and challenger over the same windows, oldest first: champion[i] and challenger[i] pair up."""

    champion: tuple[VariantWindow, ...] = ()
    challenger: tuple[VariantWindow, ...] = ()
    period_starts: tuple[int, ...] = Field(
        default=(),
        description="Epoch seconds each window starts at, increasing; empty when the caller does not know.",
    )

    @model_validator(mode="after")
    def _windows_pair_up(self) -> RolloutWindows:
        if len(self.champion) != len(self.challenger):
            raise ValueError(
                f"champion has {len(self.champion)} windows but challenger has {len(self.challenger)}; "
                "they must cover the same windows"
            )
        if self.period_starts and len(self.period_starts) != len(self.champion):
            raise ValueError(
                f"{len(self.period_starts)} period starts for {len(self.champion)} windows; "
                "give one per window or none"
            )
        if any(later <= earlier for earlier, later in pairwise(self.period_starts)):
            raise ValueError("period starts must increase window by window")
        return self


class Verdict(StrEnum):
    PROMOTE = "promote"
    CONTINUE = "continue"
    ROLLBACK = "rollback"
    INCONCLUSIVE = "inconclusive"


class MetricOutcome(StrEnum):
    HARM = "harm"
    NON_INFERIOR = "non_inferior"
    UNDECIDED = "undecided"
    INSUFFICIENT_DATA = "insufficient_data"


class MetricEvidence(_Frozen):
    """What one metric showed. Ratios for errors and latency, a difference for conversion."""

    metric: Metric
    outcome: MetricOutcome
    estimate: float | None = Field(description="Point estimate; None without data.")
    lower_bound: float | None = Field(
        description="Anytime-valid lower confidence bound; None if unbounded. At the rollback level for the "
        "ratios (harm is above), at the promote level for conversion (harm is below)."
    )
    upper_bound: float | None = Field(
        description="Anytime-valid upper confidence bound; None if unbounded. At the promote level for the "
        "ratios, at the rollback level for conversion."
    )
    bounds_computed: bool = Field(
        default=True,
        description="False when the judge was asked for the verdict only (a look that keeps baking): the "
        "bounds are then None without meaning unbounded.",
    )
    harm_threshold: float = Field(description="Worse than this, confidently, means harm.")
    promote_threshold: float = Field(description="Better than this, confidently, means non-inferior.")
    champion_samples: int
    challenger_samples: int
    rule: str = Field(description="Which rule gave the outcome, in words.")


class JudgeResult(_Frozen):
    verdict: Verdict
    reason: str = Field(description="Which rule decided the verdict.")
    evidence: tuple[MetricEvidence, ...]


@dataclass(frozen=True, slots=True)
class _Levels:
    """Per-metric error budgets.

    Harm in any metric rolls back, so the rollback alpha is split evenly across the metrics in play
    (a union bound). Promotion needs every metric non-inferior, so a challenger inferior on some
    metric is promoted only if that metric's own test errs: each metric's promote test runs at the
    whole promote alpha (an intersection-union test, Berger 1982).
    """

    rollback_alpha: float
    promote_alpha: float
    bounds: bool = True
    """Compute the error ratio's confidence bounds (bisection, the judge's costliest part)."""


def judge(
    windows: RolloutWindows, settings: JudgeSettings | None = None, *, bounds: bool = True
) -> JudgeResult:
    """Decide on the challenger from all windows so far; safe to call after every window.

    ``bounds=False`` leaves out the error ratio's confidence bounds (the verdict is the same: it comes
    from the tests, not the bounds); a rollout that only keeps watching records its looks so.
    """
    settings = settings or JudgeSettings()
    in_play = len(settings.metrics)
    levels = _Levels(settings.rollback_alpha / in_play, settings.promote_alpha, bounds)
    evidence = tuple(_EVALUATORS[metric](windows, settings, levels) for metric in settings.metrics)
    verdict, reason = _combine(evidence)
    return JudgeResult(verdict=verdict, reason=reason, evidence=evidence)


def _combine(evidence: Sequence[MetricEvidence]) -> tuple[Verdict, str]:
    harmed = [e for e in evidence if e.outcome is MetricOutcome.HARM]
    if harmed:
        return Verdict.ROLLBACK, "; ".join(e.rule for e in harmed)
    starved = [e for e in evidence if e.outcome is MetricOutcome.INSUFFICIENT_DATA]
    if starved:
        return Verdict.INCONCLUSIVE, "; ".join(e.rule for e in starved)
    if all(e.outcome is MetricOutcome.NON_INFERIOR for e in evidence):
        return Verdict.PROMOTE, "every metric in play is non-inferior"
    undecided = [e.metric.value for e in evidence if e.outcome is MetricOutcome.UNDECIDED]
    return Verdict.CONTINUE, f"no harm shown; not yet non-inferior: {', '.join(undecided)}"


def _outcome(harm: bool, non_inferior: bool) -> MetricOutcome:
    if harm:
        return MetricOutcome.HARM
    return MetricOutcome.NON_INFERIOR if non_inferior else MetricOutcome.UNDECIDED


_LARGEST_LOG = 709.0
"""exp() of anything larger overflows a float."""


def _exp_or_none(log_value: float) -> float | None:
    """A ratio from its log; None (unbounded) where the float range ends."""
    return math.exp(log_value) if log_value <= _LARGEST_LOG else None


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.4g}"


# --- errors: conditional-binomial rate ratio ------------------------------------------------------


def _error_evidence(windows: RolloutWindows, settings: JudgeSettings, levels: _Levels) -> MetricEvidence:
    counts = [
        CountWindow(c.requests, c.failed_requests, x.requests, x.failed_requests)
        for c, x in zip(windows.champion, windows.challenger, strict=True)
    ]
    champion_requests = sum(w.champion_exposure for w in counts)
    challenger_requests = sum(w.challenger_exposure for w in counts)
    champion_errors = sum(w.champion_events for w in counts)
    challenger_errors = sum(w.challenger_events for w in counts)
    harm_ratio, promote_ratio = 1.0 + settings.error_tolerance, 1.0 + settings.error_margin
    base = {
        "metric": Metric.ERRORS,
        "harm_threshold": harm_ratio,
        "promote_threshold": promote_ratio,
        "champion_samples": champion_requests,
        "challenger_samples": challenger_requests,
    }
    estimate = (
        (challenger_errors / challenger_requests) / (champion_errors / champion_requests)
        if champion_errors > 0 and challenger_requests > 0
        else None
    )
    if min(champion_requests, challenger_requests) < settings.min_requests:
        return MetricEvidence(
            **base,
            outcome=MetricOutcome.INSUFFICIENT_DATA,
            estimate=estimate,
            lower_bound=None,
            upper_bound=None,
            rule=f"errors: fewer than {settings.min_requests} requests on a variant "
            f"(champion {champion_requests}, challenger {challenger_requests})",
        )
    data = RateRatioData.from_windows(counts)
    estimate = rate_ratio_estimate(data)
    dispersion = rate_ratio_dispersion(data, estimate)
    data = data.with_dispersion(dispersion)
    # With the absolute rule on, the promote budget is shared by two tests (union bound).
    promote_alpha = levels.promote_alpha / 2 if settings.negligible_error_rate > 0 else levels.promote_alpha
    harm = rate_ratio_log_e_value(data, harm_ratio, "greater") >= math.log(1 / levels.rollback_alpha)
    ratio_ok = rate_ratio_log_e_value(data, promote_ratio, "less") >= math.log(1 / promote_alpha)
    # The absolute rule counts the challenger's errors as independent trials: extra-binomial
    # variation weakens it by the same factor.
    negligible = settings.negligible_error_rate > 0 and bernoulli_rate_log_e_value(
        challenger_errors, challenger_requests, settings.negligible_error_rate
    ) / dispersion >= math.log(1 / promote_alpha)
    outcome = _outcome(harm, ratio_ok or negligible)
    lower = upper = None
    if levels.bounds:
        lower = rate_ratio_lower_bound(data, levels.rollback_alpha)
        upper = rate_ratio_upper_bound(data, promote_alpha)
    spread = f"; dispersion {dispersion:.3g}" if dispersion > 1.0 else ""
    rule = {
        MetricOutcome.HARM: f"errors: rate ratio lower bound {_fmt(lower)} above tolerance {harm_ratio:.4g}",
        MetricOutcome.NON_INFERIOR: (
            f"errors: rate ratio upper bound {_fmt(upper)} below margin {promote_ratio:.4g}"
            if ratio_ok
            else f"errors: challenger error rate confidently below {settings.negligible_error_rate:.4g}"
        ),
        MetricOutcome.UNDECIDED: f"errors: rate ratio in [{_fmt(lower)}, {_fmt(upper)}]",
    }[outcome]
    if not levels.bounds:
        rule = {
            MetricOutcome.HARM: f"errors: rate ratio confidently above tolerance {harm_ratio:.4g}",
            MetricOutcome.NON_INFERIOR: rule,
            MetricOutcome.UNDECIDED: f"errors: rate ratio estimate {_fmt(estimate)}, neither above tolerance "
            f"{harm_ratio:.4g} nor below margin {promote_ratio:.4g} yet",
        }[outcome]
        if outcome is MetricOutcome.NON_INFERIOR and ratio_ok:
            rule = f"errors: rate ratio confidently below margin {promote_ratio:.4g}"
    return MetricEvidence(
        **base,
        outcome=outcome,
        estimate=estimate,
        lower_bound=lower,
        upper_bound=upper,
        bounds_computed=levels.bounds,
        rule=rule + spread,
    )


# --- latency: paired per-window log ratios ----------------------------------------------------------

_NORMAL_QUANTILE = {"p50": 0.0, "p90": 1.2815515655446004, "p99": 2.3263478740408408}
_P90_Z = _NORMAL_QUANTILE["p90"]


def _statistic(stats: LatencyStats, name: LatencyStatistic) -> float:
    return float(getattr(stats, name))


def _sampling_variance_of_log(stats: LatencyStats, name: LatencyStatistic) -> float:
    """Within-window sampling variance of log(statistic), assuming log-normal latency.

    The shape comes from the window's own p50 and p90 (0 when they are unknown: the reader sets
    them to the average when only the average is read). This is a floor for the across-window
    variance: it guards the plug-in variance when there are only a few windows.
    """
    if stats.p50 <= 0.0 or stats.p90 <= stats.p50:
        return 0.0
    sigma = math.log(stats.p90 / stats.p50) / _P90_Z
    if name == "average":
        return math.expm1(min(sigma**2, _LARGEST_LOG)) / stats.sample_count
    z = _NORMAL_QUANTILE[name]
    q = 0.5 * math.erfc(-z / math.sqrt(2.0))
    density = math.exp(-(z**2) / 2.0) / math.sqrt(2.0 * math.pi)
    return q * (1.0 - q) * sigma**2 / (stats.sample_count * density**2)


@dataclass(frozen=True, slots=True)
class _PairedLogRatios:
    """Per-window log(challenger / champion) of one statistic, weighted by the windows' samples.

    A window's log-ratio has a sampling variance proportional to 1/n_champion + 1/n_challenger, so
    windows are weighted by the inverse of that: the many small windows of a 5 % step count for
    little beside the windows of a 50 % step, and evidence kept across steps stays efficient.
    """

    differences: tuple[float, ...]
    weights: tuple[float, ...]
    sampling_variances: tuple[float, ...]
    champion_samples: int
    challenger_samples: int

    @classmethod
    def from_windows(cls, windows: RolloutWindows, name: LatencyStatistic) -> _PairedLogRatios:
        pairs = [
            (c.latency, x.latency)
            for c, x in zip(windows.champion, windows.challenger, strict=True)
            if c.latency is not None
            and x.latency is not None
            and c.latency.sample_count > 0
            and x.latency.sample_count > 0
            and _statistic(c.latency, name) > 0.0
            and _statistic(x.latency, name) > 0.0
        ]
        return cls(
            differences=tuple(math.log(_statistic(x, name) / _statistic(c, name)) for c, x in pairs),
            weights=tuple(
                c.sample_count * x.sample_count / (c.sample_count + x.sample_count) for c, x in pairs
            ),
            sampling_variances=tuple(
                _sampling_variance_of_log(c, name) + _sampling_variance_of_log(x, name) for c, x in pairs
            ),
            champion_samples=sum(c.sample_count for c, _ in pairs),
            challenger_samples=sum(x.sample_count for _, x in pairs),
        )

    def mean(self) -> float:
        return sum(w * d for w, d in zip(self.weights, self.differences, strict=True)) / sum(self.weights)

    def variance_of_mean(self) -> float:
        """The larger of the robust (sandwich) variance of the weighted mean and the model's floor."""
        count = len(self.differences)
        total = sum(self.weights)
        mean = self.mean()
        sandwich = (
            count
            / (count - 1)
            * sum(w * w * (d - mean) ** 2 for w, d in zip(self.weights, self.differences, strict=True))
            / total**2
        )
        floor = sum(w * w * v for w, v in zip(self.weights, self.sampling_variances, strict=True)) / total**2
        return max(sandwich, floor, 1e-12)


def _latency_evidence(windows: RolloutWindows, settings: JudgeSettings, levels: _Levels) -> MetricEvidence:
    """The average, and the configured percentile too: harm if either shows it, non-inferior if both.

    Each statistic runs at half the latency metric's alphas.
    """
    name = settings.latency_statistic
    if name == "average":
        return _latency_statistic_evidence(windows, settings, levels, "average")
    if not _has_percentile(windows, name):
        alone = _latency_statistic_evidence(windows, settings, levels, "average")
        return alone.model_copy(
            update={"rule": f"{alone.rule} ({name} not in the windows: the average alone)"}
        )
    halves = _Levels(levels.rollback_alpha / 2, levels.promote_alpha / 2, levels.bounds)
    average = _latency_statistic_evidence(windows, settings, halves, "average")
    tail = _latency_statistic_evidence(windows, settings, halves, settings.latency_statistic)
    order = [
        MetricOutcome.HARM,
        MetricOutcome.INSUFFICIENT_DATA,
        MetricOutcome.UNDECIDED,
        MetricOutcome.NON_INFERIOR,
    ]
    worst = min((average, tail), key=lambda e: order.index(e.outcome))
    if worst.outcome is MetricOutcome.NON_INFERIOR:
        return worst.model_copy(update={"rule": f"{average.rule}; {tail.rule}"})
    return worst


def _has_percentile(windows: RolloutWindows, name: LatencyStatistic) -> bool:
    """Whether any window carries the percentile (the reader sets it to the average when it has none)."""
    return any(
        w.latency is not None and _statistic(w.latency, name) != w.latency.average
        for w in (*windows.champion, *windows.challenger)
    )


def _latency_statistic_evidence(
    windows: RolloutWindows, settings: JudgeSettings, levels: _Levels, name: LatencyStatistic
) -> MetricEvidence:
    paired = _PairedLogRatios.from_windows(windows, name)
    harm_log, promote_log = math.log1p(settings.latency_tolerance), math.log1p(settings.latency_margin)
    base = {
        "metric": Metric.LATENCY,
        "harm_threshold": 1.0 + settings.latency_tolerance,
        "promote_threshold": 1.0 + settings.latency_margin,
        "champion_samples": paired.champion_samples,
        "challenger_samples": paired.challenger_samples,
    }
    count = len(paired.differences)
    if (
        count < settings.min_latency_windows
        or min(paired.champion_samples, paired.challenger_samples) < settings.min_latency_samples
    ):
        return MetricEvidence(
            **base,
            outcome=MetricOutcome.INSUFFICIENT_DATA,
            estimate=_exp_or_none(paired.mean()) if count else None,
            lower_bound=None,
            upper_bound=None,
            rule=f"latency {name}: {count} paired windows (need {settings.min_latency_windows}) and "
            f"{min(paired.champion_samples, paired.challenger_samples)} samples on the smaller variant "
            f"(need {settings.min_latency_samples})",
        )
    mean = paired.mean()
    var = paired.variance_of_mean()
    lower = mean - normal_mixture_radius(var, levels.rollback_alpha, promote_log)
    upper = mean + normal_mixture_radius(var, levels.promote_alpha, promote_log)
    outcome = _outcome(lower > harm_log, upper < promote_log)
    lower_ratio, upper_ratio = _exp_or_none(lower), _exp_or_none(upper)
    rule = {
        MetricOutcome.HARM: f"latency {name}: ratio lower bound {_fmt(lower_ratio)} above tolerance "
        f"{1 + settings.latency_tolerance:.4g}",
        MetricOutcome.NON_INFERIOR: f"latency {name}: ratio upper bound {_fmt(upper_ratio)} below margin "
        f"{1 + settings.latency_margin:.4g}",
        MetricOutcome.UNDECIDED: f"latency {name}: ratio in [{_fmt(lower_ratio)}, {_fmt(upper_ratio)}]",
    }[outcome]
    return MetricEvidence(
        **base,
        outcome=outcome,
        estimate=_exp_or_none(mean),
        lower_bound=lower_ratio,
        upper_bound=upper_ratio,
        rule=rule,
    )


# --- conversion: stratified difference of proportions ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _StratifiedDifference:
    """Per-window differences of success rates, weighted like Cochran-Mantel-Haenszel.

    Stratifying by window keeps a shift of the base rate over the day (while the split changes
    from step to step) from posing as a difference between the variants.
    """

    estimate: float
    variance: float
    champion_trials: int
    challenger_trials: int

    @classmethod
    def from_windows(cls, windows: RolloutWindows) -> _StratifiedDifference | None:
        weighted_sum = weight_total = variance_sum = 0.0
        champion_trials = challenger_trials = 0
        for c, x in zip(windows.champion, windows.challenger, strict=True):
            n0, n1 = c.outcome_trials, x.outcome_trials
            if n0 == 0 or n1 == 0:
                continue
            weight = n0 * n1 / (n0 + n1)
            # The variance comes from the champion's rate (smoothed by half a success, never zero): it is
            # the better measured one, and it keeps the bounds monotone in the challenger's outcomes.
            reference = (c.outcome_successes + 0.5) / (n0 + 1)
            weighted_sum += weight * (x.outcome_successes / n1 - c.outcome_successes / n0)
            weight_total += weight
            variance_sum += weight * reference * (1.0 - reference)
            champion_trials += n0
            challenger_trials += n1
        if weight_total == 0.0:
            return None
        return cls(
            weighted_sum / weight_total, variance_sum / weight_total**2, champion_trials, challenger_trials
        )


def _conversion_evidence(windows: RolloutWindows, settings: JudgeSettings, levels: _Levels) -> MetricEvidence:
    difference = _StratifiedDifference.from_windows(windows)
    champion_trials = difference.champion_trials if difference else 0
    challenger_trials = difference.challenger_trials if difference else 0
    base = {
        "metric": Metric.CONVERSION,
        "harm_threshold": -settings.conversion_tolerance,
        "promote_threshold": -settings.conversion_margin,
        "champion_samples": champion_trials,
        "challenger_samples": challenger_trials,
    }
    if difference is None or min(champion_trials, challenger_trials) < settings.min_trials:
        return MetricEvidence(
            **base,
            outcome=MetricOutcome.INSUFFICIENT_DATA,
            estimate=difference.estimate if difference else None,
            lower_bound=None,
            upper_bound=None,
            rule=f"conversion: fewer than {settings.min_trials} feedback trials on a variant "
            f"(champion {champion_trials}, challenger {challenger_trials})",
        )
    mixing_sd = settings.conversion_margin
    # Harm is the challenger *below* the champion: the upper bound of the difference decides it.
    upper = difference.estimate + normal_mixture_radius(difference.variance, levels.rollback_alpha, mixing_sd)
    lower = difference.estimate - normal_mixture_radius(difference.variance, levels.promote_alpha, mixing_sd)
    outcome = _outcome(upper < -settings.conversion_tolerance, lower > -settings.conversion_margin)
    rule = {
        MetricOutcome.HARM: f"conversion: difference upper bound {upper:+.4f} below tolerance "
        f"{-settings.conversion_tolerance:+.4f}",
        MetricOutcome.NON_INFERIOR: f"conversion: difference lower bound {lower:+.4f} above margin "
        f"{-settings.conversion_margin:+.4f}",
        MetricOutcome.UNDECIDED: f"conversion: difference in [{lower:+.4f}, {upper:+.4f}]",
    }[outcome]
    return MetricEvidence(
        **base, outcome=outcome, estimate=difference.estimate, lower_bound=lower, upper_bound=upper, rule=rule
    )


_EVALUATORS: dict[Metric, Callable[[RolloutWindows, JudgeSettings, _Levels], MetricEvidence]] = {
    Metric.ERRORS: _error_evidence,
    Metric.LATENCY: _latency_evidence,
    Metric.CONVERSION: _conversion_evidence,
}
