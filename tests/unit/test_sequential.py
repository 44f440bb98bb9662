"""The sequential tests against reference formulas (scipy) and against their own guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from lambdas.rollout.sequential import (
    EARLY_DISPERSION,
    MIXTURE_EFFECTS,
    PROMOTION_EFFECTS,
    CountWindow,
    RateRatioData,
    bernoulli_rate_log_e_value,
    normal_mixture_log_e_value,
    normal_mixture_radius,
    rate_ratio_dispersion,
    rate_ratio_estimate,
    rate_ratio_log_e_value,
    rate_ratio_log_likelihood_ratio,
    rate_ratio_lower_bound,
    rate_ratio_upper_bound,
)

WINDOWS = [
    CountWindow(champion_exposure=9_500, champion_events=97, challenger_exposure=500, challenger_events=9),
    CountWindow(champion_exposure=7_400, champion_events=70, challenger_exposure=2_600, challenger_events=41),
    CountWindow(champion_exposure=5_100, champion_events=48, challenger_exposure=4_900, challenger_events=77),
]


def _share(rho: float, window: CountWindow) -> float:
    r = window.challenger_exposure / window.champion_exposure
    return rho * r / (1 + rho * r)


def test_rate_ratio_likelihood_ratio_matches_scipy_binomial() -> None:
    data = RateRatioData.from_windows(WINDOWS)
    for alternative, null in [(1.5, 1.1), (0.8, 1.25), (3.0, 1.0)]:
        expected = sum(
            stats.binom.logpmf(
                w.challenger_events, w.champion_events + w.challenger_events, _share(alternative, w)
            )
            - stats.binom.logpmf(
                w.challenger_events, w.champion_events + w.challenger_events, _share(null, w)
            )
            for w in WINDOWS
        )
        assert rate_ratio_log_likelihood_ratio(data, alternative, null) == pytest.approx(expected, rel=1e-9)


def test_rate_ratio_e_value_is_the_mean_of_the_mixture_likelihood_ratios() -> None:
    data = RateRatioData.from_windows(WINDOWS)
    ratios = [math.exp(rate_ratio_log_likelihood_ratio(data, 1.1 * k, 1.1)) for k in MIXTURE_EFFECTS]
    assert math.exp(rate_ratio_log_e_value(data, 1.1, "greater")) == pytest.approx(np.mean(ratios), rel=1e-9)
    less = [math.exp(rate_ratio_log_likelihood_ratio(data, 1.1 / k, 1.1)) for k in PROMOTION_EFFECTS]
    assert math.exp(rate_ratio_log_e_value(data, 1.1, "less")) == pytest.approx(np.mean(less), rel=1e-9)


def test_uninformative_windows_are_dropped() -> None:
    data = RateRatioData.from_windows(
        [
            CountWindow(1000, 0, 1000, 0),  # no events
            CountWindow(0, 0, 1000, 5),  # no champion exposure
            CountWindow(1000, 4, 0, 0),  # no challenger exposure
        ]
    )
    assert data.totals_and_exposure_ratios == ()
    assert rate_ratio_log_e_value(data, 1.1, "greater") == 0.0
    assert rate_ratio_lower_bound(data, 0.05) is None
    assert rate_ratio_upper_bound(data, 0.05) is None


def test_rate_ratio_bounds_bracket_the_estimate_and_sit_where_the_test_turns() -> None:
    data = RateRatioData.from_windows(WINDOWS)
    alpha = 0.01
    lower, upper = rate_ratio_lower_bound(data, alpha), rate_ratio_upper_bound(data, alpha)
    assert lower is not None and upper is not None
    estimate = (sum(w.challenger_events for w in WINDOWS) / sum(w.challenger_exposure for w in WINDOWS)) / (
        sum(w.champion_events for w in WINDOWS) / sum(w.champion_exposure for w in WINDOWS)
    )
    assert lower < estimate < upper
    threshold = math.log(1 / alpha)
    assert rate_ratio_log_e_value(data, lower * 0.999, "greater") >= threshold
    assert rate_ratio_log_e_value(data, lower * 1.001, "greater") < threshold
    assert rate_ratio_log_e_value(data, upper * 1.001, "less") >= threshold
    assert rate_ratio_log_e_value(data, upper * 0.999, "less") < threshold


def test_rate_ratio_bounds_narrow_with_more_data() -> None:
    small = RateRatioData.from_windows(WINDOWS[:1])
    large = RateRatioData.from_windows(WINDOWS)
    small_lower, small_upper = rate_ratio_lower_bound(small, 0.01), rate_ratio_upper_bound(small, 0.01)
    large_lower, large_upper = rate_ratio_lower_bound(large, 0.01), rate_ratio_upper_bound(large, 0.01)
    assert large_lower is not None and large_upper is not None and small_upper is not None
    assert (small_lower or 0.0) < large_lower
    assert large_upper < small_upper


def test_rate_ratio_test_keeps_its_level_when_looked_at_after_every_window() -> None:
    """Under the boundary null (rho = 1.1), the chance of ever rejecting over 20 looks stays <= alpha."""
    rng = np.random.default_rng(3)
    alpha, null, sequences, looks = 0.05, 1.1, 600, 20
    threshold = math.log(1 / alpha)
    rejections = 0
    for _ in range(sequences):
        windows: list[CountWindow] = []
        for look in range(looks):
            challenger_exposure = 300 if look < 5 else 1500
            champion_exposure = 6000 - challenger_exposure
            windows.append(
                CountWindow(
                    champion_exposure,
                    int(rng.poisson(0.01 * champion_exposure)),
                    challenger_exposure,
                    int(rng.poisson(0.01 * null * challenger_exposure)),
                )
            )
            if rate_ratio_log_e_value(RateRatioData.from_windows(windows), null, "greater") >= threshold:
                rejections += 1
                break
    assert rejections / sequences <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / sequences)


def test_bernoulli_e_value_matches_scipy_binomial_mixture() -> None:
    events, trials, null = 3, 10_000, 0.001
    expected = np.mean(
        [
            math.exp(stats.binom.logpmf(events, trials, null / k) - stats.binom.logpmf(events, trials, null))
            for k in MIXTURE_EFFECTS
        ]
    )
    assert math.exp(bernoulli_rate_log_e_value(events, trials, null)) == pytest.approx(expected, rel=1e-9)
    assert bernoulli_rate_log_e_value(0, 0, null) == 0.0


def test_normal_mixture_e_value_matches_numerical_integration() -> None:
    estimate, null, variance, mixing_sd = 0.031, 0.0, 0.0002, 0.05
    information = 1 / variance
    score = (estimate - null) * information

    def integrand(lam: float) -> float:
        return math.exp(lam * score - lam**2 * information / 2) * float(stats.norm.pdf(lam, 0.0, mixing_sd))

    value, _ = integrate.quad(integrand, -1.0, 1.0, points=[score / information], limit=200)
    assert normal_mixture_log_e_value(estimate, null, variance, mixing_sd) == pytest.approx(
        math.log(value), rel=1e-7
    )


def test_normal_mixture_radius_is_where_the_e_value_reaches_one_over_alpha() -> None:
    variance, alpha, mixing_sd = 3e-4, 0.005, 0.1
    radius = normal_mixture_radius(variance, alpha, mixing_sd)
    assert normal_mixture_log_e_value(radius, 0.0, variance, mixing_sd) == pytest.approx(math.log(1 / alpha))


def test_normal_mixture_radius_matches_the_asymptotic_confidence_sequence_formula() -> None:
    """Waudby-Smith et al. (2021): sigma sqrt(2 (t rho^2 + 1) / (t^2 rho^2) log(sqrt(t rho^2 + 1)/alpha))."""
    sigma, t, rho, alpha = 0.2, 37, 0.4, 0.01
    expected = sigma * math.sqrt(
        2 * (t * rho**2 + 1) / (t**2 * rho**2) * math.log(math.sqrt(t * rho**2 + 1) / alpha)
    )
    # In information time: variance of the mean sigma^2 / t, mixing sd rho * sigma.
    assert normal_mixture_radius(sigma**2 / t, alpha, rho * sigma) == pytest.approx(expected, rel=1e-12)


def test_normal_mixture_keeps_its_level_over_many_looks() -> None:
    rng = np.random.default_rng(11)
    alpha, looks, sequences = 0.05, 200, 2000
    steps = rng.normal(size=(sequences, looks))
    means = np.cumsum(steps, axis=1) / np.arange(1, looks + 1)
    radii = np.array([normal_mixture_radius(1 / t, alpha, 0.3) for t in range(1, looks + 1)])
    ever_outside = (np.abs(means) > radii).any(axis=1).mean()
    assert ever_outside <= alpha


@pytest.mark.parametrize("variance", [math.inf, math.nan, 0.0, -1.0])
def test_normal_mixture_radius_refuses_a_variance_that_is_not_finite_and_positive(variance: float) -> None:
    with pytest.raises(ValueError, match="variance must be a finite positive number"):
        normal_mixture_radius(variance, 0.01, 0.1)


def test_dispersion_is_one_for_binomial_windows_and_grows_with_extra_variation() -> None:
    rng = np.random.default_rng(7)
    steady = [
        CountWindow(1000, int(rng.binomial(1000, 0.02)), 1000, int(rng.binomial(1000, 0.02)))
        for _ in range(60)
    ]
    assert rate_ratio_dispersion(RateRatioData.from_windows(steady), 1.0) == pytest.approx(1.0, abs=0.3)
    wandering = [
        CountWindow(
            1000,
            int(rng.binomial(1000, 0.02 * rng.gamma(2, 0.5))),
            1000,
            int(rng.binomial(1000, 0.02 * rng.gamma(2, 0.5))),
        )
        for _ in range(60)
    ]
    assert rate_ratio_dispersion(RateRatioData.from_windows(wandering), 1.0) > 3.0


def test_the_rate_ratio_estimate_is_stratified_by_window() -> None:
    # An outage in the champion's big minute and a calm challenger-heavy minute: pooled rates say 0.1,
    # each window says the variants are equal.
    windows = [CountWindow(1900, 950, 100, 50), CountWindow(1000, 10, 1000, 10)]
    assert rate_ratio_estimate(RateRatioData.from_windows(windows)) == pytest.approx(1.0)


def test_before_ten_windows_the_dispersion_is_assumed_and_a_burst_cannot_raise_it() -> None:
    steady = [CountWindow(9_000, 90, 3_000, 30) for _ in range(8)]
    burst = [CountWindow(9_000, 90, 3_000, 300), *steady[1:]]
    for windows in (steady, burst):
        assert rate_ratio_dispersion(RateRatioData.from_windows(windows), 1.0) == EARLY_DISPERSION
    assert rate_ratio_dispersion(RateRatioData.from_windows([*steady, *steady]), 1.0) == pytest.approx(
        1.0, abs=0.3
    )
