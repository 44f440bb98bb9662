"""The evaluation step: the four files the rollout's pre-traffic gates read, from a trained model directory.

    python -m pipelines.gate_files --model-dir /tmp/model --out-dir /tmp/gates

Upload the out directory's files to ``<dir>/gates/`` beside the package's ``<dir>/model.tar.gz``, where
the gates Lambda looks for them (``lambdas/handlers/rollout_gates.py``):

* ``golden.json``         -- the golden cases (``GoldenSet``): ``DEFAULT_GOLDEN_SET`` unless one is
                             given. Clear-cut customers every sound recipe labels alike, even the
                             deliberately worse ``degraded`` one, so the gate catches a broken model
                             (wrong schema, inverted labels), not a slightly worse one. Labels only:
                             probabilities differ from one model version to the next.
* ``golden_outputs.json`` -- what this model version returns for the golden cases, computed by the
                             inference server's own code (``trained_model``: the model loaded by
                             ``load_model``, the cases sent as a JSON ``{"instances": [...]}`` body
                             through ``parse_records`` and ``predict``, as ``containers.inference.server``
                             does): the evaluation's record. The rollout's golden gate does not read it:
                             it sends the cases to the deployed candidate and judges its answers.
* ``metrics.json``        -- the held-out metrics ``metadata.json`` registered at training.
* ``baseline.json``       -- the training baseline (``TrainingBaseline.from_columns``: per feature at
                             most ``BASELINE_MAX_VALUES`` evenly spaced order statistics of the training
                             split's raw values, deterministic). The training split is rebuilt as
                             ``pipelines.train`` made it: the seeded synthetic data ``metadata.json``
                             describes, or the CSV training data given (``--train-dir``), split with the
                             model's seed; rows and positive rate must match what training recorded.

``evaluate_model(model_dir)`` gives the four documents (``GateDocuments``) without writing them
(``documents_of`` for a model already loaded by ``load_model_dir``, as ``pipelines.evaluate`` does);
``write_gate_files(model_dir, out_dir)`` writes them and returns ``{file name: path}``. Whether this
version reproduces the golden labels is not this step's verdict (the golden gate blocks the rollout,
with the evidence in the ledger); ``GateDocuments.check_golden`` says it early, and the CLI prints it.

Every document is built as the gate's own model, checked by the gates' own checks (outputs cover
exactly the golden cases, metrics finite and within 0-1), serialized and parsed back by the gate
models before anything is written: a file the gates cannot read is never written, and on any error
none of the four is.

Runs as a SageMaker Processing entrypoint too: by default the model comes from
``/opt/ml/processing/input/model`` (the model directory, or a ``model.tar.gz`` as the training job
wrote it), the CSV training data from ``/opt/ml/processing/input/train`` when that exists, and the
files go to ``/opt/ml/processing/output/gates``; arguments override each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import ValidationError
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from lambdas.gates import (
    BASELINE_MAX_VALUES,
    CLASSIFICATION_METRICS,
    GateSettings,
    GoldenCase,
    GoldenGateResult,
    GoldenSet,
    Prediction,
    TrainingBaseline,
    golden_gate,
    metric_gate,
)
from pipelines.churn_data import CHURN_SCHEMA, Dataset, TrainingDataError, read_training_dir, synthetic_churn
from pipelines.train import TEST_FRACTION
from trained_model.directory import METADATA_FILE, MODEL_FILE, SCHEMA_FILE, LoadedModel, load_model
from trained_model.features import FeatureError, Matrix
from trained_model.prediction import JSON_TYPE, parse_records, predict

GOLDEN_FILE = "golden.json"
GOLDEN_OUTPUTS_FILE = "golden_outputs.json"
METRICS_FILE = "metrics.json"
BASELINE_FILE = "baseline.json"
GATE_FILES = (GOLDEN_FILE, GOLDEN_OUTPUTS_FILE, METRICS_FILE, BASELINE_FILE)
MODEL_ARCHIVE = "model.tar.gz"

PROCESSING_ROOT = Path("/opt/ml/processing")
DEFAULT_MODEL_DIR = PROCESSING_ROOT / "input" / "model"
DEFAULT_TRAIN_DIR = PROCESSING_ROOT / "input" / "train"
DEFAULT_OUT_DIR = PROCESSING_ROOT / "output" / "gates"


class GateFilesError(ValueError):
    """The gate files cannot be made; the message names the file, case, feature or metric at fault."""


def _case(case_id: str, expected_label: int, **record: float) -> GoldenCase:
    return GoldenCase(case_id=case_id, record=record, expected_label=expected_label)


# Every feature points the same way in each case, and each churner is a churner even without the
# two strongest features (which the degraded recipe scrambles): these labels do not depend on the
# model family or on how good a model is, only on whether it works at all.
DEFAULT_GOLDEN_SET = GoldenSet(
    cases=(
        _case(
            "loyal_long_tenure_autopay",
            0,
            tenure_months=84,
            monthly_charges=45.0,
            support_calls_90d=0,
            contract_months=24,
            late_payments_12m=0,
            data_usage_gb=40.0,
            satisfaction_score=4.6,
            autopay=1,
        ),
        _case(
            "settled_annual_contract",
            0,
            tenure_months=40,
            monthly_charges=60.0,
            support_calls_90d=1,
            contract_months=12,
            late_payments_12m=0,
            data_usage_gb=25.0,
            satisfaction_score=4.2,
            autopay=1,
        ),
        _case(
            "new_month_to_month_late_payer",
            1,
            tenure_months=2,
            monthly_charges=140.0,
            support_calls_90d=4,
            contract_months=1,
            late_payments_12m=8,
            data_usage_gb=2.0,
            satisfaction_score=2.0,
            autopay=0,
        ),
        _case(
            "new_month_to_month_unhappy_caller",
            1,
            tenure_months=1,
            monthly_charges=120.0,
            support_calls_90d=7,
            contract_months=1,
            late_payments_12m=6,
            data_usage_gb=3.0,
            satisfaction_score=1.5,
            autopay=0,
        ),
    )
)


@dataclass(frozen=True, slots=True)
class GateDocuments:
    """The four gate documents, checked on construction by the gates' own checks."""

    golden: GoldenSet
    golden_outputs: Mapping[str, Prediction]
    metrics: Mapping[str, float]
    baseline: TrainingBaseline
    model_version: str = ""
    """The version the documents describe (metadata.json's), for messages; not written."""

    def __post_init__(self) -> None:
        if not self.golden.cases:
            raise GateFilesError(f"{GOLDEN_FILE}: the golden set has no cases")
        try:
            # Raises when the outputs do not cover exactly the golden cases, as the gate would.
            golden_gate(self.golden, self.golden_outputs, GateSettings())
        except ValueError as error:
            raise GateFilesError(f"{GOLDEN_OUTPUTS_FILE}: {error}") from None
        missing = [name for name in CLASSIFICATION_METRICS if name not in self.metrics]
        if missing:
            raise GateFilesError(f"{METRICS_FILE}: missing held-out metric(s) {missing}")
        try:
            metric_gate(self.metrics, None, GateSettings())  # raises on non-finite or out-of-range values
        except ValueError as error:
            raise GateFilesError(f"{METRICS_FILE}: {error}") from None

    def check_golden(self, settings: GateSettings | None = None) -> GoldenGateResult:
        """The golden gate on this version's own outputs: does it reproduce the expected labels?"""
        return golden_gate(self.golden, self.golden_outputs, settings or GateSettings())

    def to_json(self) -> dict[str, str]:
        """File name -> JSON text, each parsed back by the gate models and compared before it is given."""
        texts = {
            GOLDEN_FILE: self.golden.model_dump_json(indent=2),
            GOLDEN_OUTPUTS_FILE: json.dumps(
                {case: output.model_dump(mode="json") for case, output in self.golden_outputs.items()},
                indent=2,
            ),
            METRICS_FILE: json.dumps(dict(self.metrics), indent=2),
            BASELINE_FILE: self.baseline.model_dump_json(),
        }
        # Read back the way the gates Lambda reads them.
        try:
            read_back = GateDocuments(
                golden=GoldenSet.model_validate_json(texts[GOLDEN_FILE]),
                golden_outputs={
                    case: Prediction.model_validate(output)
                    for case, output in json.loads(texts[GOLDEN_OUTPUTS_FILE]).items()
                },
                metrics=json.loads(texts[METRICS_FILE]),
                baseline=TrainingBaseline.model_validate_json(texts[BASELINE_FILE]),
                model_version=self.model_version,
            )
        except ValidationError as error:
            raise GateFilesError(f"a gate file does not read back: {error}") from None
        if read_back != self:
            changed = [
                name
                for name in ("golden", "golden_outputs", "metrics", "baseline")
                if getattr(read_back, name) != getattr(self, name)
            ]
            raise GateFilesError(f"gate documents change when read back: {changed}")
        return {name: text + "\n" for name, text in texts.items()}

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write all four files (each through a temporary file, renamed once all are written)."""
        texts = self.to_json()
        out_dir.mkdir(parents=True, exist_ok=True)
        staged: dict[Path, Path] = {}
        try:
            for name, text in texts.items():
                temporary = out_dir / f".{name}.tmp"
                temporary.write_text(text, encoding="utf-8")
                staged[temporary] = out_dir / name
            for temporary, final in staged.items():
                temporary.replace(final)
        finally:
            for temporary in staged:
                temporary.unlink(missing_ok=True)
        return {name: out_dir / name for name in texts}


def evaluate_model(
    model_dir: Path,
    *,
    golden: GoldenSet | None = None,
    training_data: Dataset | None = None,
    baseline_values: int = BASELINE_MAX_VALUES,
) -> GateDocuments:
    """The gate documents of a model directory (or of one holding ``model.tar.gz``), nothing written.

    ``golden`` defaults to ``DEFAULT_GOLDEN_SET``; ``training_data`` is the whole dataset the model
    was trained on (as ``pipelines.train.train`` took it), needed unless it was the seeded synthetic
    data. Raises GateFilesError naming what is missing or does not fit.
    """
    with ExitStack() as stack:
        loaded = load_model_dir(model_dir, stack)
        return documents_of(
            loaded, golden=golden, training_data=training_data, baseline_values=baseline_values
        )


def documents_of(
    loaded: LoadedModel,
    *,
    golden: GoldenSet | None = None,
    training_data: Dataset | None = None,
    baseline_values: int = BASELINE_MAX_VALUES,
) -> GateDocuments:
    """The gate documents of a loaded model (``evaluate_model`` once the model is loaded)."""
    golden = golden or DEFAULT_GOLDEN_SET
    return GateDocuments(
        golden=golden,
        golden_outputs=golden_outputs(loaded, golden),
        metrics=held_out_metrics(loaded.metadata),
        baseline=training_baseline(loaded, training_data, baseline_values),
        model_version=loaded.version,
    )


def write_gate_files(
    model_dir: Path,
    out_dir: Path,
    *,
    golden: GoldenSet | None = None,
    training_data: Dataset | None = None,
    baseline_values: int = BASELINE_MAX_VALUES,
) -> dict[str, Path]:
    """Evaluate the model (``evaluate_model``) and write its four gate files: file name -> path.

    On any error (GateFilesError) nothing is written.
    """
    documents = evaluate_model(
        model_dir, golden=golden, training_data=training_data, baseline_values=baseline_values
    )
    return documents.write(out_dir)


def load_model_dir(model_dir: Path, stack: ExitStack) -> LoadedModel:
    """The model of a model directory, or of one holding ``model.tar.gz`` (unpacked into a temporary
    directory that ``stack`` removes)."""
    if not (model_dir / MODEL_FILE).exists() and (model_dir / MODEL_ARCHIVE).is_file():
        model_dir = _unpack(
            model_dir / MODEL_ARCHIVE, Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
    try:
        return load_model(model_dir)
    except FileNotFoundError as error:
        raise GateFilesError(f"not a complete model directory: {error}") from None


def _unpack(archive: Path, into: Path) -> Path:
    """The model directory files of a ``model.tar.gz`` (SageMaker puts them at the archive's root)."""
    wanted = (MODEL_FILE, SCHEMA_FILE, METADATA_FILE)
    try:
        with tarfile.open(archive) as opened:
            members = [member for member in opened.getmembers() if member.name.removeprefix("./") in wanted]
            for member in members:
                opened.extract(member, into, filter="data")  # refuses links and paths outside `into`
    except (tarfile.TarError, OSError) as error:
        raise GateFilesError(f"{archive}: not a readable model archive: {error}") from None
    return into


def golden_outputs(loaded: LoadedModel, golden: GoldenSet) -> dict[str, Prediction]:
    """The model's answer to every golden case, through the inference server's request path."""
    if not golden.cases:
        return {}
    body = json.dumps({"instances": [case.record for case in golden.cases]}).encode()
    try:
        features = parse_records(body, JSON_TYPE, "utf-8", loaded.schema)
    except FeatureError as error:
        case = golden.cases[error.index].case_id if error.index is not None else "every case"
        raise GateFilesError(
            f"{GOLDEN_FILE}: golden case {case!r} does not fit model {loaded.version}'s input schema: "
            f"{error.reason}" + (f" (feature {error.feature!r})" if error.feature else "")
        ) from None
    answer = predict(loaded, features)
    labels = cast(list[int | str], answer["predictions"])
    probabilities = cast(list[list[float]], answer["probabilities"])
    return {
        case.case_id: Prediction(label=label, probabilities=tuple(row))
        for case, label, row in zip(golden.cases, labels, probabilities, strict=True)
    }


def held_out_metrics(metadata: Mapping[str, Any]) -> dict[str, float]:
    """The held-out metrics training registered in ``metadata.json``."""
    metrics = metadata.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise GateFilesError(f"{METADATA_FILE} has no held-out metrics")
    bad = sorted(name for name, value in metrics.items() if not _is_number(value))
    if bad:
        raise GateFilesError(f"{METADATA_FILE}: metric(s) {bad} are not numbers")
    return {str(name): float(value) for name, value in metrics.items()}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def training_baseline(
    loaded: LoadedModel, training_data: Dataset | None, max_values: int = BASELINE_MAX_VALUES
) -> TrainingBaseline:
    """Per feature (by the model's schema), the training split's raw values thinned to ``max_values``."""
    features = training_split_features(loaded.metadata, training_data)
    names = loaded.schema.names
    if features.shape[1] != len(names):
        raise GateFilesError(
            f"the training data has {features.shape[1]} features, model {loaded.version}'s schema "
            f"{len(names)}"
        )
    columns = {name: features[:, index].tolist() for index, name in enumerate(names)}
    try:
        return TrainingBaseline.from_columns(columns, max_values)
    except (ValueError, ValidationError) as error:
        raise GateFilesError(f"{BASELINE_FILE}: {error}") from None


def training_split_features(metadata: Mapping[str, Any], training_data: Dataset | None) -> Matrix:
    """The rows the model was fitted on, split off again exactly as ``pipelines.train.train`` split them.

    Without ``training_data`` the model must have been trained on the seeded synthetic data, which is
    generated again. Either way the data must have the row count and positive rate training recorded.
    """
    summary = metadata.get("data")
    seed = metadata.get("seed")
    if not isinstance(summary, dict) or not isinstance(seed, int):
        raise GateFilesError(f"{METADATA_FILE} does not say which data and seed the model was trained with")
    source = str(summary.get("source", ""))
    if training_data is None:
        if not source.startswith("synthetic("):
            raise GateFilesError(
                f"the model was trained on {source or 'unnamed data'}: pass that training data (--train-dir)"
            )
        training_data = synthetic_churn(int(summary.get("rows", 0)), seed)
    rows, positive_rate = len(training_data.labels), float(np.mean(training_data.labels))
    if rows != summary.get("rows") or positive_rate != summary.get("positive_rate"):
        raise GateFilesError(
            f"the training data ({training_data.source}: {rows} rows, positive rate {positive_rate:.4f}) "
            f"is not what the model was trained on ({source}: {summary.get('rows')} rows, positive rate "
            f"{summary.get('positive_rate')})"
        )
    train_features, _, _, _ = train_test_split(
        training_data.features,
        training_data.labels,
        test_size=TEST_FRACTION,
        random_state=seed,
        stratify=training_data.labels,
    )
    split: Matrix = np.asarray(train_features, dtype=np.float64)
    if len(split) != summary.get("train_rows"):
        raise GateFilesError(
            f"the training split has {len(split)} rows, {METADATA_FILE} says {summary.get('train_rows')}"
        )
    return split


def read_golden_set(path: Path) -> GoldenSet:
    try:
        return GoldenSet.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as error:
        raise GateFilesError(f"{path}: not a golden set: {error}") from None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help=f"model directory, or a directory holding {MODEL_ARCHIVE} (default: %(default)s)",
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="default: %(default)s")
    parser.add_argument(
        "--train-dir",
        type=Path,
        default=DEFAULT_TRAIN_DIR if DEFAULT_TRAIN_DIR.is_dir() else None,
        help="CSV training data the model was trained on (default: the processing input 'train' when "
        "present; without it, the seeded synthetic data metadata.json names)",
    )
    parser.add_argument("--golden", type=Path, default=None, help="golden set JSON (default: built in)")
    parser.add_argument(
        "--baseline-values",
        type=int,
        default=BASELINE_MAX_VALUES,
        help="values kept per feature in the baseline (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    try:
        data = read_training_dir(args.train_dir, CHURN_SCHEMA) if args.train_dir else None
        golden = read_golden_set(args.golden) if args.golden else None
        documents = evaluate_model(
            args.model_dir, golden=golden, training_data=data, baseline_values=args.baseline_values
        )
        paths = documents.write(args.out_dir)
    except (GateFilesError, TrainingDataError) as error:
        raise SystemExit(f"gate files not written: {error}") from None
    # Not a failure of this step: the golden gate will block the rollout, with this in its evidence.
    golden_check = documents.check_golden()
    summary = {
        "model_version": documents.model_version,
        "files": {name: os.fspath(path) for name, path in paths.items()},
        "golden_check": {"status": golden_check.status.value, "reason": golden_check.reason},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
