"""The retraining's third step: evaluate a trained model and write what the gates and the registry read.

    python -m pipelines.evaluate --model-dir /opt/ml/processing/input/model \\
        --train-dir /opt/ml/processing/input/train --out-dir /opt/ml/processing/output/evaluation

A SageMaker Processing job runs it after the training job: ``--model-dir`` holds the training job's
``model.tar.gz`` (or the unpacked model directory), ``--train-dir`` the preprocessed data the model was
trained on (``train.csv`` and ``manifest.json`` of ``pipelines.preprocess``). It writes, under
``--out-dir``:

* ``gates/``: the four files of the rollout's pre-traffic gates (``pipelines.gate_files``: golden
  cases, this version's answers to them, held-out metrics, the training baseline). The job's output
  goes to the directory of the training job's ``model.tar.gz``, so they land in ``<dir>/gates/`` where
  the gates Lambda looks;
* ``evaluation.json``: the ``EvaluationReport`` (``lambdas.retraining.evaluation``) the registration
  step turns into the model package's metadata: model version, recipe, hyperparameters (the model's
  and the seed), held-out metrics, data version and objects, training rows, code version, and whether
  this version reproduces the golden labels. A failed golden check is a verdict for the gate, not a
  failure of this step;
* ``data-manifest.json``: the data manifest, copied, so that the package says which files made it.

Before anything is written the model and the data must agree: the data version of ``manifest.json``
must be the one ``metadata.json`` recorded at training, and the rows and positive rate those training
recorded (``pipelines.gate_files`` checks them when it rebuilds the training split). On failure nothing
is written; the reason goes to ``<SM_OUTPUT_DIR>/message`` and stderr, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lambdas.gates import GateStatus
from lambdas.retraining.evaluation import (
    DATA_MANIFEST_FILE,
    EVALUATION_FILE,
    EvaluationReport,
    GoldenCheck,
    Hyperparameter,
)
from pipelines.churn_data import CHURN_SCHEMA, TrainingDataError, read_training_dir
from pipelines.data_version import MANIFEST_FILE, DataManifest, DataVersionError
from pipelines.gate_files import GateDocuments, GateFilesError, documents_of, load_model_dir
from pipelines.job_failure import fail
from trained_model.directory import METADATA_FILE

GATES_DIR = "gates"
MESSAGE_FILE = "message"
PROCESSING_ROOT = Path("/opt/ml/processing")
DEFAULT_MODEL_DIR = PROCESSING_ROOT / "input" / "model"
DEFAULT_TRAIN_DIR = PROCESSING_ROOT / "input" / "train"
DEFAULT_OUT_DIR = PROCESSING_ROOT / "output" / "evaluation"
GOLDEN_DETAIL_MAX = 1000


class EvaluationError(ValueError):
    """The model and its data do not fit together, or the report cannot be made; the message says why."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    report: EvaluationReport
    documents: GateDocuments
    manifest: DataManifest


def evaluate(model_dir: Path, train_dir: Path) -> Evaluation:
    """The evaluation of the model in ``model_dir`` on the preprocessed data in ``train_dir``; nothing
    written. Raises EvaluationError, GateFilesError, TrainingDataError or DataVersionError."""
    manifest = DataManifest.read(train_dir / MANIFEST_FILE)
    data = read_training_dir(train_dir, CHURN_SCHEMA)
    with ExitStack() as stack:
        loaded = load_model_dir(model_dir, stack)
        metadata = loaded.metadata
        if metadata.get("data_version") != manifest.data_version:
            raise EvaluationError(
                f"the model was trained on data version {metadata.get('data_version')!r} "
                f"({METADATA_FILE}), the data given is {manifest.data_version!r} ({MANIFEST_FILE})"
            )
        documents = documents_of(loaded, training_data=data)
    golden = documents.check_golden()
    try:
        report = EvaluationReport(
            model_version=documents.model_version,
            recipe=str(metadata.get("recipe", "")),
            hyperparameters=_hyperparameters(metadata),
            metrics=dict(documents.metrics),
            data_version=manifest.data_version,
            data_objects=len(manifest.objects),
            training_rows=int(metadata.get("data", {}).get("rows", 0)),
            code_version=str(metadata.get("code_version") or ""),
            golden_check=GoldenCheck(
                passed=golden.status is GateStatus.PASSED, detail=golden.reason[:GOLDEN_DETAIL_MAX]
            ),
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise EvaluationError(f"{EVALUATION_FILE} cannot be made: {where}: {first['msg']}") from None
    return Evaluation(report, documents, manifest)


def _hyperparameters(metadata: Mapping[str, Any]) -> dict[str, Hyperparameter]:
    """The model's hyperparameters and the seed of the split, as recorded at training."""
    values = metadata.get("hyperparameters")
    if not isinstance(values, dict):
        raise EvaluationError(f"{METADATA_FILE} has no hyperparameters")
    chosen: dict[str, Any] = {"seed": metadata.get("seed"), **values}
    bad = sorted(name for name, value in chosen.items() if not isinstance(value, str | int | float | bool))
    if bad:
        raise EvaluationError(f"{METADATA_FILE}: hyperparameter(s) {bad} are not scalars")
    return chosen


def write_evaluation(evaluation: Evaluation, out_dir: Path) -> dict[str, Path]:
    """``gates/`` (the four gate files), ``evaluation.json`` and ``data-manifest.json`` under ``out_dir``."""
    # Checked by reading back before anything is written, as the registration step will read it.
    text = evaluation.report.model_dump_json(indent=2) + "\n"
    if EvaluationReport.model_validate_json(text) != evaluation.report:
        raise EvaluationError(f"{EVALUATION_FILE} changes when read back")
    paths = {
        f"{GATES_DIR}/{name}": path for name, path in evaluation.documents.write(out_dir / GATES_DIR).items()
    }
    (out_dir / EVALUATION_FILE).write_text(text, encoding="utf-8")
    paths[EVALUATION_FILE] = out_dir / EVALUATION_FILE
    paths[DATA_MANIFEST_FILE] = evaluation.manifest.write(out_dir / DATA_MANIFEST_FILE)
    return paths


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="model directory, or a directory holding model.tar.gz (default: %(default)s)",
    )
    parser.add_argument(
        "--train-dir",
        type=Path,
        default=DEFAULT_TRAIN_DIR,
        help=f"the preprocessed training data: CSV files and {MANIFEST_FILE} (default: %(default)s)",
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    try:
        evaluation = evaluate(args.model_dir, args.train_dir)
        paths = write_evaluation(evaluation, args.out_dir)
    except (EvaluationError, GateFilesError, TrainingDataError, DataVersionError) as error:
        fail(f"evaluation failed: {error}", file_name=MESSAGE_FILE)
    report = evaluation.report
    summary = {
        "model_version": report.model_version,
        "data_version": report.data_version,
        "metrics": report.metrics,
        "golden_check": report.golden_check.model_dump(),
        "files": {name: os.fspath(path) for name, path in paths.items()},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
