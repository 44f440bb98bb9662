"""The input-drift gate: captured requests against the training baseline, feature by feature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field, FiniteFloat, field_validator

from lambdas.gates.settings import FrozenModel, GateName, GateResult, GateSettings, GateStatus
from lambdas.gates.statistics import ks_two_sample, population_stability_index

__all__ = [
    "BASELINE_MAX_VALUES",
    "CapturedFeatures",
    "DriftGateResult",
    "FeatureDrift",
    "TrainingBaseline",
    "drift_gate",
]


BASELINE_MAX_VALUES = 1000
"""Most values kept per feature in a training baseline: 8 features make about 160 KB of JSON."""
# -- input drift -------------------------------------------------------------------------------------

FeatureValues = tuple[FiniteFloat, ...]


def _check_feature_columns(columns: dict[str, FeatureValues], what: str) -> None:
    if not columns:
        raise ValueError(f"{what} must name at least one feature")
    blank = [name for name in columns if not name.strip()]
    if blank:
        raise ValueError(f"{what} has a blank feature name")


class TrainingBaseline(FrozenModel):
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


class CapturedFeatures(FrozenModel):
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


class FeatureDrift(FrozenModel):
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    ks_method: Literal["exact", "asymptotic"]
    passed: bool
    reason: str


class DriftGateResult(GateResult):
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
