"""Anytime-valid sequential tests for comparing a challenger with a champion.

Every test here is an e-process (a nonnegative supermartingale under its null hypothesis), so by
Ville's inequality the chance that it *ever* crosses 1/alpha is at most alpha, however often it is
looked at. That is what lets the judge look after every bake window without inflating false alarms.

Two families:

* Rate ratio of rare events (errors per request). Given the total number of events in a window,
  the challenger's share is Binomial(m, pi) with pi = rho * r / (1 + rho * r), where r is the ratio
  of exposures and rho the ratio of the per-request rates (the Poisson approximation, accurate for
  rare events). The per-window likelihood ratios multiply into a martingale; a discrete mixture
  over alternatives rho gives a one-sided mixture SPRT, and inverting it a confidence sequence.
  Conditioning on the window total removes the champion's unknown rate, including any shock that
  hits both variants in the same minutes.
* Differences of means with an asymptotically normal estimate (latency log-ratios, conversion
  differences): the Robbins normal-mixture boundary in information time, i.e. the asymptotic
  confidence sequence of Waudby-Smith et al. (2021) and the mSPRT of Johari et al. (2017).

Pure Python with ``math`` only, so that the judge fits a Lambda without numpy or scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Side = Literal["greater", "less"]
"""``greater``: the alternative is a ratio above the null; ``less``: below it."""

_MIXTURE_SIZE = 16
_SMALLEST_EFFECT = 1.05
_LARGEST_EFFECT = 8.0
MIXTURE_EFFECTS: tuple[float, ...] = tuple(
    math.exp(
        math.log(_SMALLEST_EFFECT)
        + i * (math.log(_LARGEST_EFFECT) - math.log(_SMALLEST_EFFECT)) / (_MIXTURE_SIZE - 1)
    )
    for i in range(_MIXTURE_SIZE)
)
"""Alternatives of the rate-ratio mixture, as multiples of the null ratio (1.05x to 8x, log-spaced).

Equal weights on a log grid spread the power over effects from barely-above-tolerance to gross
failures; a discrete mixture of likelihood ratios is still exactly a martingale.
"""

_PROMOTION_EFFECTS_UP_TO = 2.0
PROMOTION_EFFECTS: tuple[float, ...] = tuple(
    math.exp(math.log(1.02) + i * (math.log(_PROMOTION_EFFECTS_UP_TO) - math.log(1.02)) / (_MIXTURE_SIZE - 1))
    for i in range(_MIXTURE_SIZE)
)
"""Alternatives of the 'less' (non-inferiority) side: 1.02x to 2x below the null, log-spaced.

