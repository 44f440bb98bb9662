"""Seeded simulation of canary rollouts: traffic, errors, latency and conversions per bake window.

One rollout is a sequence of 5-minute windows through traffic steps. Each window reports, per
variant, what CloudWatch and the feedback API would: requests, errors, latency statistics (sample
count, average, p50/p90/p99) and conversions out of feedback trials. Alongside it, the truth the
oracle may use and the harm that served challenger traffic caused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

WINDOW_S = 300
BAKE_WINDOWS = 6
GUARDRAIL_SCHEDULE: tuple[float, ...] = (0.05,) * 6 + (0.25,) * 6 + (0.50,) * 6 + (1.00,) * 6
"""Canary steps 5, 25, 50, 100 % with a 30-minute bake each; alarms also watch the 100 % bake."""
SEQUENTIAL_SCHEDULE: tuple[float, ...] = (0.05,) * 6 + (0.25,) * 6 + (0.50,) * 12
"""A judge-gated rollout goes to 100 % only on a promote verdict; without one it keeps baking at 50 %."""

BASE_RPS = 40.0
DIURNAL_AMPLITUDE = 0.3
TRAFFIC_JITTER_SD = 0.15
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
    conversion_delta: float = 0.0
    shared_error_shock_sd: float = 0.10
    shared_latency_shock_sd: float = 0.03
    champion_burst_probability: float = 0.0
    """Windows where only the champion's fleet hiccups (errors x3, latency x1.3)."""
    variant_noise_sd: float = 0.0
    """Window-to-window noise of each variant's own error rate and latency, independent between them."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("equal"),
    Scenario("errors_1.5x", error_ratio=1.5),
    Scenario("errors_2x", error_ratio=2.0),
    Scenario("errors_5x", error_ratio=5.0),
    Scenario("latency_+20pct", latency_ratio=1.2),
    Scenario("conversion_-2pt", conversion_delta=-0.02),
    Scenario(
        "noisy_champion",
        shared_error_shock_sd=0.6,
        shared_latency_shock_sd=0.15,
        champion_burst_probability=0.10,
    ),
    # Beyond the list: noise that is not shared, where the judge's error model is strained.
    Scenario("overdispersed_equal", variant_noise_sd=0.3),
)


@dataclass(frozen=True, slots=True)
class VariantData:
    """Arrays of shape (replicates, windows)."""

    requests: np.ndarray
    errors: np.ndarray
    latency_average: np.ndarray
    latency_p50: np.ndarray
    latency_p90: np.ndarray
    latency_p99: np.ndarray
    trials: np.ndarray
    successes: np.ndarray


@dataclass(frozen=True, slots=True)
class RolloutData:
    """Simulated rollouts of one scenario on one schedule, plus the truth behind them."""

    schedule: tuple[float, ...]
    champion: VariantData
    challenger: VariantData
    true_error_rate: np.ndarray
    """The champion model's error rate in each window (shared shocks included, fleet bursts not)."""
    true_latency_mean: np.ndarray
    true_conversion: np.ndarray
    excess_bad_per_request: np.ndarray
    """Expected extra bad outcomes (error, slow request, lost conversion) per challenger request."""


def _lognormal_mean_one(rng: np.random.Generator, sd: float, shape: tuple[int, int]) -> np.ndarray:
    return np.exp(rng.normal(-(sd**2) / 2, sd, size=shape))


