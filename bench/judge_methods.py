"""The decision methods the benchmark compares: the shipped rollout, the classic guardrails, an oracle.

* ``judge`` is the product: the dev environment's rollout request and judge settings
  (infra/environments/dev.yaml), CloudWatch windows built by the reader's own code
  (``metrics_reader.windows_from_series``, which fills in each statistic as it does in the Lambda),
  and ``lambdas.rollout.decision.decide_look`` -- the function the judge handler calls -- deciding
  when to look, what the judge sees, when to advance and when to stop. The first look comes one look
  (``look_seconds``) after the first step starts (the Wait the rollout's start sets), every later one
  after the decision's ``next_look_seconds``.
* Guardrail methods only ever roll back; a rollout they never stop is promoted at the end of their
  schedule (5-25-50-100 %, 30 minutes each), as SageMaker deployment guardrails and Flagger do.
* The oracle is Wald's SPRT per metric, knowing the champion's true rates and the scenario's true
  regression (or a default alternative when there is none), looking every minute along the same plan
  (a step after each bake, promotion once every metric accepts "equal"); harm is watched every minute
  by Page's CUSUM of the same log-likelihood ratios, which never stops watching.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu, norm

from bench.judge_sim import (
    LATENCY_MEDIAN_MS,
    MINUTES,
    WINDOW_S,
    MinuteData,
    Scenario,
    VariantMinutes,
)
from infra.config import load_config
from lambdas.rollout.aws.metrics_reader import windows_from_series
from lambdas.rollout.decision import Look, decide_look
from lambdas.rollout.judge import JudgeSettings, RolloutWindows, VariantWindow, Verdict
from lambdas.rollout.payloads import RolloutRequest, StepAction, parse_rollout_request

Decision = Literal["rollback", "promote", "inconclusive"]

ENVIRONMENT = "dev"
DEPLOY_MINUTES = 10
"""From the rollout's start (its lock) to its first traffic step: the gates and the endpoint update."""


def shipped_plan(environment: str = ENVIRONMENT) -> tuple[RolloutRequest, JudgeSettings]:
    """The rollout request a package of this environment starts, and its judge settings."""
    config = load_config(environment)
    rollout = config.rollout
    group = "mlrollout-bench"
    request = parse_rollout_request(
        {
            "endpoint": "bench",
            "endpoint_name": "mlrollout-bench",
            "model_package_arn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/2",
            "model_package_group": group,
            "strategy": rollout.strategy.value,
            "traffic_steps": list(rollout.traffic_steps),
            "bake_minutes": rollout.bake_minutes,
        }
    )
    return request, rollout.judge


def plan_shares(request: RolloutRequest) -> tuple[float, ...]:
    return tuple(share / 100 for share in request.challenger_shares)


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    minutes: int
    """Minutes the challenger served before the decision."""
    columns: tuple[int, ...]
    """The share column (index into MinuteData.shares) of each served minute."""
    trace: tuple[tuple[int, str, str], ...] = field(default=())
    """(look time in s since the first step started, action, reason) of every look (the judge only)."""
    for_harm: bool = True
    """A rollback because harm was shown (the judge's 'judge: ...'; every guardrail or oracle rollback),
    not because non-inferiority was not shown in time."""
    sample_ratio_mismatch: bool = False
    """A rollback because the split did not follow the weights (the judge only)."""


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    run: Callable[[MinuteData, int], Outcome]


# --- the shipped rollout --------------------------------------------------------------------------


def _series(
    data: VariantMinutes, replicate: int, minute: int, column: int, percentiles: bool
) -> dict[str, float]:
    requests = float(data.requests[replicate, minute, column])
    values = {
        "requests": requests,
        "errors_5xx": float(data.errors[replicate, minute, column]),
        "model_errors": 0.0,
        "outcome_trials": float(data.trials[replicate, minute, column]),
        "outcome_successes": float(data.successes[replicate, minute, column]),
    }
    if requests > 0:  # CloudWatch has no latency datapoint for a minute without invocations
        values |= {
            "latency_count": requests,
            "latency_average": float(data.latency_average[replicate, minute, column]),
        }
        if percentiles:
            values |= {
                "p50": float(data.latency_p50[replicate, minute, column]),
                "p90": float(data.latency_p90[replicate, minute, column]),
                "p99": float(data.latency_p99[replicate, minute, column]),
            }
    return values


