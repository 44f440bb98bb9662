"""Train a churn classifier and write a SageMaker model directory.

    python -m pipelines.train --model-dir /tmp/model --recipe logistic --seed 1 --tarball /tmp/model.tar.gz

Runs as a SageMaker training entrypoint too (the training image's ``train`` program,
``containers/training/``), following SageMaker's training contract:

* hyperparameters from ``<SM_INPUT_CONFIG_DIR>/hyperparameters.json`` (``/opt/ml/input/config``):
  ``recipe``, ``seed``, ``model_version`` and ``samples``, as strings as SageMaker passes them; a
  command-line flag overrides its hyperparameter, an unknown or malformed one fails the job;
* the data from the ``train`` channel: ``SM_CHANNEL_TRAIN``, else ``/opt/ml/input/data/train`` when that
  exists (CSV files with a header naming every feature and the ``churned`` label, e.g. the
  ``train.csv`` of ``pipelines.preprocess``). With no channel it trains on a seeded synthetic churn
  dataset generated in-process, so tests and the demo need no download;
* the model directory ``SM_MODEL_DIR`` (``/opt/ml/model``), which SageMaker uploads as
  ``model.tar.gz``;
* on bad input (data, hyperparameters) the reason goes to ``<SM_OUTPUT_DIR>/failure`` (``/opt/ml/output``,
  written when that directory exists or the variable is set; SageMaker shows it as the job's
  FailureReason) and to stderr, and the exit status is 1.

When the channel holds ``manifest.json`` (the data manifest ``pipelines.preprocess`` writes, see
``pipelines.data_version``), ``metadata.json`` records its ``data_version`` and ``data_objects``; it
always records the ``code_version`` and the job's hyperparameters as given (``job_hyperparameters``).

The model directory holds ``model.joblib`` (the whole scikit-learn pipeline, feature transforms
included), ``features.json`` (the input schema, see ``trained_model.features``) and ``metadata.json``
(model version, recipe, hyperparameters, data summary, and metrics on a held-out split).

Recipes make distinct model versions from the same data: ``logistic`` (the baseline),
``boosted`` (gradient-boosted trees: another model family of about the same quality, an "equal"
challenger) and ``degraded`` (deliberately worse: the two strongest features are shuffled in the
training split, as a broken feature join would do). The same seed gives the same data, split
and metrics, so versions trained with one seed are compared on the same held-out rows. ``heavy``
(a forest of 300 deep trees) is about as accurate as the baseline and some 40 times slower per
request: the release that passes every offline gate and hurts users through latency.

joblib (pickle) is the format because it is what SageMaker's scikit-learn containers load and needs
no extra dependency; loading a pickle runs code, so a model directory must come only from this
project's own artifact bucket (written by the training job, encrypted, not writable by callers).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, cast, get_args

import joblib  # type: ignore[import-untyped]  # no stubs
import numpy as np
import sklearn  # type: ignore[import-untyped]  # no stubs
from sklearn.ensemble import (  # type: ignore[import-untyped]
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from pipelines.data_version import MANIFEST_FILE, DataManifest, DataVersionError, code_version
from trained_model.directory import METADATA_FILE, MODEL_FILE, SCHEMA_FILE
from trained_model.features import FeatureError, FeatureSchema, FeatureSpec, Matrix, feature_transformer

LABEL = "churned"
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_CONFIG_DIR = "/opt/ml/input/config"
DEFAULT_CHANNEL_DIR = "/opt/ml/input/data/train"
DEFAULT_OUTPUT_DIR = "/opt/ml/output"
HYPERPARAMETERS_FILE = "hyperparameters.json"
# What a training job may be given (SageMaker passes each as a string).
HYPERPARAMETERS = ("recipe", "seed", "model_version", "samples")
FAILURE_FILE = "failure"
# SageMaker truncates a failure reason; the first line names the problem.
FAILURE_MAX_BYTES = 1024
TEST_FRACTION = 0.25
DEFAULT_SAMPLES = 4000

Recipe = Literal["logistic", "boosted", "degraded", "heavy"]
RECIPES: tuple[str, ...] = get_args(Recipe)
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
# The features that carry most of the signal; the degraded recipe breaks exactly these.
STRONGEST_FEATURES = ("support_calls_90d", "satisfaction_score")


class TrainingDataError(ValueError):
    """The training data cannot be used (no files, a bad header, a bad row or label)."""


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or has a value the training cannot use."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    recipe: Recipe = "logistic"
    seed: int = 1
    samples: int = DEFAULT_SAMPLES
    model_version: str | None = None

    @property
    def version(self) -> str:
        return self.model_version or f"{self.recipe}-seed{self.seed}"


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


def build_pipeline(schema: FeatureSchema, recipe: Recipe, seed: int) -> tuple[Any, dict[str, object]]:
    """The scikit-learn pipeline (schema transforms first) and its hyperparameters, for a recipe."""
    if recipe == "boosted":
        params: dict[str, object] = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 4}
        model = HistGradientBoostingClassifier(**params, random_state=seed)
        return Pipeline([("features", feature_transformer(schema)), ("model", model)]), params
    if recipe == "heavy":
        params = {"n_estimators": 300, "min_samples_leaf": 1, "n_jobs": 1}
        forest = RandomForestClassifier(**params, random_state=seed)
        return Pipeline([("features", feature_transformer(schema)), ("model", forest)]), params
    params = {"C": 1.0, "max_iter": 1000}
    steps = [("features", feature_transformer(schema)), ("scale", StandardScaler())]
    return Pipeline([*steps, ("model", LogisticRegression(**params))]), params


def _break_strongest_features(features: Matrix, schema: FeatureSchema, seed: int) -> Matrix:
    """Shuffle the strongest features across rows: they keep their distribution, lose their meaning."""
    rng = np.random.default_rng(seed + 7919)
    broken = features.copy()
    for name in STRONGEST_FEATURES:
        column = schema.names.index(name)
        broken[:, column] = rng.permutation(broken[:, column])
    return broken


def evaluate(model: Any, features: Matrix, labels: Labels) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and ROC AUC of a fitted binary classifier."""
    predicted = model.predict(features)
    scores = model.predict_proba(features)[:, 1]
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "auc": float(roc_auc_score(labels, scores)),
    }


