"""The decision methods the benchmark compares: the judge and the classic guardrails.

Each method walks one simulated rollout window by window and stops at its decision. Guardrail
methods only ever roll back; a rollout they never stop is promoted at the end of the schedule,
as SageMaker deployment guardrails and Flagger do. The judge and the oracle decide promotion
themselves; a rollout they never decide ends `inconclusive` (the champion stays).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu, norm

from bench.judge_sim import (
    BAKE_WINDOWS,
    GUARDRAIL_SCHEDULE,
    LATENCY_LOG_SD,
    LATENCY_MEDIAN_MS,
    SEQUENTIAL_SCHEDULE,
    RolloutData,
    VariantData,
)
from lambdas.rollout.judge import (
    JudgeSettings,
    LatencyStats,
    RolloutWindows,
    VariantWindow,
    Verdict,
    judge,
)

Decision = Literal["rollback", "promote", "inconclusive"]

NORMAL_P99_MS = LATENCY_MEDIAN_MS * math.exp(LATENCY_LOG_SD * float(norm.ppf(0.99)))
"""The champion's usual p99, which an operator would read off the dashboard to set an alarm."""


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    last_window: int
    """Index of the last window the challenger served before the decision."""


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    schedule: tuple[float, ...]
    run: Callable[[RolloutData, int], Outcome]


# --- the judge ------------------------------------------------------------------------------------


def _variant_windows(data: VariantData, replicate: int) -> list[VariantWindow]:
    windows = []
    for w in range(data.requests.shape[1]):
        requests = int(data.requests[replicate, w])
        windows.append(
            VariantWindow(
                requests=requests,
                errors_5xx=int(data.errors[replicate, w]),
                latency=LatencyStats(
                    sample_count=requests,
                    average=float(data.latency_average[replicate, w]),
                    p50=float(data.latency_p50[replicate, w]),
                    p90=float(data.latency_p90[replicate, w]),
                    p99=float(data.latency_p99[replicate, w]),
                )
                if requests > 0
                else None,
                outcome_trials=int(data.trials[replicate, w]),
                outcome_successes=int(data.successes[replicate, w]),
            )
        )
    return windows


def make_judge_runner(settings: JudgeSettings) -> Callable[[RolloutData, int], Outcome]:
    """The real judge, asked after every window with everything seen so far."""

    def run(data: RolloutData, replicate: int) -> Outcome:
        champion = _variant_windows(data.champion, replicate)
        challenger = _variant_windows(data.challenger, replicate)
        for w in range(len(champion)):
            windows = RolloutWindows(champion=tuple(champion[: w + 1]), challenger=tuple(challenger[: w + 1]))
            verdict = judge(windows, settings).verdict
            if verdict is Verdict.ROLLBACK:
                return Outcome("rollback", w)
            if verdict is Verdict.PROMOTE:
                return Outcome("promote", w)
        return Outcome("inconclusive", len(champion) - 1)

    return run


# --- static thresholds (CloudWatch alarms as deployment guardrails) -------------------------------

STATIC_ERROR_RATE = 0.025
"""Alarm when the challenger's error rate is above 2.5 % (2.5x the usual 1 %)..."""
STATIC_P99_FACTOR = 1.5
"""...or its p99 above 1.5x the usual p99..."""
STATIC_DATAPOINTS, STATIC_PERIODS = 2, 3
"""...in 2 of the last 3 five-minute periods."""


def _error_rate(data: VariantData, replicate: int) -> np.ndarray:
    requests = data.requests[replicate]
    return np.where(requests > 0, data.errors[replicate] / np.maximum(requests, 1), 0.0)


def run_static_threshold(data: RolloutData, replicate: int) -> Outcome:
    breaching = (_error_rate(data.challenger, replicate) > STATIC_ERROR_RATE) | (
        data.challenger.latency_p99[replicate] > STATIC_P99_FACTOR * NORMAL_P99_MS
    )
    for w in range(len(breaching)):
        if breaching[max(0, w - STATIC_PERIODS + 1) : w + 1].sum() >= STATIC_DATAPOINTS:
            return Outcome("rollback", w)
    return Outcome("promote", len(breaching) - 1)


# --- Flagger-style analysis -----------------------------------------------------------------------

FLAGGER_MIN_SUCCESS_RATE = 0.98
FLAGGER_P99_FACTOR = 1.3
FLAGGER_FAILED_CHECKS = 3
"""Flagger's `threshold`: roll back after this many failed checks (counted over the whole analysis)."""


def run_flagger(data: RolloutData, replicate: int) -> Outcome:
    failed = (_error_rate(data.challenger, replicate) > 1 - FLAGGER_MIN_SUCCESS_RATE) | (
        data.challenger.latency_p99[replicate] > FLAGGER_P99_FACTOR * NORMAL_P99_MS
    )
    failures = np.cumsum(failed)
    for w in range(len(failures)):
        if failures[w] >= FLAGGER_FAILED_CHECKS:
            return Outcome("rollback", w)
    return Outcome("promote", len(failures) - 1)


