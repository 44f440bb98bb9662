"""Seeded simulation of an endpoint's minutes during a rollout, at every share the plan may set.

The endpoint is the dev environment's (infra/environments/dev.yaml) as the issue describes it: 1-minute
CloudWatch windows, 50 requests/s in total, 1 % errors, log-normal latency, feedback on 30 % of the
requests. Each scenario changes one thing. Because the share the challenger gets in a minute depends
on the decisions taken so far, the minutes are drawn for every share of the plan at once
(``MinuteData``, arrays of shape (replicates, minutes, shares)); a rollout then reads, minute by
minute, the column of the share it has set. Shared shocks (the same minute for both variants) are
drawn once per minute, whatever the share.

Alongside the data, the truth the oracle may use and the harm each challenger request did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

WINDOW_S = 60
MINUTES = 240
"""Longer than any plan: three judged steps of at most an hour each, plus the first look's lag."""

BASE_RPS = 50.0
DIURNAL_AMPLITUDE = 0.3
TRAFFIC_JITTER_SD = 0.10
BASE_ERROR_RATE = 0.01
LATENCY_MEDIAN_MS = 80.0
LATENCY_LOG_SD = 0.5
BASE_CONVERSION = 0.20
FEEDBACK_FRACTION = 0.30
SLO_QUANTILE = 0.99
"""A request is 'slow' (a bad outcome) above the champion's p99."""

_QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    error_ratio: float = 1.0
    latency_ratio: float = 1.0
    """The challenger's latency, all of it, times this."""
    conversion_delta: float = 0.0
    base_error_rate: float = BASE_ERROR_RATE
    rps: float = BASE_RPS
    latency_log_sd: float = LATENCY_LOG_SD
    challenger_latency_log_sd: float | None = None
    """A different shape for the challenger's latency (its tail); None: the champion's."""
    challenger_latency_median_factor: float = 1.0
    shared_error_shock_sd: float = 0.10
    shared_latency_shock_sd: float = 0.03
    champion_burst_probability: float = 0.0
    """Minutes where only the champion's fleet hiccups (errors x3, latency x1.3)."""
    variant_error_cv: float = 0.0
    """Window-to-window variation of each variant's own error rate (coefficient of variation),
    independent between the variants: extra-binomial variation."""
    diurnal_amplitude: float = DIURNAL_AMPLITUDE
    challenger_burst: tuple[float, int] = (0.0, 0)
    """(error rate, minutes): the challenger alone fails at this rate for these minutes, once, at a
    random minute within the first 40."""
    common_outage: tuple[float, int] = (0.0, 0)
    """(error rate, minutes): both variants fail at this rate together, once, within the first 40."""
    challenger_request_loss: float = 0.0
    """The challenger's share of its requests lost before they are counted (a sample ratio mismatch):
    the judge sees only the rest."""


def _tail_shape(p99_ratio: float, average_ratio: float, sd: float) -> tuple[float, float]:
    """The challenger's (log sd, median factor) that make its p99 and average these multiples."""
    z = float(norm.ppf(SLO_QUANTILE))
    # ln m + (s'^2 - s^2)/2 = ln(average_ratio);  ln m + (s' - s) z = ln(p99_ratio): solve for s' = s + d.
    target = math.log(p99_ratio) - math.log(average_ratio)
    low, high = 0.0, 2.0
    for _ in range(60):
        d = (low + high) / 2
        value = d * z - ((sd + d) ** 2 - sd**2) / 2
        low, high = (d, high) if value < target else (low, d)
    d = (low + high) / 2
    return sd + d, math.exp(math.log(p99_ratio) - d * z)


