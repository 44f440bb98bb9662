"""The drift statistics: population stability index on quantile bins, and the two-sample KS test.

The KS p-value is exact (lattice-path counting in integers) for small samples and otherwise the
Kolmogorov distribution's tail with Stephens' small-sample correction. ``math`` and ``bisect`` only (no
numpy, so it stays light in a Lambda).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from lambdas.gates.settings import FrozenModel

__all__ = [
    "EXACT_KS_MAX_CELLS",
    "KsTest",
    "kolmogorov_sf",
    "ks_two_sample",
    "population_stability_index",
    "quantile_edges",
]


EXACT_KS_MAX_CELLS = 10_000
"""Largest n x m for which the KS p-value is counted exactly; beyond it the asymptotic tail is close."""
# -- drift statistics --------------------------------------------------------------------------------


def _require_sample(values: Sequence[float], what: str) -> None:
    if not values:
        raise ValueError(f"{what} is empty")
    bad = next((value for value in values if not math.isfinite(value)), None)
    if bad is not None:
        raise ValueError(f"{what} contains a non-finite value ({bad})")


def quantile_edges(sorted_baseline: Sequence[float], bins: int) -> tuple[float, ...]:
    """Interior bin edges at the baseline's quantiles 1/bins ... (bins-1)/bins, without repeats.

    Each edge is a baseline value (the inverted-CDF quantile, numpy's ``method="inverted_cdf"``) and
    bins are closed on the right, so no bin between two edges is empty in the baseline. Repeated
    edges (a feature with few distinct values) collapse, leaving fewer bins.
    """
    _require_sample(sorted_baseline, "baseline")
    if bins < 2:
        raise ValueError(f"PSI needs at least 2 bins, got {bins}")
    size = len(sorted_baseline)
    edges = (sorted_baseline[-(-k * size // bins) - 1] for k in range(1, bins))
    return tuple(sorted(set(edges)))


def _bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_left(edges, value)] += 1
    return counts


def population_stability_index(
    baseline: Sequence[float], captured: Sequence[float], *, bins: int = 10, smoothing: float = 0.5
) -> float:
    """PSI = sum over bins of (q - p) * ln(q / p): p the baseline's share, q the captured data's.

    Bins are cut at the baseline's quantiles (see ``quantile_edges``); ``smoothing`` is added to every
    bin's count first. With ``smoothing=0`` a bin empty on one side only gives infinity.
    """
    _require_sample(captured, "captured sample")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    ordered = sorted(baseline)
    edges = quantile_edges(ordered, bins)
    expected = _proportions(_bin_counts(ordered, edges), smoothing)
    actual = _proportions(_bin_counts(captured, edges), smoothing)
    return math.fsum(_psi_term(p, q) for p, q in zip(expected, actual, strict=True))


def _proportions(counts: Sequence[int], smoothing: float) -> list[float]:
    total = sum(counts) + smoothing * len(counts)
    return [(count + smoothing) / total for count in counts]


def _psi_term(expected: float, actual: float) -> float:
    if expected == actual:
        return 0.0
    if expected == 0 or actual == 0:
        return math.inf
    return (actual - expected) * math.log(actual / expected)


class KsTest(FrozenModel):
    """A two-sample Kolmogorov-Smirnov test, two-sided."""

    statistic: float = Field(description="Largest distance between the two empirical CDFs.")
    pvalue: float = Field(description="Chance of a distance at least this large if both come from one law.")
    method: Literal["exact", "asymptotic"]


def ks_two_sample(first: Sequence[float], second: Sequence[float]) -> KsTest:
    """The two-sided two-sample KS test, as ``scipy.stats.ks_2samp`` defines it.

    The p-value is exact (all lattice paths counted in integers) when n x m <= ``EXACT_KS_MAX_CELLS``;
    otherwise it is the Kolmogorov distribution's tail at (sqrt(en) + 0.12 + 0.11 / sqrt(en)) x D with
    en = n m / (n + m) (Stephens' correction). Ties are handled exactly in the statistic; with tied
    data the continuous-law p-value is conservative.
    """
    _require_sample(first, "first sample")
    _require_sample(second, "second sample")
    n, m = len(first), len(second)
    gap = _largest_cdf_gap(sorted(first), sorted(second))
    statistic = gap / (n * m)
    if n * m <= EXACT_KS_MAX_CELLS:
        return KsTest(statistic=statistic, pvalue=_exact_ks_pvalue(n, m, gap), method="exact")
    effective = math.sqrt(n * m / (n + m))
    scaled = (effective + 0.12 + 0.11 / effective) * statistic
    return KsTest(statistic=statistic, pvalue=kolmogorov_sf(scaled), method="asymptotic")


def _largest_cdf_gap(first: Sequence[float], second: Sequence[float]) -> int:
    """max over x of |n m F1(x) - n m F2(x)|, in integers: |count1(<= x) * m - count2(<= x) * n|."""
    n, m = len(first), len(second)
    i = j = gap = 0
    while i < n and j < m:
        # Step past every copy of the smaller value in both samples, so that ties move together.
        value = min(first[i], second[j])
        while i < n and first[i] == value:
            i += 1
        while j < m and second[j] == value:
            j += 1
        gap = max(gap, abs(i * m - j * n))
    return gap


def _exact_ks_pvalue(n: int, m: int, gap: int) -> float:
    """P(D >= gap / (n m)): one minus the share of lattice paths that stay strictly inside the band."""
    if gap == 0:
        return 1.0
    # paths[j]: paths from (0, 0) to (i, j) with |i m - j n| < gap at every point.
    paths = [1 if j * n < gap else 0 for j in range(m + 1)]
    for j in range(1, m + 1):
        paths[j] = paths[j - 1] if paths[j] else 0
    for i in range(1, n + 1):
        paths[0] = paths[0] if i * m < gap else 0
        for j in range(1, m + 1):
            paths[j] = paths[j] + paths[j - 1] if abs(i * m - j * n) < gap else 0
    total = math.comb(n + m, n)
    return (total - paths[m]) / total


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the limit of sqrt(n) D_n), accurate to about 1e-14.

    Two series, each where it converges fast: the theta-function form below 1.18, the alternating
    series 2 sum (-1)^(k-1) exp(-2 k^2 x^2) above.
    """
    if x <= 0:
        return 1.0
    if x < 1.18:
        factor = -(math.pi**2) / (8 * x * x)
        series = math.fsum(math.exp(factor * (2 * k - 1) ** 2) for k in range(1, 8))
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * series))
    series = math.fsum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 12))
    return min(1.0, max(0.0, 2.0 * series))