def _latency_stats(
    rng: np.random.Generator, median: np.ndarray, requests: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CloudWatch-style statistics of log-normal latency over a window, from their sampling laws."""
    count = np.maximum(requests, 1)
    sigma = LATENCY_LOG_SD
    average = median * math.exp(sigma**2 / 2) * np.exp(rng.normal(0.0, np.sqrt(math.expm1(sigma**2) / count)))
    percentiles = []
    for q in _QUANTILES.values():
        z = float(norm.ppf(q))
        sd = sigma * math.sqrt(q * (1 - q)) / float(norm.pdf(z)) / np.sqrt(count)
        percentiles.append(median * np.exp(sigma * z + rng.normal(0.0, sd)))
    p50, p90, p99 = np.sort(np.stack(percentiles), axis=0)
    return average, p50, p90, p99


def _variant(
    rng: np.random.Generator,
    requests: np.ndarray,
    error_rate: np.ndarray,
    latency_median: np.ndarray,
    conversion: np.ndarray,
) -> VariantData:
    errors = rng.binomial(requests, np.clip(error_rate, 0.0, 1.0))
    average, p50, p90, p99 = _latency_stats(rng, latency_median, requests)
    trials = rng.binomial(requests, FEEDBACK_FRACTION)
    successes = rng.binomial(trials, np.clip(conversion, 0.0, 1.0))
    return VariantData(requests, errors, average, p50, p90, p99, trials, successes)


def _excess_bad_per_request(scenario: Scenario, base_error: np.ndarray) -> np.ndarray:
    extra_errors = base_error * (scenario.error_ratio - 1.0)
    slo_z = float(norm.ppf(SLO_QUANTILE))
    slow_share = float(norm.sf(slo_z - math.log(scenario.latency_ratio) / LATENCY_LOG_SD))
    extra_slow = slow_share - (1.0 - SLO_QUANTILE)
    return extra_errors + extra_slow - scenario.conversion_delta


def simulate(
    scenario: Scenario, schedule: tuple[float, ...], replicates: int, rng: np.random.Generator
) -> RolloutData:
    """Simulate `replicates` rollouts of `scenario` on `schedule`."""
    shape = (replicates, len(schedule))
    split = np.broadcast_to(np.asarray(schedule), shape)
    # Traffic: a diurnal cycle at a random hour, with bursty minutes.
    start = rng.uniform(0.0, 1.0, size=(replicates, 1))
    day_fraction = start + np.arange(len(schedule)) * WINDOW_S / 86_400
    rate = BASE_RPS * (1 + DIURNAL_AMPLITUDE * np.sin(2 * np.pi * day_fraction))
    total = rng.poisson(rate * WINDOW_S * _lognormal_mean_one(rng, TRAFFIC_JITTER_SD, shape))
    challenger_requests = rng.binomial(total, split)
    champion_requests = total - challenger_requests
    # Shocks that hit the whole endpoint in the same minutes (a dependency, a traffic mix).
    base_error = BASE_ERROR_RATE * _lognormal_mean_one(rng, scenario.shared_error_shock_sd, shape)
    base_latency = LATENCY_MEDIAN_MS * _lognormal_mean_one(rng, scenario.shared_latency_shock_sd, shape)
    base_conversion = BASE_CONVERSION + 0.02 * np.sin(2 * np.pi * day_fraction)
    burst = rng.uniform(size=shape) < scenario.champion_burst_probability
    own_noise = [_lognormal_mean_one(rng, scenario.variant_noise_sd, shape) for _ in range(4)]
    champion = _variant(
        rng,
        champion_requests,
        base_error * np.where(burst, 3.0, 1.0) * own_noise[0],
        base_latency * np.where(burst, 1.3, 1.0) * own_noise[1] ** 0.25,
        base_conversion,
    )
    challenger = _variant(
        rng,
        challenger_requests,
        base_error * scenario.error_ratio * own_noise[2],
        base_latency * scenario.latency_ratio * own_noise[3] ** 0.25,
        base_conversion + scenario.conversion_delta,
    )
    return RolloutData(
        schedule=schedule,
        champion=champion,
        challenger=challenger,
        true_error_rate=base_error,
        true_latency_mean=base_latency * math.exp(LATENCY_LOG_SD**2 / 2),
        true_conversion=base_conversion,
        excess_bad_per_request=_excess_bad_per_request(scenario, base_error),
    )
