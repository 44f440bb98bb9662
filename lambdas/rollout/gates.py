"""Pre-traffic gates: may a candidate model version take any traffic at all?

Three gates run before the challenger sees a single request, and every one of them always runs and
reports, so the evidence shows all that is wrong with a candidate, not only the first thing:

* golden inputs      -- fixed inputs stored with the model package, with the outputs they must give;
                        the challenger must return every expected label exactly and every expected
                        class probability within ``golden_tolerance``.
* metric thresholds  -- the candidate's registered held-out metrics (accuracy, precision, recall, F1,
                        AUC) against absolute minimums, and against the champion's registered metrics:
                        none may drop by more than ``max_relative_drop`` relative to the champion's.
* input drift        -- recently captured requests against the training baseline, feature by feature:
                        the population stability index (PSI) and the two-sample Kolmogorov-Smirnov
                        test. A feature drifts when PSI > ``psi_max`` or the KS p-value is below
                        ``ks_pvalue_min`` divided by the number of features (Bonferroni).

A gate that cannot be evaluated (no golden cases, too few captured requests) reports
``insufficient_data``, never ``passed``; whether that blocks promotion is a setting
(``require_golden_cases``, ``require_drift_data``), and both block by default.

PSI uses ``psi_bins`` bins (10 by default, deciles: the convention the usual PSI thresholds of
0.1 / 0.2 / 0.25 were set for) cut at the baseline's own quantiles, so each bin holds about a tenth of
the training data. An empty bin would make PSI infinite, so every bin's count gets ``psi_smoothing``
added (0.5 by default: the Jeffreys prior) before the proportions are taken, in the baseline and in
the captured data alike.

The KS p-value is exact (lattice-path counting in integers) for small samples and otherwise the
Kolmogorov distribution's tail with Stephens' small-sample correction.

Pure domain code: pydantic, ``math`` and ``bisect`` only (no numpy, so it stays light in a Lambda);
no boto3, no network, no clock.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

__all__ = [
    "BASELINE_MAX_VALUES",
    "CLASSIFICATION_METRICS",
    "EXACT_KS_MAX_CELLS",
    "CapturedFeatures",
    "ClassificationMetric",
    "DriftGateResult",
    "FeatureDrift",
    "GateName",
    "GateSettings",
    "GateStatus",
    "GatesReport",
    "GoldenCase",
    "GoldenCaseResult",
    "GoldenGateResult",
    "GoldenSet",
    "KsTest",
    "MetricCheck",
    "MetricGateResult",
    "Prediction",
    "TrainingBaseline",
    "drift_gate",
    "evaluate_gates",
    "golden_gate",
    "kolmogorov_sf",
    "ks_two_sample",
    "metric_gate",
    "population_stability_index",
    "quantile_edges",
]

ClassificationMetric = Literal["accuracy", "precision", "recall", "f1", "auc"]
CLASSIFICATION_METRICS: tuple[ClassificationMetric, ...] = get_args(ClassificationMetric)

BASELINE_MAX_VALUES = 1000
"""Most values kept per feature in a training baseline: 8 features make about 160 KB of JSON."""

EXACT_KS_MAX_CELLS = 10_000
"""Largest n x m for which the KS p-value is counted exactly; beyond it the asymptotic tail is close."""

# Float rounding must not turn a drop of exactly the allowed size into a failure.
_RELATIVE_DROP_SLACK = 1e-12


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- settings ----------------------------------------------------------------------------------------


class GateSettings(_Frozen):
    """Thresholds of the pre-traffic gates; the environment config embeds this as ``rollout.gates``."""

    golden_tolerance: float = Field(
        default=1e-6,
        ge=0,
        description="Largest absolute difference allowed between an expected and a returned class "
        "probability of a golden case. Labels must match exactly.",
    )
    require_golden_cases: bool = Field(
        default=True,
        description="A candidate without golden cases blocks promotion. When false it is reported as "
        "insufficient_data and does not block.",
    )
    minimum_metrics: dict[ClassificationMetric, float] = Field(
        default_factory=dict,
        description="Absolute minimum of each named held-out metric (0-1). A metric named here but "
        "missing from the candidate's registered metrics fails the gate.",
    )
    max_relative_drop: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest drop of any metric relative to the champion's: 0.01 lets an accuracy of "
        "0.90 fall to 0.891, not lower.",
    )
    psi_max: float = Field(
        default=0.2,
        gt=0,
        description="A feature drifts when its population stability index exceeds this.",
    )
    psi_bins: int = Field(
        default=10,
        ge=2,
        le=100,
        description="PSI bins, cut at the training baseline's quantiles (10 = deciles, the convention "
        "PSI thresholds are quoted for).",
    )
    psi_smoothing: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="Added to every bin's count before PSI takes proportions, so that an empty bin "
        "gives a large but finite PSI.",
    )
    ks_pvalue_min: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Family-wise level of the Kolmogorov-Smirnov tests: a feature drifts when its p-value is "
        "below this divided by the number of features (Bonferroni), so an unchanged model with many "
        "features does not fail the gate more often than this.",
    )
    drift_min_samples: int = Field(
        default=200,
        ge=10,
        description="Minimum-sample guard: captured requests (and baseline values per feature) needed "
        "before drift is judged; with fewer the drift gate reports insufficient_data.",
    )
    require_drift_data: bool = Field(
        default=True,
        description="Too few captured requests blocks promotion. Set false for endpoints without data "
        "capture: the drift gate then reports insufficient_data without blocking.",
    )

    @field_validator("minimum_metrics")
    @classmethod
    def _metrics_are_fractions(
        cls, value: dict[ClassificationMetric, float]
    ) -> dict[ClassificationMetric, float]:
        for metric, threshold in value.items():
            if not 0 <= threshold <= 1:
                raise ValueError(f"minimum_metrics.{metric} must be within 0-1, got {threshold}")
        return value


# -- results -----------------------------------------------------------------------------------------


class GateName(StrEnum):
    GOLDEN_INPUTS = "golden_inputs"
    METRIC_THRESHOLDS = "metric_thresholds"
    INPUT_DRIFT = "input_drift"


class GateStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INSUFFICIENT_DATA = "insufficient_data"
    """The gate could not be evaluated; ``blocks_promotion`` says whether that stops the rollout."""


class _GateResult(_Frozen):
    gate: GateName
    status: GateStatus
    blocks_promotion: bool = Field(description="True when this result alone stops the rollout.")
    reason: str = Field(description="Why the gate gave this status, for people.")


# -- golden inputs -----------------------------------------------------------------------------------

Label = StrictInt | StrictStr
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
InputRecord = (
    Annotated[dict[str, FiniteFloat], Field(min_length=1)] | Annotated[list[FiniteFloat], Field(min_length=1)]
)


class GoldenCase(_Frozen):
    """One fixed input and the output any version of this model package must give for it."""

    case_id: str = Field(min_length=1, max_length=128, description="Names the case in every report.")
    record: InputRecord = Field(
        description="The input record as the inference API takes it: an object keyed by feature name "
        "or an array in schema order."
    )
    expected_label: Label = Field(description="The predicted class, compared exactly (1 is not '1').")
    expected_probabilities: Annotated[tuple[Probability, ...], Field(min_length=1)] | None = Field(
        default=None,
        description="Class probabilities in the model's class order; None checks the label only.",
    )


class GoldenSet(_Frozen):
    """The golden cases stored with a model package (``golden.json``)."""

    cases: tuple[GoldenCase, ...] = ()

    @field_validator("cases")
    @classmethod
    def _case_ids_are_unique(cls, cases: tuple[GoldenCase, ...]) -> tuple[GoldenCase, ...]:
        ids = [case.case_id for case in cases]
        duplicates = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
        if duplicates:
            raise ValueError(f"golden case ids must be unique, repeated: {duplicates}")
        return cases


class Prediction(_Frozen):
    """What the challenger returned for one golden case."""

    label: Label
    probabilities: tuple[FiniteFloat, ...] | None = None


class GoldenCaseResult(_Frozen):
    case_id: str
    passed: bool
    expected_label: Label
    actual_label: Label
    max_probability_error: float | None = Field(
        description="Largest absolute probability difference; None when probabilities were not compared."
    )
    reason: str


class GoldenGateResult(_GateResult):
    gate: Literal[GateName.GOLDEN_INPUTS] = GateName.GOLDEN_INPUTS
    tolerance: float
    cases: tuple[GoldenCaseResult, ...] = Field(description="Every case, ordered by case_id.")
    failed_cases: tuple[str, ...] = Field(description="Ids of the cases that failed, ordered.")


def golden_gate(
    golden: GoldenSet, outputs: Mapping[str, Prediction], settings: GateSettings
) -> GoldenGateResult:
    """Check the challenger's outputs (keyed by case_id) against the golden cases.

    Raises ValueError when the outputs do not cover exactly the golden cases: that is a fault of the
    caller, not of the model.
    """
    _check_outputs_match_cases(golden, outputs)
    tolerance = settings.golden_tolerance
    if not golden.cases:
        blocks = settings.require_golden_cases
        note = "golden cases are required" if blocks else "not required, so this does not block"
        return GoldenGateResult(
            status=GateStatus.INSUFFICIENT_DATA,
            blocks_promotion=blocks,
            reason=f"the model package has no golden cases ({note})",
            tolerance=tolerance,
            cases=(),
            failed_cases=(),
        )
    ordered = sorted(golden.cases, key=lambda case: case.case_id)
    results = tuple(_check_golden_case(case, outputs[case.case_id], tolerance) for case in ordered)
    failed = tuple(result.case_id for result in results if not result.passed)
    if failed:
        details = "; ".join(f"{r.case_id}: {r.reason}" for r in results if not r.passed)
        reason = f"{len(failed)} of {len(results)} golden cases failed: {details}"
    else:
        reason = f"all {len(results)} golden cases reproduced within tolerance {tolerance:g}"
    return GoldenGateResult(
        status=GateStatus.FAILED if failed else GateStatus.PASSED,
        blocks_promotion=bool(failed),
        reason=reason,
        tolerance=tolerance,
        cases=results,
        failed_cases=failed,
    )


def _check_outputs_match_cases(golden: GoldenSet, outputs: Mapping[str, Prediction]) -> None:
    expected = {case.case_id for case in golden.cases}
    missing = sorted(expected - set(outputs))
    unknown = sorted(set(outputs) - expected)
    if missing or unknown:
        raise ValueError(
            f"challenger outputs must cover exactly the golden cases: missing {missing}, unknown {unknown}"
        )


def _check_golden_case(case: GoldenCase, output: Prediction, tolerance: float) -> GoldenCaseResult:
    problems: list[str] = []
    if output.label != case.expected_label:
        problems.append(f"label {output.label!r}, expected {case.expected_label!r}")
    error: float | None = None
    expected = case.expected_probabilities
    if expected is not None:
        actual = output.probabilities
        if actual is None:
            problems.append("no probabilities returned")
        elif len(actual) != len(expected):
            problems.append(f"{len(actual)} probabilities returned, expected {len(expected)}")
        else:
            error = max(abs(a - e) for a, e in zip(actual, expected, strict=True))
            if error > tolerance:
                problems.append(f"probabilities differ by up to {error:.3g} > tolerance {tolerance:g}")
    return GoldenCaseResult(
        case_id=case.case_id,
        passed=not problems,
        expected_label=case.expected_label,
        actual_label=output.label,
        max_probability_error=error,
        reason="; ".join(problems) or "reproduced",
    )


# -- metric thresholds -------------------------------------------------------------------------------


class MetricCheck(_Frozen):
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


class MetricGateResult(_GateResult):
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


class KsTest(_Frozen):
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


# -- input drift -------------------------------------------------------------------------------------

FeatureValues = tuple[FiniteFloat, ...]


def _check_feature_columns(columns: dict[str, FeatureValues], what: str) -> None:
    if not columns:
        raise ValueError(f"{what} must name at least one feature")
    blank = [name for name in columns if not name.strip()]
    if blank:
        raise ValueError(f"{what} has a blank feature name")


class TrainingBaseline(_Frozen):
    """Per feature, a sorted sample of the training data's values (``baseline.json``).

    Build it with ``from_columns``, which keeps at most ``BASELINE_MAX_VALUES`` evenly spaced order
    statistics per feature: deterministic, and within 1/1000 of the training data's CDF everywhere.
    """

    features: dict[str, FeatureValues] = Field(description="Feature name -> its values, ascending.")

    @field_validator("features")
    @classmethod
    def _usable_and_sorted(cls, features: dict[str, FeatureValues]) -> dict[str, FeatureValues]:
        _check_feature_columns(features, "a training baseline")
        for name, values in features.items():
            if not values:
                raise ValueError(f"baseline feature {name!r} has no values")
            if len(values) > BASELINE_MAX_VALUES:
                raise ValueError(
                    f"baseline feature {name!r} has {len(values)} values, at most {BASELINE_MAX_VALUES} "
                    "are kept (build it with TrainingBaseline.from_columns)"
                )
        return {name: tuple(sorted(values)) for name, values in features.items()}

    @classmethod
    def from_columns(
        cls, columns: Mapping[str, Sequence[float]], max_values: int = BASELINE_MAX_VALUES
    ) -> TrainingBaseline:
        """A baseline from training columns, each thinned to ``max_values`` evenly spaced order statistics."""
        if not 2 <= max_values <= BASELINE_MAX_VALUES:
            raise ValueError(f"max_values must be within 2-{BASELINE_MAX_VALUES}, got {max_values}")
        return cls(features={name: _thin(sorted(values), max_values) for name, values in columns.items()})

    @property
    def smallest_sample(self) -> int:
        return min(len(values) for values in self.features.values())


def _thin(ordered: Sequence[float], keep: int) -> tuple[float, ...]:
    size = len(ordered)
    if size <= keep:
        return tuple(ordered)
    # Positions 0 ... size-1 in keep even steps: the minimum and maximum are always kept.
    return tuple(ordered[round(k * (size - 1) / (keep - 1))] for k in range(keep))


class CapturedFeatures(_Frozen):
    """Recently captured requests, as one column of values per feature (every column the same length).

    No rows at all is allowed: it is too little data, which the drift gate reports, not bad input.
    """

    features: dict[str, FeatureValues] = Field(description="Feature name -> the captured values.")

    @field_validator("features")
    @classmethod
    def _columns_are_aligned(cls, features: dict[str, FeatureValues]) -> dict[str, FeatureValues]:
        _check_feature_columns(features, "captured data")
        lengths = {name: len(values) for name, values in features.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"every captured feature needs one value per request, got lengths {lengths}")
        return features

    @property
    def rows(self) -> int:
        return len(next(iter(self.features.values())))


class FeatureDrift(_Frozen):
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    ks_method: Literal["exact", "asymptotic"]
    passed: bool
    reason: str


class DriftGateResult(_GateResult):
    gate: Literal[GateName.INPUT_DRIFT] = GateName.INPUT_DRIFT
    captured_samples: int
    baseline_samples: int = Field(description="Values of the feature with the smallest baseline.")
    psi_max: float
    ks_pvalue_min: float
    features: tuple[FeatureDrift, ...] = Field(
        description="Every feature, in name order; empty when skipped."
    )
    drifted_features: tuple[str, ...]


def drift_gate(
    baseline: TrainingBaseline, captured: CapturedFeatures, settings: GateSettings
) -> DriftGateResult:
    """Compare every feature's captured values with its training baseline (PSI and KS).

    Raises ValueError when the two do not name the same features.
    """
    missing = sorted(set(baseline.features) - set(captured.features))
    unknown = sorted(set(captured.features) - set(baseline.features))
    if missing or unknown:
        raise ValueError(
            f"captured features must match the baseline's: missing {missing}, not in the baseline {unknown}"
        )
    shortage = _sample_shortage(baseline, captured, settings.drift_min_samples)
    if shortage:
        blocks = settings.require_drift_data
        note = "drift data is required" if blocks else "not required, so this does not block"
        status = GateStatus.INSUFFICIENT_DATA
        reason = f"{shortage} ({note})"
        return _drift_result(
            baseline, captured, settings, drifts=(), status=status, blocks=blocks, reason=reason
        )
    ks_level = settings.ks_pvalue_min / len(baseline.features)
    drifts = tuple(
        _feature_drift(name, baseline, captured, settings, ks_level) for name in sorted(baseline.features)
    )
    drifted = [drift for drift in drifts if not drift.passed]
    if drifted:
        reason = f"{len(drifted)} of {len(drifts)} features drifted: " + "; ".join(d.reason for d in drifted)
        return _drift_result(
            baseline, captured, settings, drifts=drifts, status=GateStatus.FAILED, blocks=True, reason=reason
        )
    reason = f"no drift in {len(drifts)} features over {captured.rows} captured requests"
    return _drift_result(
        baseline, captured, settings, drifts=drifts, status=GateStatus.PASSED, blocks=False, reason=reason
    )


def _sample_shortage(baseline: TrainingBaseline, captured: CapturedFeatures, minimum: int) -> str:
    if captured.rows < minimum:
        return f"{captured.rows} captured requests, at least {minimum} needed to judge drift"
    if baseline.smallest_sample < minimum:
        return f"the training baseline has {baseline.smallest_sample} values for a feature, {minimum} needed"
    return ""


def _drift_result(
    baseline: TrainingBaseline,
    captured: CapturedFeatures,
    settings: GateSettings,
    *,
    drifts: tuple[FeatureDrift, ...],
    status: GateStatus,
    blocks: bool,
    reason: str,
) -> DriftGateResult:
    return DriftGateResult(
        status=status,
        blocks_promotion=blocks,
        reason=reason,
        captured_samples=captured.rows,
        baseline_samples=baseline.smallest_sample,
        psi_max=settings.psi_max,
        ks_pvalue_min=settings.ks_pvalue_min,
        features=drifts,
        drifted_features=tuple(drift.feature for drift in drifts if not drift.passed),
    )


def _feature_drift(
    name: str, baseline: TrainingBaseline, captured: CapturedFeatures, settings: GateSettings, ks_level: float
) -> FeatureDrift:
    reference, recent = baseline.features[name], captured.features[name]
    psi = population_stability_index(
        reference, recent, bins=settings.psi_bins, smoothing=settings.psi_smoothing
    )
    ks = ks_two_sample(reference, recent)
    problems = []
    if psi > settings.psi_max:
        problems.append(f"PSI {psi:.3g} > {settings.psi_max:g}")
    if ks.pvalue < ks_level:
        problems.append(f"KS p-value {ks.pvalue:.3g} < {ks_level:.3g} (D = {ks.statistic:.3g})")
    summary = f"PSI {psi:.3g}, KS p-value {ks.pvalue:.3g}"
    return FeatureDrift(
        feature=name,
        psi=psi,
        ks_statistic=ks.statistic,
        ks_pvalue=ks.pvalue,
        ks_method=ks.method,
        passed=not problems,
        reason=f"{name}: {', '.join(problems)}" if problems else f"{name}: {summary}",
    )


# -- all gates ---------------------------------------------------------------------------------------


class GatesReport(_Frozen):
    """Every gate's result and the overall verdict: promotion may go on only if nothing blocks it."""

    passed: bool
    blocking_gates: tuple[GateName, ...]
    reason: str
    golden_inputs: GoldenGateResult
    metric_thresholds: MetricGateResult
    input_drift: DriftGateResult

    @model_validator(mode="after")
    def _verdict_follows_results(self) -> GatesReport:
        blocking = tuple(result.gate for result in self.results() if result.blocks_promotion)
        if self.blocking_gates != blocking or self.passed != (not blocking):
            raise ValueError("passed and blocking_gates must follow from the gate results")
        return self

    def results(self) -> Iterator[GoldenGateResult | MetricGateResult | DriftGateResult]:
        yield self.golden_inputs
        yield self.metric_thresholds
        yield self.input_drift


def evaluate_gates(
    *,
    settings: GateSettings,
    golden: GoldenSet,
    challenger_outputs: Mapping[str, Prediction],
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    baseline: TrainingBaseline,
    captured: CapturedFeatures,
) -> GatesReport:
    """Run all three gates (each runs whatever the others found) and give the overall verdict."""
    golden_result = golden_gate(golden, challenger_outputs, settings)
    metric_result = metric_gate(candidate_metrics, champion_metrics, settings)
    drift_result = drift_gate(baseline, captured, settings)
    results = (golden_result, metric_result, drift_result)
    blocking = tuple(result.gate for result in results if result.blocks_promotion)
    if blocking:
        reason = "blocked by " + "; ".join(
            f"{r.gate.value}: {r.reason}" for r in results if r.blocks_promotion
        )
    else:
        reason = "all gates passed" + "".join(
            f"; {r.gate.value} not evaluated: {r.reason}"
            for r in results
            if r.status is not GateStatus.PASSED
        )
    return GatesReport(
        passed=not blocking,
        blocking_gates=blocking,
        reason=reason,
        golden_inputs=golden_result,
        metric_thresholds=metric_result,
        input_drift=drift_result,
    )