def minute_windows(
    data: MinuteData, replicate: int, minute: int, column: int, settings: JudgeSettings
) -> tuple[VariantWindow, VariantWindow]:
    """One minute as the CloudWatch reader turns GetMetricData's answer into the judge's windows."""
    timestamp = datetime.fromtimestamp(minute * WINDOW_S, UTC)
    percentiles = settings.latency_statistic != "average"
    series = {
        (variant, key): {timestamp: value}
        for variant, variant_data in (("champion", data.champion), ("challenger", data.challenger))
        for key, value in _series(variant_data, replicate, minute, column, percentiles).items()
    }
    windows = windows_from_series(series, "champion", "challenger", settings.latency_statistic)
    return windows.champion[0], windows.challenger[0]


def run_shipped_rollout(
    request: RolloutRequest,
    settings: JudgeSettings,
    minute: Callable[[int, int], tuple[VariantWindow, VariantWindow]],
    share_columns: dict[int, int],
    *,
    horizon_minutes: int = MINUTES,
    deploy_seconds: int = DEPLOY_MINUTES * WINDOW_S,
) -> Outcome:
    """Walk one rollout along the shipped decision path; `minute(m, column)` serves minute m.

    Times are seconds since the first traffic step started (the rollout's evidence starts there).
    """
    shares = request.challenger_shares
    champion: list[VariantWindow] = []
    challenger: list[VariantWindow] = []
    columns: list[int] = []
    trace: list[tuple[int, str, str]] = []
    step, step_started, looks, now = 0, 0, 0, 0
    rollout_started = -deploy_seconds  # the lock is taken before the gates and the deployment
    wait = settings.look_seconds  # the first Wait the rollout's start sets
    while True:
        look_at = now + wait
        if look_at // WINDOW_S > horizon_minutes:
            return Outcome("inconclusive", len(columns), tuple(columns), tuple(trace))
        column = share_columns[shares[step]]
        for m in range(now // WINDOW_S, look_at // WINDOW_S):
            served = minute(m, column)
            champion.append(served[0])
            challenger.append(served[1])
            columns.append(column)
        windows = RolloutWindows.model_construct(
            champion=tuple(champion),
            challenger=tuple(challenger),
            period_starts=tuple(m * WINDOW_S for m in range(len(columns))),
        )
        decision = decide_look(
            request, settings, Look(rollout_started, step, step_started, looks, look_at), windows
        )
        trace.append((look_at, decision.action.value, decision.reason))
        if decision.action is StepAction.BAKE:
            looks += 1
        elif decision.action is StepAction.ADVANCE:
            step, step_started, looks = decision.next_step_index, look_at, 0
        else:
            verdict: Decision = "promote" if decision.action is StepAction.PROMOTE else "rollback"
            if decision.too_little_data:
                verdict = "inconclusive"
            harm = verdict == "rollback" and decision.result.verdict is Verdict.ROLLBACK
            return Outcome(
                verdict,
                len(columns),
                tuple(columns),
                tuple(trace),
                for_harm=harm,
                sample_ratio_mismatch=decision.sample_ratio_mismatch,
            )
        now, wait = look_at, decision.next_look_seconds


def make_judge_runner(
    request: RolloutRequest, settings: JudgeSettings
) -> Callable[[MinuteData, int], Outcome]:
    def run(data: MinuteData, replicate: int) -> Outcome:
        columns = {round(share * 100): k for k, share in enumerate(data.shares)}
        return run_shipped_rollout(
            request,
            settings,
            lambda m, column: minute_windows(data, replicate, m, column, settings),
            columns,
        )

    return run


# --- static thresholds (CloudWatch alarms as deployment guardrails) -------------------------------

GUARDRAIL_STEP_MINUTES = 30
GUARDRAIL_SHARES = (0.05, 0.25, 0.50, 1.00)
STATIC_ERROR_RATE = 0.025
"""Alarm when the challenger's error rate is above 2.5 % (2.5x the usual 1 %)..."""
STATIC_P99_FACTOR = 1.5
"""...or its p99 above 1.5x the usual p99..."""
STATIC_DATAPOINTS, STATIC_PERIODS, STATIC_PERIOD_MINUTES = 2, 3, 5
"""...in 2 of the last 3 five-minute periods (as the benchmark has always defined it)."""
NORMAL_P99_MS = LATENCY_MEDIAN_MS * math.exp(0.5 * float(norm.ppf(0.99)))


def guardrail_columns(data: MinuteData) -> np.ndarray:
    index = {share: k for k, share in enumerate(data.shares)}
    return np.repeat([index[s] for s in GUARDRAIL_SHARES], GUARDRAIL_STEP_MINUTES)


def _take(values: np.ndarray, replicate: int, columns: np.ndarray) -> np.ndarray:
    return np.asarray(values[replicate, np.arange(len(columns)), columns])


def _periods(values: np.ndarray) -> np.ndarray:
    """Per-minute values summed into five-minute periods."""
    return np.asarray(values.reshape(-1, STATIC_PERIOD_MINUTES).sum(axis=1))


def run_static_threshold(data: MinuteData, replicate: int) -> Outcome:
    columns = guardrail_columns(data)
    requests = _periods(_take(data.challenger.requests, replicate, columns))
    errors = _periods(_take(data.challenger.errors, replicate, columns))
    # A five-minute p99 read as the mean of the minutes' p99 (CloudWatch cannot merge percentiles).
    p99 = _periods(_take(data.challenger.latency_p99, replicate, columns)) / STATIC_PERIOD_MINUTES
    breaching = (np.where(requests > 0, errors / np.maximum(requests, 1), 0.0) > STATIC_ERROR_RATE) | (
        p99 > STATIC_P99_FACTOR * NORMAL_P99_MS
    )
    for w in range(len(breaching)):
        if breaching[max(0, w - STATIC_PERIODS + 1) : w + 1].sum() >= STATIC_DATAPOINTS:
            end = (w + 1) * STATIC_PERIOD_MINUTES
            return Outcome("rollback", end, tuple(int(c) for c in columns[:end]))
    return Outcome("promote", len(columns), tuple(int(c) for c in columns))


FLAGGER_MIN_SUCCESS_RATE = 0.98
FLAGGER_P99_FACTOR = 1.3
FLAGGER_FAILED_CHECKS = 3
FLAGGER_INTERVAL = 5
"""Flagger checks every 5 minutes over the last 5 minutes; `threshold` failed checks roll back."""


def run_flagger(data: MinuteData, replicate: int) -> Outcome:
    columns = guardrail_columns(data)
    requests = _take(data.challenger.requests, replicate, columns)
    errors = _take(data.challenger.errors, replicate, columns)
    p99 = _take(data.challenger.latency_p99, replicate, columns)
    failures = 0
    for end in range(FLAGGER_INTERVAL, len(columns) + 1, FLAGGER_INTERVAL):
        window = slice(end - FLAGGER_INTERVAL, end)
        served = max(int(requests[window].sum()), 1)
        rate = errors[window].sum() / served
        if (
            rate > 1 - FLAGGER_MIN_SUCCESS_RATE
            or float(np.median(p99[window])) > FLAGGER_P99_FACTOR * NORMAL_P99_MS
        ):
            failures += 1
        if failures >= FLAGGER_FAILED_CHECKS:
            return Outcome("rollback", end, tuple(int(c) for c in columns[:end]))
    return Outcome("promote", len(columns), tuple(int(c) for c in columns))


FIXED_HORIZON_ALPHA = 0.01


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.asarray(numerator / np.maximum(denominator, 1), dtype=float)


def run_fixed_horizon(data: MinuteData, replicate: int) -> Outcome:
    """At the end of each step, Mann-Whitney U on the step's minutes per metric; never at 100 %."""
    columns = guardrail_columns(data)
    champion, challenger = data.champion, data.challenger
    for end in range(GUARDRAIL_STEP_MINUTES, len(columns) + 1, GUARDRAIL_STEP_MINUTES):
        if GUARDRAIL_SHARES[end // GUARDRAIL_STEP_MINUTES - 1] >= 1.0:
            break
        step = columns[end - GUARDRAIL_STEP_MINUTES : end]
        offset = np.arange(end - GUARDRAIL_STEP_MINUTES, end)

        def take(values: np.ndarray, offset: np.ndarray = offset, step: np.ndarray = step) -> np.ndarray:
            return np.asarray(values[replicate, offset, step])

        comparisons = (
            (
                _rate(take(challenger.errors), take(challenger.requests)),
                _rate(take(champion.errors), take(champion.requests)),
                "greater",
            ),
            (take(challenger.latency_average), take(champion.latency_average), "greater"),
            (
                _rate(take(challenger.successes), take(challenger.trials)),
                _rate(take(champion.successes), take(champion.trials)),
                "less",
            ),
        )
        if any(
            float(mannwhitneyu(x, y, alternative=side).pvalue) < FIXED_HORIZON_ALPHA
            for x, y, side in comparisons
        ):
            return Outcome("rollback", end, tuple(int(c) for c in columns[:end]))
    return Outcome("promote", len(columns), tuple(int(c) for c in columns))


# --- the oracle: Wald SPRTs that know the truth, along the same plan -------------------------------

ORACLE_ALPHA = ORACLE_BETA = 0.01 / 3


def oracle_alternatives(scenario: Scenario) -> tuple[float, float, float]:
    """(error ratio, average-latency ratio, conversion difference) the oracle tests against."""
    sd, challenger_sd = scenario.latency_log_sd, scenario.challenger_latency_log_sd or scenario.latency_log_sd
    latency = (
        scenario.latency_ratio
        * scenario.challenger_latency_median_factor
        * math.exp((challenger_sd**2 - sd**2) / 2)
    )
    return (
        scenario.error_ratio if scenario.error_ratio > 1.0 else 1.5,
        latency if latency > 1.001 else 1.2,
        scenario.conversion_delta if scenario.conversion_delta < 0 else -0.02,
    )


def make_oracle(request: RolloutRequest, scenario: Scenario) -> Callable[[MinuteData, int], Outcome]:
    error_ratio, latency_ratio, conversion_delta = oracle_alternatives(scenario)
    upper = math.log((1 - ORACLE_BETA) / ORACLE_ALPHA)
    lower = math.log(ORACLE_BETA / (1 - ORACLE_ALPHA))
    bake = request.bake_minutes
    longest = bake * request.max_bakes_per_step
    shares = request.challenger_shares

    def increments(data: MinuteData, replicate: int, minute: int, column: int) -> np.ndarray:
        x = data.challenger
        p0 = float(data.true_error_rate[replicate, minute])
        p1 = min(p0 * error_ratio, 0.999)
        errors, requests = (
            float(x.errors[replicate, minute, column]),
            float(x.requests[replicate, minute, column]),
        )
        error_llr = errors * math.log(p1 / p0) + (requests - errors) * math.log((1 - p1) / (1 - p0))
        drift = math.log(latency_ratio)
        latency_llr = 0.0
        if requests > 0:
            variance = math.expm1(scenario.latency_log_sd**2) / requests
            shift = math.log(
                float(x.latency_average[replicate, minute, column])
                / float(data.true_latency_mean[replicate, minute])
            )
            latency_llr = (shift * drift - drift**2 / 2) / variance
        c0 = float(data.true_conversion[replicate, minute])
        c1 = c0 + conversion_delta
        successes, trials = (
            float(x.successes[replicate, minute, column]),
            float(x.trials[replicate, minute, column]),
        )
        conversion_llr = successes * math.log(c1 / c0) + (trials - successes) * math.log((1 - c1) / (1 - c0))
        return np.array([error_llr, latency_llr, conversion_llr])

    def run(data: MinuteData, replicate: int) -> Outcome:
        index = {round(share * 100): k for k, share in enumerate(data.shares)}
        llr = np.zeros(3)  # the SPRT towards promotion: stops per metric once it accepts "equal"
        watch = np.zeros(3)  # the harm watch never stops: Page's CUSUM of the same increments
        accepted = np.zeros(3, dtype=bool)
        step, at_step = 0, 0
        columns: list[int] = []
        for minute in range(MINUTES):
            column = index[shares[step]]
            columns.append(column)
            step_llr = increments(data, replicate, minute, column)
            llr = np.where(accepted, llr, llr + step_llr)
            watch = np.maximum(0.0, watch + step_llr)
            at_step += 1
            if (llr >= upper).any() or (watch >= upper).any():
                return Outcome("rollback", len(columns), tuple(columns))
            accepted |= llr <= lower
            last = step == len(shares) - 2
            if at_step >= bake and accepted.all():
                if last:
                    return Outcome("promote", len(columns), tuple(columns))
                step, at_step = step + 1, 0
            elif at_step >= bake and not last:
                step, at_step = step + 1, 0
            elif at_step >= longest:
                return Outcome("inconclusive", len(columns), tuple(columns))
        return Outcome("inconclusive", len(columns), tuple(columns))

    return run


METHOD_NAMES = ("judge", "static_threshold", "flagger", "fixed_horizon", "oracle_sprt")


def methods(request: RolloutRequest, settings: JudgeSettings, scenario: Scenario) -> tuple[Method, ...]:
    return (
        Method("judge", make_judge_runner(request, settings)),
        Method("static_threshold", run_static_threshold),
        Method("flagger", run_flagger),
        Method("fixed_horizon", run_fixed_horizon),
        Method("oracle_sprt", make_oracle(request, scenario)),
    )
