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
import json
import os
import platform
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

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

from pipelines.churn_data import (
    CHURN_SCHEMA,
    LABEL,
    Dataset,
    Labels,
    TrainingDataError,
    read_training_dir,
    synthetic_churn,
)
from pipelines.data_version import MANIFEST_FILE, DataManifest, DataVersionError, code_version
from pipelines.job_failure import fail
from trained_model.directory import METADATA_FILE, MODEL_FILE, SCHEMA_FILE
from trained_model.features import FeatureSchema, Matrix, feature_transformer

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_CONFIG_DIR = "/opt/ml/input/config"
DEFAULT_CHANNEL_DIR = "/opt/ml/input/data/train"
HYPERPARAMETERS_FILE = "hyperparameters.json"
# What a training job may be given (SageMaker passes each as a string).
HYPERPARAMETERS = ("recipe", "seed", "model_version", "samples")
TEST_FRACTION = 0.25
DEFAULT_SAMPLES = 4000

Recipe = Literal["logistic", "boosted", "degraded", "heavy"]
RECIPES: tuple[str, ...] = get_args(Recipe)

# The features that carry most of the signal; the degraded recipe breaks exactly these.
STRONGEST_FEATURES = ("support_calls_90d", "satisfaction_score")


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
