"""The retraining's first step: check every data drop, version the data, write one training file.

    python -m pipelines.preprocess --data-dir /opt/ml/processing/input/data \\
        --out-dir /opt/ml/processing/output/train

A SageMaker Processing job runs it with the family's prefix of the training-data bucket downloaded
into ``--data-dir`` (any number of drops, e.g. ``2026-11-25/part-0.csv``). It:

* versions the data: the manifest of ``--data-dir`` (every file, keys relative to it; see
  ``pipelines.data_version``), written as ``<out>/manifest.json``;
* checks every file with the training's own reader (``pipelines.churn_data.read_training_csv``, the one
  place the data rules live): a CSV with a header naming exactly the ``CHURN_SCHEMA`` features and the
  ``churned`` label (in any order), every row's values valid for the schema and labels 0 or 1. An
  empty drop, a corrupt CSV, a renamed, missing or extra column (a schema change), a bad value or
  label, or a file that is not ``.csv`` fails the step with a reason naming the file (by its key) and
  the record (0 = the first row after the header);
* writes ``<out>/train.csv``: every row of every file, files in key order, columns in schema order
  then the label, so that the training job reads one file whatever the drops' column order.

On failure nothing is written to ``--out-dir``; the reason (first line names the problem, at most
1 KB) goes to ``<SM_OUTPUT_DIR>/message`` (``/opt/ml/output``: SageMaker shows it as the job's
ExitMessage) and to stderr, and the exit status is 1. On success a summary (data version, objects,
rows) is printed as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.churn_data import CHURN_SCHEMA, LABEL, Dataset, TrainingDataError, read_training_csv
from pipelines.data_version import MANIFEST_FILE, DataManifest, DataVersionError, manifest_of_dir
from pipelines.job_failure import fail
from trained_model.features import FeatureSchema

TRAIN_FILE = "train.csv"
DATA_SUFFIX = ".csv"
MESSAGE_FILE = "message"
PROCESSING_ROOT = Path("/opt/ml/processing")
DEFAULT_DATA_DIR = PROCESSING_ROOT / "input" / "data"
DEFAULT_OUT_DIR = PROCESSING_ROOT / "output" / "train"


@dataclass(frozen=True, slots=True)
class Preprocessed:
    manifest: DataManifest
    rows: int
    positive_rate: float
    train_file: Path
    manifest_file: Path


def preprocess(data_dir: Path, out_dir: Path, schema: FeatureSchema = CHURN_SCHEMA) -> Preprocessed:
    """Check and version the drops under ``data_dir``; write ``train.csv`` and ``manifest.json``.

    Raises TrainingDataError (a bad file, naming it by key) or DataVersionError (no data, an unreadable
    file); then nothing is written.
    """
    manifest = manifest_of_dir(data_dir)
    parts: list[Dataset] = []
    for entry in manifest.objects:
        if not entry.key.endswith(DATA_SUFFIX):
            raise TrainingDataError(
                f"{entry.key}: not a {DATA_SUFFIX} file; the data prefix holds CSV drops only"
            )
        parts.append(read_training_csv(data_dir / entry.key, schema, name=entry.key))
    rows = sum(len(part.labels) for part in parts)
    positives = sum(int(part.labels.sum()) for part in parts)
    train_file, manifest_file = _write_together(
        out_dir,
        {
            TRAIN_FILE: lambda path: _write_csv(path, parts, schema),
            MANIFEST_FILE: manifest.write,
        },
    )
    return Preprocessed(manifest, rows, positives / rows, train_file, manifest_file)


def _write_csv(path: Path, parts: Sequence[Dataset], schema: FeatureSchema) -> Path:
    integer_columns = [spec.type == "int" for spec in schema.features]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*schema.names, LABEL])
        for part in parts:
            for row, label in zip(part.features.tolist(), part.labels.tolist(), strict=True):
                cells = [
                    str(int(value)) if integer else repr(value)
                    for value, integer in zip(row, integer_columns, strict=True)
                ]
                writer.writerow([*cells, int(label)])
    return path


def _write_together(out_dir: Path, writers: Mapping[str, Callable[[Path], Path]]) -> list[Path]:
    """Each file written to a temporary name first, all renamed once all are written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[Path, Path] = {}
    try:
        for name, write in writers.items():
            handle, temporary_name = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            os.close(handle)
            staged[Path(temporary_name)] = out_dir / name
            write(Path(temporary_name))
        for temporary, final in staged.items():
            temporary.replace(final)
    finally:
        for leftover in staged:
            leftover.unlink(missing_ok=True)
    return list(staged.values())


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="default: %(default)s")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    try:
        result = preprocess(args.data_dir, args.out_dir)
    except (TrainingDataError, DataVersionError) as error:
        fail(f"preprocessing failed: {error}", file_name=MESSAGE_FILE)
    summary = {
        "data_version": result.manifest.data_version,
        "data_objects": len(result.manifest.objects),
        "data_bytes": result.manifest.total_bytes,
        "rows": result.rows,
        "positive_rate": result.positive_rate,
        "files": {TRAIN_FILE: os.fspath(result.train_file), MANIFEST_FILE: os.fspath(result.manifest_file)},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
