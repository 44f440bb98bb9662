"""The gates' settings and the parts of a result every gate shares.

Pure domain code: pydantic and the standard library only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CLASSIFICATION_METRICS",
    "ClassificationMetric",
    "FrozenModel",
    "GateName",
    "GateResult",
    "GateSettings",
    "GateStatus",
]


ClassificationMetric = Literal["accuracy", "precision", "recall", "f1", "auc"]
CLASSIFICATION_METRICS: tuple[ClassificationMetric, ...] = get_args(ClassificationMetric)


class FrozenModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- settings ----------------------------------------------------------------------------------------


class GateSettings(FrozenModel):
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


class GateResult(FrozenModel):
    gate: GateName
    status: GateStatus
    blocks_promotion: bool = Field(description="True when this result alone stops the rollout.")
    reason: str = Field(description="Why the gate gave this status, for people.")
