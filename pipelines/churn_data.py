"""The churn data every step reads: its feature schema and label, the seeded synthetic dataset, and the one
reader of training CSV files (the data rules live here alone).

Apart from the training so that the steps that only read or check data (``pipelines.preprocess``) do not
import scikit-learn: about a CPU-second and a half at each job's start.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trained_model.features import FeatureError, FeatureSchema, FeatureSpec, Matrix

LABEL = "churned"
Labels = np.ndarray[Any, np.dtype[np.int64]]

CHURN_SCHEMA = FeatureSchema(
    (
        FeatureSpec("tenure_months", "int", 0, 600, description="months since the customer joined"),
        FeatureSpec("monthly_charges", "float", 0, 10_000, description="current bill, in dollars"),
        FeatureSpec("support_calls_90d", "int", 0, 1_000, description="support calls, last 90 days"),
        FeatureSpec("contract_months", "int", 1, 36, description="contract length (1 = month to month)"),
        FeatureSpec("late_payments_12m", "int", 0, 12, description="months paid late, last year"),
        FeatureSpec("data_usage_gb", "float", 0, 100_000, "log1p", "data used last month"),
        FeatureSpec("satisfaction_score", "float", 1, 5, description="last survey answer, 1 to 5"),
        FeatureSpec("autopay", "int", 0, 1, description="1 when the bill is paid automatically"),
    )
)


class TrainingDataError(ValueError):
    """The training data cannot be used (no files, a bad header, a bad row or label)."""


@dataclass(frozen=True, slots=True)
class Dataset:
    features: Matrix
    labels: Labels
    source: str


def synthetic_churn(samples: int, seed: int) -> Dataset:
    """A seeded churn dataset: plausible feature distributions, labels from a known logistic model."""
    rng = np.random.default_rng(seed)
    tenure = np.clip(np.round(rng.gamma(2.0, 14.0, samples)), 0, 120)
    charges = np.clip(rng.normal(70.0, 25.0, samples), 10.0, 250.0).round(2)
    calls = np.minimum(rng.poisson(1.5, samples), 30)
    contract = rng.choice([1, 12, 24], size=samples, p=[0.5, 0.3, 0.2])
    late = rng.binomial(12, 0.08, samples)
    usage = np.clip(rng.lognormal(3.0, 1.0, samples), 0.0, 5_000.0).round(2)
    satisfaction = np.clip(rng.normal(3.4, 0.9, samples), 1.0, 5.0).round(1)
    autopay = rng.binomial(1, 0.45, samples)
    logit = (
        -0.6
        - 0.02 * tenure
        + 0.015 * (charges - 70.0)
        + 0.55 * calls
        - 0.06 * contract
        + 0.35 * late
        - 0.2 * np.log1p(usage)
        - 0.9 * (satisfaction - 3.0)
        - 0.5 * autopay
        # Effects a linear model cannot see: unhappy customers who keep calling leave, and so do
        # new customers on a month-to-month contract.
        + 2.5 * ((calls >= 3) & (satisfaction < 2.8))
        + 1.5 * ((tenure < 6) & (contract == 1))
    )
    labels = (rng.random(samples) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    columns = (tenure, charges, calls, contract, late, usage, satisfaction, autopay)
    return Dataset(np.column_stack(columns).astype(np.float64), labels, f"synthetic(seed={seed})")


def read_training_csv(
    path: Path, schema: FeatureSchema, label: str = LABEL, *, name: str | None = None
) -> Dataset:
    """A CSV file with a header naming every schema feature and the label; rows checked by the schema.

    Errors name the file as ``name`` (default: the file's name) and the record (0 = the first row after
    the header). A header with other columns than the schema's is a schema change, refused.
    """
    name = name or path.name
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle, strict=True) if row]
    except (csv.Error, UnicodeDecodeError) as error:
        raise TrainingDataError(f"{name}: malformed CSV: {error}") from error
    except OSError as error:
        raise TrainingDataError(f"{name}: cannot read: {error.strerror or error}") from error
    if not rows:
        raise TrainingDataError(f"{name}: empty file")
    header, body = rows[0], rows[1:]
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise TrainingDataError(f"{name}: schema change: header repeats columns {repeated}")
    unknown = sorted(set(header) - {*schema.names, label})
    missing = sorted({*schema.names, label} - set(header))
    if unknown or missing:
        raise TrainingDataError(
            f"{name}: schema change: header has unknown columns {unknown}, lacks {missing}"
        )
    feature_columns = [header.index(feature) for feature in schema.names]
    label_column = header.index(label)
    features, labels = [], []
    for index, row in enumerate(body):
        if len(row) != len(header):
            raise TrainingDataError(f"{name}: record {index}: {len(row)} cells, header has {len(header)}")
        try:
            features.append(schema.row_from_text([row[c] for c in feature_columns], index))
        except FeatureError as error:
            raise TrainingDataError(f"{name}: {error}") from error
        if row[label_column].strip() not in {"0", "1"}:
            raise TrainingDataError(
                f"{name}: record {index}: label {label!r} must be 0 or 1, got {row[label_column]!r}"
            )
        labels.append(int(row[label_column]))
    if not features:
        raise TrainingDataError(f"{name}: no records")
    return Dataset(np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=np.int64), name)


def read_training_dir(directory: Path, schema: FeatureSchema) -> Dataset:
    """Every ``*.csv`` in the channel directory, in name order, as one dataset."""
    paths = sorted(directory.glob("*.csv"))
    if not paths:
        raise TrainingDataError(f"no CSV files in {directory}")
    parts = [read_training_csv(path, schema) for path in paths]
    return Dataset(
        np.vstack([part.features for part in parts]),
        np.concatenate([part.labels for part in parts]),
        f"csv({', '.join(part.source for part in parts)})",
    )