Showing non-inferiority is about small effects -- an equal challenger sits a margin (tens of percent)
below the null -- so the weight goes there rather than to 8x, which only the harm side needs.
"""

_BISECTION_STEPS = 18
_RATIO_SEARCH_LOW = 1e-4
_RATIO_SEARCH_HIGH = 1e4


@dataclass(frozen=True, slots=True)
class CountWindow:
    """Events (errors) and exposures (requests) of both variants over the same window."""

    champion_exposure: int
    champion_events: int
    challenger_exposure: int
    challenger_events: int


@dataclass(frozen=True, slots=True)
class RateRatioData:
    """The informative part of a series of windows, reduced for the conditional binomial test.

    Only windows where both variants had exposure and at least one event carry information about
    the ratio; each keeps (window total of events m, exposure ratio r).
    """

    challenger_events: int
    totals_and_exposure_ratios: tuple[tuple[int, float], ...]
    challenger_events_per_window: tuple[int, ...] = ()
    dispersion: float = 1.0
    """Extra-binomial variation (>= 1): the log-likelihood ratios are divided by it (quasi-likelihood)."""

    @classmethod
    def from_windows(cls, windows: Iterable[CountWindow]) -> RateRatioData:
        informative = [
            w
            for w in windows
            if w.champion_exposure > 0
            and w.challenger_exposure > 0
            and w.champion_events + w.challenger_events > 0
        ]
        return cls(
            challenger_events=sum(w.challenger_events for w in informative),
            totals_and_exposure_ratios=tuple(
                (w.champion_events + w.challenger_events, w.challenger_exposure / w.champion_exposure)
                for w in informative
            ),
            challenger_events_per_window=tuple(w.challenger_events for w in informative),
        )

    @property
    def total_events(self) -> int:
        return sum(m for m, _ in self.totals_and_exposure_ratios)

    def with_dispersion(self, dispersion: float) -> RateRatioData:
        if not (math.isfinite(dispersion) and dispersion >= 1.0):
            raise ValueError(f"a dispersion is a finite number >= 1, got {dispersion}")
        return RateRatioData(
            self.challenger_events,
            self.totals_and_exposure_ratios,
            self.challenger_events_per_window,
            dispersion,
        )


def rate_ratio_estimate(data: RateRatioData) -> float | None:
    """The Mantel-Haenszel rate ratio: stratified by window, so a shock that hits the variants in
    different minutes, or a split that changes from step to step, does not bias it (a pooled ratio of
    rates would: Simpson's paradox). None without champion events."""
    windows = data.totals_and_exposure_ratios
    if len(data.challenger_events_per_window) != len(windows):
        return None
    numerator = sum(
        x / (1.0 + r) for (_, r), x in zip(windows, data.challenger_events_per_window, strict=True)
    )
    denominator = sum(
        (m - x) * r / (1.0 + r) for (m, r), x in zip(windows, data.challenger_events_per_window, strict=True)
    )
    return numerator / denominator if denominator > 0.0 else None


MIN_DISPERSION_WINDOWS = 10
"""From this many informative windows on, the dispersion is the windows' own estimate."""

EARLY_DISPERSION = 2.0
"""The dispersion assumed before the windows can estimate it.

A test that takes the first minutes for binomial is far too sure when the variants' rates wander on
their own: in the benchmark's `overdispersed_equal` (coefficient of variation 0.7), 2.3 % of equal
models were rolled back for harm, most of them in minutes 3 to 8. Assuming 2 until 10 windows
brings that to 0.75 % (400 replicates; 1.5: 1.0 %), and costs a gross failure little: its evidence
is many times the threshold (`errors_5x` is still found after 4 minutes, 24.8 excess errors against
23.5; `errors_2x` after 19 minutes, 33.2 against 33.0)."""


def rate_ratio_dispersion(data: RateRatioData, ratio: float | None) -> float:
    """Pearson's chi-square over its degrees of freedom, at least 1: the windows' extra-binomial variation.

    Under the conditional binomial model each window's challenger share of the events is
    Binomial(m, pi) with pi = ratio r / (1 + ratio r); when the variants' rates wander independently
    from window to window (a deploy, a cache, a noisy neighbour), the shares vary more than that and
    a test that ignores it is far too sure. The quasi-likelihood correction divides the log-likelihood
    ratios by this factor (McCullagh and Nelder, ch. 4). Before MIN_DISPERSION_WINDOWS windows it is
    at least EARLY_DISPERSION.

    `ratio` is the windows' estimate (`rate_ratio_estimate`); None where it has none, every event
    being the challenger's: each window's share is then 1 exactly, with no variation to measure. Taken
    at any other ratio (no difference, say), the difference itself would count as variation and weaken
    the very test that should show it.
    """
    windows = data.totals_and_exposure_ratios
    if not windows or len(data.challenger_events_per_window) != len(windows):
        return 1.0
    if len(windows) < MIN_DISPERSION_WINDOWS:
        # Not estimated from fewer windows: a burst in one of them would inflate the estimate and so
        # weaken the very rollback the burst calls for.
        return EARLY_DISPERSION
    return _pearson_dispersion(windows, data.challenger_events_per_window, ratio)


def _pearson_dispersion(
    windows: Sequence[tuple[int, float]], challenger_events: Sequence[int], ratio: float | None
) -> float:
    chi_square = 0.0
    for (m, r), x in zip(windows, challenger_events, strict=True):
        pi = 1.0 if ratio is None else ratio * r / (1.0 + ratio * r)
        expected_variance = m * pi * (1.0 - pi)
        if expected_variance > 0.0:
            chi_square += (x - m * pi) ** 2 / expected_variance
    degrees = len(windows) - 1
    # Under the binomial model chi_square / degrees is 1 give or take sqrt(2 / degrees): one standard
    # deviation is taken off, so that chance alone seldom weakens the test.
    return max(1.0, chi_square / degrees - math.sqrt(2.0 / degrees))


def rate_ratio_log_likelihood_ratio(data: RateRatioData, alternative: float, null: float) -> float:
    """log of prod_i Binom(x_i; m_i, pi_i(alternative)) / Binom(x_i; m_i, pi_i(null)).

    With pi = rho r / (1 + rho r) the binomial log-likelihood is x log(rho) - m log(1 + rho r) plus
    terms free of rho, which cancel in the ratio.
    """
    events_term = data.challenger_events * math.log(alternative / null)
    log1p = math.log1p
    total_term = sum(
        [m * (log1p(alternative * r) - log1p(null * r)) for m, r in data.totals_and_exposure_ratios]
    )
    return (events_term - total_term) / data.dispersion


def _log_mean_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def rate_ratio_log_e_value(data: RateRatioData, null: float, side: Side) -> float:
    """log e-value of the one-sided mixture SPRT for H0: rho <= null (side greater) or rho >= null (less).

    The binomial family has a monotone likelihood ratio, so a likelihood ratio against the boundary
    value `null` is a supermartingale under every rho on the null side: the test is valid for the
    composite null, not just for rho == null.
    """
    if not data.totals_and_exposure_ratios:
        return 0.0
    alternatives = (
        [null * k for k in MIXTURE_EFFECTS] if side == "greater" else [null / k for k in PROMOTION_EFFECTS]
    )
    return _log_mean_exp([rate_ratio_log_likelihood_ratio(data, a, null) for a in alternatives])


def rate_ratio_lower_bound(data: RateRatioData, alpha: float) -> float | None:
    """Anytime-valid lower confidence bound for rho: sup of the nulls the 'greater' test rejects.

    The 'greater' e-value falls as the null rises, so the set of rejected nulls is an interval from
    zero and bisection finds its end. None when no null is rejected (no evidence of any size).
    """
    threshold = math.log(1.0 / alpha)

    def rejected(log_null: float) -> bool:
        return rate_ratio_log_e_value(data, math.exp(log_null), "greater") >= threshold

    low, high = math.log(_RATIO_SEARCH_LOW), math.log(_RATIO_SEARCH_HIGH)
    if not rejected(low):
        return None
    if rejected(high):
        return _RATIO_SEARCH_HIGH
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if rejected(middle) else (low, middle)
    return math.exp(low)


def rate_ratio_upper_bound(data: RateRatioData, alpha: float) -> float | None:
    """Anytime-valid upper confidence bound for rho: inf of the nulls the 'less' test rejects.

    None when no null is rejected (unbounded above).
    """
    threshold = math.log(1.0 / alpha)

    def rejected(log_null: float) -> bool:
        return rate_ratio_log_e_value(data, math.exp(log_null), "less") >= threshold

    low, high = math.log(_RATIO_SEARCH_LOW), math.log(_RATIO_SEARCH_HIGH)
    if not rejected(high):
        return None
    if rejected(low):
        return _RATIO_SEARCH_LOW
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (low, middle) if rejected(middle) else (middle, high)
    return math.exp(high)


def bernoulli_rate_log_e_value(events: int, trials: int, null: float) -> float:
    """log e-value for H0: p >= null against p < null for i.i.d. Bernoulli(p) trials.

    A discrete mixture over p = null / k (k on the MIXTURE_EFFECTS grid). Used to show that a
    challenger's error rate is below an absolute, negligible level.
    """
    if trials == 0 or null <= 0.0:
        return 0.0
    log_ratios = []
    for k in MIXTURE_EFFECTS:
        p = null / k
        log_ratios.append(
            events * math.log(p / null) + (trials - events) * (math.log1p(-p) - math.log1p(-null))
        )
    return _log_mean_exp(log_ratios)


def normal_mixture_log_e_value(estimate: float, null: float, variance: float, mixing_sd: float) -> float:
    """log of the Robbins normal-mixture martingale at information 1/variance.

    With Z^2 = (estimate - null)^2 / variance and c = mixing_sd^2 / variance, the martingale
    integral_lambda exp(lambda S - lambda^2 I / 2) N(lambda; 0, mixing_sd^2) d lambda equals
    (1 + c)^(-1/2) exp(c Z^2 / (2 (1 + c))).
    """
    c = mixing_sd**2 / variance
    z_squared = (estimate - null) ** 2 / variance
    return -0.5 * math.log1p(c) + c * z_squared / (2.0 * (1.0 + c))


def normal_mixture_radius(variance: float, alpha: float, mixing_sd: float) -> float:
    """Half-width of the (1 - alpha) asymptotic confidence sequence around an estimate.

    Solves normal_mixture_log_e_value = log(1/alpha) for |estimate - null|:
    radius^2 = V (1 + V / s^2) (log(1 + s^2 / V) + 2 log(1 / alpha)). Used for one-sided bounds it
    is conservative (each side has level at most alpha).
    """
    if not (math.isfinite(variance) and variance > 0.0):
        raise ValueError(f"variance must be a finite positive number, got {variance}")
    ratio = mixing_sd**2 / variance
    return math.sqrt(variance * (1.0 + 1.0 / ratio) * (math.log1p(ratio) + 2.0 * math.log(1.0 / alpha)))