def train(
    config: TrainConfig,
    model_dir: Path,
    data: Dataset | None = None,
    *,
    manifest: DataManifest | None = None,
    job_hyperparameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Fit the recipe on a stratified split, write the model directory and return its metadata.

    ``manifest`` is the data manifest of ``data`` (its version is recorded); ``job_hyperparameters``
    the hyperparameters the training job was given, recorded as given.
    """
    schema = CHURN_SCHEMA
    data = data or synthetic_churn(config.samples, config.seed)
    if len(set(data.labels.tolist())) < 2:
        raise TrainingDataError("the training data needs both classes")
    x_train, x_test, y_train, y_test = train_test_split(
        data.features, data.labels, test_size=TEST_FRACTION, random_state=config.seed, stratify=data.labels
    )
    if config.recipe == "degraded":
        x_train = _break_strongest_features(x_train, schema, config.seed)
    pipeline, params = build_pipeline(schema, config.recipe, config.seed)
    pipeline.fit(x_train, y_train)
    metadata: dict[str, Any] = {
        "model_version": config.version,
        "recipe": config.recipe,
        "seed": config.seed,
        "label": LABEL,
        "classes": [int(c) for c in pipeline.classes_],
        "hyperparameters": params,
        "metrics": evaluate(pipeline, x_test, y_test),
        "data": {
            "source": data.source,
            "rows": len(data.labels),
            "train_rows": len(y_train),
            "test_rows": len(y_test),
            "positive_rate": float(np.mean(data.labels)),
        },
        "framework": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
        "data_version": manifest.data_version if manifest else None,
        "data_objects": len(manifest.objects) if manifest else None,
        "code_version": code_version(),
        "job_hyperparameters": dict(job_hyperparameters or {}),
    }
    write_model_dir(model_dir, pipeline, schema, metadata)
    return metadata


def write_model_dir(model_dir: Path, model: Any, schema: FeatureSchema, metadata: dict[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    schema.save(model_dir / SCHEMA_FILE)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def package_model(model_dir: Path, tarball: Path) -> Path:
    """``model.tar.gz`` as SageMaker expects: the artifact files at the archive's root."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as archive:
        for name in (MODEL_FILE, SCHEMA_FILE, METADATA_FILE):
            archive.add(model_dir / name, arcname=name)
    return tarball


def read_hyperparameters(config_dir: Path) -> dict[str, str]:
    """``hyperparameters.json`` of SageMaker's config directory (``{}`` when there is none).

    SageMaker passes every value as a string; names other than the training's own are refused.
    """
    path = config_dir / HYPERPARAMETERS_FILE
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HyperparameterError(f"{HYPERPARAMETERS_FILE}: not readable JSON: {error}") from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise HyperparameterError(f"{HYPERPARAMETERS_FILE}: must be an object of string values")
    unknown = sorted(set(values) - set(HYPERPARAMETERS))
    if unknown:
        raise HyperparameterError(f"unknown hyperparameter(s) {unknown}; known: {list(HYPERPARAMETERS)}")
    return dict(values)


def config_from_hyperparameters(values: Mapping[str, str]) -> TrainConfig:
    """The training configuration of SageMaker-style (string) hyperparameters; defaults for absent ones."""
    recipe = values.get("recipe", "logistic")
    if recipe not in RECIPES:
        raise HyperparameterError(f"hyperparameter recipe={recipe!r} is not one of {list(RECIPES)}")
    seed = _integer(values, "seed", 1, minimum=0)
    samples = _integer(values, "samples", DEFAULT_SAMPLES, minimum=2)
    model_version = values.get("model_version") or None
    return TrainConfig(cast(Recipe, recipe), seed, samples, model_version)


def _integer(values: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    if name not in values:
        return default
    try:
        number = int(values[name].strip())
    except ValueError:
        raise HyperparameterError(f"hyperparameter {name}={values[name]!r} is not an integer") from None
    if number < minimum:
        raise HyperparameterError(f"hyperparameter {name}={number} must be at least {minimum}")
    return number


def default_channel() -> Path | None:
    """The ``train`` channel: ``SM_CHANNEL_TRAIN``, else SageMaker's path when it exists, else none."""
    channel = os.environ.get("SM_CHANNEL_TRAIN")
    if channel:
        return Path(channel)
    return Path(DEFAULT_CHANNEL_DIR) if Path(DEFAULT_CHANNEL_DIR).is_dir() else None


def read_manifest(train_dir: Path | None) -> DataManifest | None:
    """The data manifest ``pipelines.preprocess`` put in the channel, if any."""
    if train_dir is None or not (train_dir / MANIFEST_FILE).is_file():
        return None
    return DataManifest.read(train_dir / MANIFEST_FILE)


def write_failure(
    output_dir: Path, reason: str, *, file_name: str = FAILURE_FILE, force: bool = False
) -> None:
    """The reason, cut to SageMaker's limit, in ``<output_dir>/<file_name>`` where SageMaker reads it.

    Written only inside SageMaker's layout (the directory exists, or ``force``): a run from the command
    line does not create ``/opt/ml``.
    """
    if not (force or output_dir.is_dir()):
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    encoded = reason.encode("utf-8")[:FAILURE_MAX_BYTES]
    (output_dir / file_name).write_bytes(encoded.decode("utf-8", errors="ignore").encode("utf-8"))


def fail(reason: str, *, file_name: str = FAILURE_FILE) -> NoReturn:
    """Report a failure SageMaker's way (the failure file and stderr) and exit with status 1."""
    output_dir = os.environ.get("SM_OUTPUT_DIR")
    write_failure(Path(output_dir or DEFAULT_OUTPUT_DIR), reason, file_name=file_name, force=bool(output_dir))
    print(reason, file=sys.stderr)
    raise SystemExit(1)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    )
    parser.add_argument(
        "--train-dir",
        type=Path,
        default=default_channel(),
        help="directory of CSV files (default: SM_CHANNEL_TRAIN, else /opt/ml/input/data/train when it "
        "exists; without either, synthetic data)",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=Path(os.environ.get("SM_INPUT_CONFIG_DIR", DEFAULT_CONFIG_DIR)),
        help=f"where {HYPERPARAMETERS_FILE} is read, when present (default: SM_INPUT_CONFIG_DIR, else "
        "%(default)s)",
    )
    parser.add_argument("--recipe", choices=RECIPES, default=None, help="default: logistic")
    parser.add_argument("--seed", type=int, default=None, help="default: 1")
    parser.add_argument(
        "--samples", type=int, default=None, help=f"synthetic dataset size (default: {DEFAULT_SAMPLES})"
    )
    parser.add_argument("--model-version", default=None, help="default: <recipe>-seed<seed>")
    parser.add_argument("--tarball", type=Path, default=None, help="also write model.tar.gz here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    try:
        hyperparameters = read_hyperparameters(args.config_dir)
        flags = {"recipe": args.recipe, "seed": args.seed, "samples": args.samples}
        given = {name: str(value) for name, value in flags.items() if value is not None}
        if args.model_version is not None:
            given["model_version"] = args.model_version
        config = config_from_hyperparameters({**hyperparameters, **given})
        data = read_training_dir(args.train_dir, CHURN_SCHEMA) if args.train_dir else None
        manifest = read_manifest(args.train_dir)
        metadata = train(config, args.model_dir, data, manifest=manifest, job_hyperparameters=hyperparameters)
    except (TrainingDataError, HyperparameterError, DataVersionError) as error:
        fail(f"training failed: {error}")
    if args.tarball:
        package_model(args.model_dir, args.tarball)
    print(json.dumps({"model_version": metadata["model_version"], "metrics": metadata["metrics"]}, indent=2))


if __name__ == "__main__":
    main()