_TAIL_SD, _TAIL_MEDIAN = _tail_shape(1.30, 1.025, LATENCY_LOG_SD)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("equal"),
    Scenario("equal_lowrate", base_error_rate=0.001),
    Scenario("equal_highrate", base_error_rate=0.05),
    Scenario("equal_low_traffic", rps=10.0),
    Scenario("errors_1.3x", error_ratio=1.3),
    Scenario("errors_1.5x", error_ratio=1.5),
    Scenario("errors_2x", error_ratio=2.0),
    Scenario("errors_2x_lowrate", error_ratio=2.0, base_error_rate=0.001),
    Scenario("errors_2x_low_traffic", error_ratio=2.0, rps=2.0),
    Scenario("errors_5x", error_ratio=5.0),
    Scenario("challenger_burst", challenger_burst=(0.30, 3)),
    Scenario("common_outage", common_outage=(0.50, 2)),
    Scenario("overdispersed_equal", variant_error_cv=0.7),
    Scenario("latency_+20pct", latency_ratio=1.2),
    Scenario(
        "latency_tail_+30pct",
        challenger_latency_log_sd=_TAIL_SD,
        challenger_latency_median_factor=_TAIL_MEDIAN,
    ),
    Scenario("latency_heavy_tail_equal", latency_log_sd=1.0),
    Scenario("conversion_-2pt", conversion_delta=-0.02),
    Scenario(
        "noisy_champion",
        shared_error_shock_sd=0.6,
        shared_latency_shock_sd=0.15,
        champion_burst_probability=0.10,
    ),
    Scenario("diurnal_equal", diurnal_amplitude=0.8),
    Scenario("srm", challenger_request_loss=0.2),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


@dataclass(frozen=True, slots=True)
class VariantMinutes:
    """One variant's CloudWatch statistics, arrays of shape (replicates, minutes, shares)."""

    requests: np.ndarray
    errors: np.ndarray
    latency_average: np.ndarray
    latency_p50: np.ndarray
    latency_p90: np.ndarray
    latency_p99: np.ndarray
    trials: np.ndarray
    successes: np.ndarray


@dataclass(frozen=True, slots=True)
class MinuteData:
    """Simulated minutes of one scenario at each share, plus the truth behind them."""

    shares: tuple[float, ...]
    champion: VariantMinutes
    challenger: VariantMinutes
    true_error_rate: np.ndarray
    """(replicates, minutes): the champion model's error rate (shared shocks in, fleet bursts out)."""
    true_latency_mean: np.ndarray
    true_conversion: np.ndarray
    challenger_error_rate: np.ndarray
    """(replicates, minutes): the challenger model's true error rate."""
    excess_errors_per_request: np.ndarray
    """(replicates, minutes): expected extra errors per challenger request."""
    excess_bad_per_request: np.ndarray
    """(replicates, minutes): expected extra bad outcomes (error, slow request, lost conversion)."""


def _lognormal_mean_one(rng: np.random.Generator, sd: float, shape: tuple[int, ...]) -> np.ndarray:
    return np.exp(rng.normal(-(sd**2) / 2, sd, size=shape))


def _gamma_mean_one(rng: np.random.Generator, cv: float, shape: tuple[int, ...]) -> np.ndarray:
    if cv <= 0.0:
        return np.ones(shape)
    k = 1.0 / cv**2
    return rng.gamma(k, 1.0 / k, size=shape)


