"""Settings of the rollout judge: alpha, tolerances and the metrics in play.

Self-contained (pydantic and the standard library only) so that the environment config can embed it
as ``rollout.judge`` and the YAML file sets these values. The defaults are the ones the benchmark
(`make bench`) supports; see "How the judge decides" in the README.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Metric(StrEnum):
    """A metric the judge can compare."""

    ERRORS = "errors"
    """Failed requests (5XX plus model errors) per request, as a rate ratio challenger / champion."""
    LATENCY = "latency"
    """Per-window latency statistic, as a ratio challenger / champion on the same windows."""
    CONVERSION = "conversion"
    """Business outcome from feedback (successes per trial), as a difference challenger - champion."""


LatencyStatistic = Literal["average", "p50", "p90", "p99"]


class JudgeSettings(BaseModel):
    """How sure the judge must be, and how much worse a challenger may be, before it acts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: tuple[Metric, ...] = Field(
        default=(Metric.ERRORS, Metric.LATENCY, Metric.CONVERSION),
        description="Metrics in play. Rollback if any shows harm; promote only when all are non-inferior.",
    )
    rollback_alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=0.5,
        description="Chance of ever rolling back a challenger that is within every tolerance, over all "
        "looks and all metrics (split evenly across metrics).",
    )
    promote_alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=0.5,
        description="Chance of ever promoting a challenger that is worse than a non-inferiority margin "
        "(per metric, split evenly across metrics).",
    )
    error_tolerance: float = Field(
        default=0.10,
        ge=0.0,
        description="Relative: roll back when the challenger's error rate is confidently above "
        "(1 + tolerance) x the champion's.",
    )
    error_margin: float = Field(
        default=0.25,
        gt=0.0,
        description="Relative non-inferiority margin: promotion needs the challenger's error rate "
        "confidently below (1 + margin) x the champion's. A challenger worse than that is promoted with "
        "a chance of at most promote_alpha.",
    )
    negligible_error_rate: float = Field(
        default=0.002,
        ge=0.0,
        lt=1.0,
        description="Absolute error rate below which errors count as non-inferior without a ratio "
        "(needed when both variants have almost no errors). 0 turns this rule off.",
    )
    latency_statistic: LatencyStatistic = Field(
        default="p99",
        description="Which CloudWatch latency statistic to compare per window. A percentile is judged "
        "beside the average (harm if either shows it, non-inferior only if both are); 'average' alone is "
        "the least noisy but blind to a slower tail.",
    )
    latency_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        description="Relative: roll back when the challenger's latency is confidently above "
        "(1 + tolerance) x the champion's.",
    )
    latency_margin: float = Field(
        default=0.10,
        gt=0.0,
        description="Relative non-inferiority margin for latency.",
    )
    conversion_tolerance: float = Field(
        default=0.0025,
        ge=0.0,
        lt=1.0,
        description="Absolute: roll back when the challenger's success rate is confidently below the "
        "champion's minus this (0.0025 = a quarter of a percentage point).",
    )
    conversion_margin: float = Field(
        default=0.015,
        gt=0.0,
        lt=1.0,
        description="Absolute non-inferiority margin for the success rate.",
    )
    look_seconds: int = Field(
        default=60,
        ge=60,
        le=3600,
        description="How often the rollout asks the judge (lambdas/rollout/decision.py): harm is looked for "
        "this often, whatever the bake; a step still lasts at least its bake before it advances.",
    )
    min_requests: int = Field(
        default=500,
        ge=1,
        description="Minimum-sample guard: requests per variant before the error metric can decide.",
    )
    min_latency_windows: int = Field(
        default=4,
        ge=2,
        description="Minimum-sample guard: windows with latency from both variants before the latency "
        "metric can decide (its variance is estimated from the windows).",
    )
    min_latency_samples: int = Field(
        default=1000,
        ge=1,
        description="Minimum-sample guard: latency samples per variant before the latency metric can decide.",
    )
    min_trials: int = Field(
        default=1000,
        ge=1,
        description="Minimum-sample guard: feedback trials per variant before conversion can decide.",
    )

    sample_ratio_alpha: float = Field(
        default=0.001,
        gt=0.0,
        lt=0.5,
        description="Chance of ever stopping a rollout for a sample ratio mismatch when each variant serves "
        "its share of the requests (within sample_ratio_tolerance), over all looks of a step. Small: it is "
        "checked at every look, and a mismatch stops the rollout whatever the metrics say.",
    )
    sample_ratio_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Relative: the challenger may serve between 1/(1 + tolerance) and (1 + tolerance) times "
        "the requests the weights give it (relative to the champion's) before a mismatch can be shown.",
    )
    sample_ratio_settle_seconds: int = Field(
        default=60,
        ge=60,
        le=3600,
        description="Windows starting this soon after a step's start are left out of the sample-ratio "
        "check: the routers' cached weights (30 s) and the endpoint's update may still mix them.",
    )

    @field_validator("metrics")
    @classmethod
    def _metrics_are_distinct_and_present(cls, metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
        if not metrics:
            raise ValueError("at least one metric must be in play")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics listed more than once: {[m.value for m in metrics]}")
        return metrics
