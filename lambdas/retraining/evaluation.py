"""What the evaluation step reports about a retrained model: one schema for the pipeline and the registry.

The evaluation job (``pipelines.evaluate``) writes it as ``evaluation.json`` beside the model's
``model.tar.gz``; the registration step (``lambdas/retraining``) reads it and turns it into the model
package's metadata. Both sides parse it with this model, so a report one side cannot read is never
written by the other.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambdas.gates import CLASSIFICATION_METRICS, ClassificationMetric

EVALUATION_FILE = "evaluation.json"
DATA_MANIFEST_FILE = "data-manifest.json"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

Hyperparameter = str | int | float | bool


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldenCheck(_Frozen):
    passed: bool
    detail: str = Field(max_length=1000)


class EvaluationReport(_Frozen):
    """One retrained model version: where its data came from, how it was made, how good it is."""

    model_version: str = Field(min_length=1, max_length=128)
    recipe: str = Field(min_length=1, max_length=64)
    hyperparameters: dict[str, Hyperparameter]
    metrics: dict[ClassificationMetric, float] = Field(description="held-out split, each within 0-1")
    data_version: str = Field(description="sha256 of the training data's content manifest")
    data_objects: int = Field(ge=1, description="data files the manifest lists")
    training_rows: int = Field(ge=1)
    code_version: str = Field(min_length=1, max_length=128)
    golden_check: GoldenCheck

    @field_validator("metrics")
    @classmethod
    def _every_metric_a_fraction(
        cls, metrics: dict[ClassificationMetric, float]
    ) -> dict[ClassificationMetric, float]:
        missing = [name for name in CLASSIFICATION_METRICS if name not in metrics]
        if missing:
            raise ValueError(f"metrics lack {missing}")
        bad = {
            name: value for name, value in metrics.items() if not (math.isfinite(value) and 0 <= value <= 1)
        }
        if bad:
            raise ValueError(f"metrics must be finite fractions within 0-1, got {bad}")
        return metrics

    @field_validator("data_version")
    @classmethod
    def _sha256(cls, data_version: str) -> str:
        if not SHA256_HEX.match(data_version):
            raise ValueError(f"data_version must be a lower-case sha256 hex digest, got {data_version!r}")
        return data_version