def _latency_stats(
    rng: np.random.Generator, median: np.ndarray, sigma: float, requests: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CloudWatch-style statistics of log-normal latency over a window, from their sampling laws."""
    count = np.maximum(requests, 1)
    average = median * math.exp(sigma**2 / 2) * np.exp(rng.normal(0.0, np.sqrt(math.expm1(sigma**2) / count)))
    percentiles = []
    for q in _QUANTILES.values():
        z = float(norm.ppf(q))
        sd = sigma * math.sqrt(q * (1 - q)) / float(norm.pdf(z)) / np.sqrt(count)
        percentiles.append(median * np.exp(sigma * z + rng.normal(0.0, sd)))
    p50, p90, p99 = np.sort(np.stack(percentiles), axis=0)
    return average, p50, p90, p99


def _variant(  # noqa: PLR0917 -- one variant's draws, each argument an array of the same shape
    rng: np.random.Generator,
    requests: np.ndarray,
    error_rate: np.ndarray,
    latency_median: np.ndarray,
    latency_sd: float,
    conversion: np.ndarray,
) -> VariantMinutes:
    errors = rng.binomial(requests, np.clip(error_rate, 0.0, 1.0))
    average, p50, p90, p99 = _latency_stats(rng, latency_median, latency_sd, requests)
    trials = rng.binomial(requests, FEEDBACK_FRACTION)
    successes = rng.binomial(trials, np.clip(conversion, 0.0, 1.0))
    return VariantMinutes(requests, errors, average, p50, p90, p99, trials, successes)


def _slow_share(scenario: Scenario) -> float:
    """The challenger's share of requests above the champion's p99."""
    sd = scenario.latency_log_sd
    threshold = sd * float(norm.ppf(SLO_QUANTILE))
    challenger_sd = scenario.challenger_latency_log_sd or sd
    shift = math.log(scenario.latency_ratio * scenario.challenger_latency_median_factor)
    return float(norm.sf((threshold - shift) / challenger_sd))


def _episode(rng: np.random.Generator, replicates: int, length: int) -> np.ndarray:
    """(replicates, MINUTES) booleans: `length` minutes from a random minute within the first 40."""
    start = rng.integers(0, 40, size=(replicates, 1))
    minute = np.arange(MINUTES)[None, :]
    return (minute >= start) & (minute < start + length)


def simulate(
    scenario: Scenario, shares: tuple[float, ...], replicates: int, rng: np.random.Generator
) -> MinuteData:
    """Simulate `replicates` endpoints of `scenario` for MINUTES minutes, at each of `shares`."""
    minutes = (replicates, MINUTES)
    shape = (replicates, MINUTES, len(shares))
    start = rng.uniform(0.0, 1.0, size=(replicates, 1))
    day_fraction = start + np.arange(MINUTES) * WINDOW_S / 86_400
    rate = scenario.rps * (1 + scenario.diurnal_amplitude * np.sin(2 * np.pi * day_fraction))
    expected = rate * WINDOW_S * _lognormal_mean_one(rng, TRAFFIC_JITTER_SD, minutes)
    total = rng.poisson(np.broadcast_to(expected[:, :, None], shape))
    challenger_requests = rng.binomial(total, np.broadcast_to(np.asarray(shares), shape))
    champion_requests = total - challenger_requests
    if scenario.challenger_request_loss:
        challenger_requests = rng.binomial(challenger_requests, 1.0 - scenario.challenger_request_loss)
    base_error = scenario.base_error_rate * _lognormal_mean_one(rng, scenario.shared_error_shock_sd, minutes)
    base_latency = LATENCY_MEDIAN_MS * _lognormal_mean_one(rng, scenario.shared_latency_shock_sd, minutes)
    base_conversion = BASE_CONVERSION + 0.02 * np.sin(2 * np.pi * day_fraction)
    outage_rate, outage_minutes = scenario.common_outage
    if outage_minutes:
        base_error = np.where(_episode(rng, replicates, outage_minutes), outage_rate, base_error)
    challenger_error = base_error * scenario.error_ratio
    burst_rate, burst_minutes = scenario.challenger_burst
    if burst_minutes:
        challenger_error = np.where(_episode(rng, replicates, burst_minutes), burst_rate, challenger_error)
    fleet_burst = rng.uniform(size=minutes) < scenario.champion_burst_probability

    def per_share(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values[:, :, None], shape)

    champion = _variant(
        rng,
        champion_requests,
        per_share(base_error * np.where(fleet_burst, 3.0, 1.0))
        * _gamma_mean_one(rng, scenario.variant_error_cv, shape),
        per_share(base_latency * np.where(fleet_burst, 1.3, 1.0)),
        scenario.latency_log_sd,
        per_share(base_conversion),
    )
    challenger = _variant(
        rng,
        challenger_requests,
        per_share(challenger_error) * _gamma_mean_one(rng, scenario.variant_error_cv, shape),
        per_share(base_latency * scenario.latency_ratio * scenario.challenger_latency_median_factor),
        scenario.challenger_latency_log_sd or scenario.latency_log_sd,
        per_share(base_conversion + scenario.conversion_delta),
    )
    excess_errors = challenger_error - base_error
    extra_slow = _slow_share(scenario) - (1.0 - SLO_QUANTILE)
    return MinuteData(
        shares=shares,
        champion=champion,
        challenger=challenger,
        true_error_rate=base_error,
        true_latency_mean=base_latency * math.exp(scenario.latency_log_sd**2 / 2),
        true_conversion=base_conversion,
        challenger_error_rate=challenger_error,
        excess_errors_per_request=excess_errors,
        excess_bad_per_request=excess_errors + extra_slow - scenario.conversion_delta,
    )