# --- fixed-horizon test per step (Kayenta-style) ---------------------------------------------------

FIXED_HORIZON_ALPHA = 0.01
"""Per metric and per step: what a fixed-sample test would use once."""


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.asarray(numerator / np.maximum(denominator, 1), dtype=float)


def _step_shows_harm(data: RolloutData, replicate: int, window: slice) -> bool:
    """Mann-Whitney U on the step's per-window values, challenger vs champion, one test per metric."""
    champion, challenger = data.champion, data.challenger
    comparisons = (
        (
            _rate(challenger.errors[replicate, window], challenger.requests[replicate, window]),
            _rate(champion.errors[replicate, window], champion.requests[replicate, window]),
            "greater",
        ),
        (
            challenger.latency_average[replicate, window],
            champion.latency_average[replicate, window],
            "greater",
        ),
        (
            _rate(challenger.successes[replicate, window], challenger.trials[replicate, window]),
            _rate(champion.successes[replicate, window], champion.trials[replicate, window]),
            "less",
        ),
    )
    return any(
        float(mannwhitneyu(x, y, alternative=side).pvalue) < FIXED_HORIZON_ALPHA for x, y, side in comparisons
    )


def run_fixed_horizon(data: RolloutData, replicate: int) -> Outcome:
    """At the end of each step's bake, a fixed-horizon comparison of that step; never at 100 %."""
    schedule = data.schedule
    for end in range(BAKE_WINDOWS - 1, len(schedule), BAKE_WINDOWS):
        if schedule[end] >= 1.0:
            break  # no champion traffic left to compare with
        if _step_shows_harm(data, replicate, slice(end - BAKE_WINDOWS + 1, end + 1)):
            return Outcome("rollback", end)
    return Outcome("promote", len(schedule) - 1)


# --- the oracle: Wald SPRTs that know the champion's true rates -----------------------------------

ORACLE_ALPHA = ORACLE_BETA = 0.01 / 3
ORACLE_ERROR_RATIO, ORACLE_LATENCY_RATIO, ORACLE_CONVERSION_DELTA = 2.0, 1.2, -0.02
"""The oracle is tuned to the regressions of the scenarios (2x errors, +20 % latency, -2 points)."""


def _oracle_increments(data: RolloutData, replicate: int) -> np.ndarray:
    """Per-window log-likelihood ratio increments (metric, window) of H1 (regression) vs H0 (equal)."""
    x = data.challenger
    p0 = data.true_error_rate[replicate]
    p1 = np.minimum(p0 * ORACLE_ERROR_RATIO, 0.999)
    errors, requests = x.errors[replicate], x.requests[replicate]
    error_llr = errors * np.log(p1 / p0) + (requests - errors) * np.log((1 - p1) / (1 - p0))
    drift = math.log(ORACLE_LATENCY_RATIO)
    variance = math.expm1(LATENCY_LOG_SD**2) / np.maximum(requests, 1)
    shift = np.log(x.latency_average[replicate] / data.true_latency_mean[replicate])
    latency_llr = np.where(requests > 0, (shift * drift - drift**2 / 2) / variance, 0.0)
    c0 = data.true_conversion[replicate]
    c1 = c0 + ORACLE_CONVERSION_DELTA
    successes, trials = x.successes[replicate], x.trials[replicate]
    conversion_llr = successes * np.log(c1 / c0) + (trials - successes) * np.log((1 - c1) / (1 - c0))
    return np.stack([error_llr, latency_llr, conversion_llr])


def run_oracle_sprt(data: RolloutData, replicate: int) -> Outcome:
    upper = math.log((1 - ORACLE_BETA) / ORACLE_ALPHA)
    lower = math.log(ORACLE_BETA / (1 - ORACLE_ALPHA))
    increments = _oracle_increments(data, replicate)
    llr = np.zeros(increments.shape[0])
    accepted = np.zeros(increments.shape[0], dtype=bool)
    for w in range(increments.shape[1]):
        llr = np.where(accepted, llr, llr + increments[:, w])  # a metric stops once it accepts H0
        if (llr >= upper).any():
            return Outcome("rollback", w)
        accepted |= llr <= lower
        if accepted.all():
            return Outcome("promote", w)
    return Outcome("inconclusive", increments.shape[1] - 1)


def methods(settings: JudgeSettings) -> tuple[Method, ...]:
    return (
        Method("judge", SEQUENTIAL_SCHEDULE, make_judge_runner(settings)),
        Method("static_threshold", GUARDRAIL_SCHEDULE, run_static_threshold),
        Method("flagger", GUARDRAIL_SCHEDULE, run_flagger),
        Method("fixed_horizon", GUARDRAIL_SCHEDULE, run_fixed_horizon),
        Method("oracle_sprt", SEQUENTIAL_SCHEDULE, run_oracle_sprt),
    )
