"""The preprocess step: every drop checked, one training file in schema order, the data manifest."""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines import preprocess as step
from pipelines.churn_data import CHURN_SCHEMA, LABEL, TrainingDataError, read_training_dir, synthetic_churn
from pipelines.data_version import DataManifest, DataVersionError, manifest_of_dir

HEADER = [*CHURN_SCHEMA.names, LABEL]
REPO_ROOT = Path(__file__).resolve().parents[2]


def drop_text(rows: int, seed: int, columns: list[str] = HEADER) -> str:
    """A CSV drop of synthetic customers, its columns in the order given."""
    data = synthetic_churn(rows, seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for features, label in zip(data.features.tolist(), data.labels.tolist(), strict=True):
        record = dict(zip(CHURN_SCHEMA.names, features, strict=True)) | {LABEL: label}
        writer.writerow([_cell(record[column]) for column in columns])
    return out.getvalue()


def _cell(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def write(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(text)
    return root


def test_every_row_of_every_drop_goes_to_train_csv_in_key_order_and_schema_column_order(
    tmp_path: Path,
) -> None:
    shuffled = HEADER.copy()
    random.Random(3).shuffle(shuffled)
    data = write(
        tmp_path / "data",
        {
            "2026-11-25/part-0.csv": drop_text(60, seed=2, columns=shuffled),
            "2026-11-24/part-0.csv": drop_text(40, seed=1),
        },
    )
    result = step.preprocess(data, tmp_path / "out")

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "train.csv"]
    assert (tmp_path / "out" / "train.csv").read_text().splitlines()[0] == ",".join(HEADER)
    written = read_training_dir(tmp_path / "out", CHURN_SCHEMA)
    first, second = synthetic_churn(40, seed=1), synthetic_churn(60, seed=2)
    np.testing.assert_array_equal(written.features, np.vstack([first.features, second.features]))
    np.testing.assert_array_equal(written.labels, np.concatenate([first.labels, second.labels]))
    assert result.rows == 100
    assert result.positive_rate == pytest.approx(float(np.mean(written.labels)))


def test_the_manifest_is_the_data_directorys_with_keys_relative_to_it(tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a/part-0.csv": drop_text(20, 1), "b.csv": drop_text(20, 2)})
    result = step.preprocess(data, tmp_path / "out")
    written = DataManifest.read(tmp_path / "out" / "manifest.json")
    assert written == result.manifest == manifest_of_dir(data)
    assert [entry.key for entry in written.objects] == ["a/part-0.csv", "b.csv"]


HEADER_TEXT = ",".join(HEADER) + "\n"
ROW = "3,80.5,4,1,2,12.0,2.1,0,1\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", r"drops/bad\.csv: empty file"),
        (HEADER_TEXT + '3,"80,4,1,2,12,2,0,1\n', r"drops/bad\.csv: malformed CSV"),
        (
            HEADER_TEXT.replace("tenure_months", "tenure") + ROW,
            r"drops/bad\.csv: schema change: header has unknown columns \['tenure'\], "
            r"lacks \['tenure_months'\]",
        ),
        (
            ",".join(HEADER[1:]) + "\n" + ROW.split(",", 1)[1],
            r"drops/bad\.csv: schema change: .*lacks \['tenure_months'\]",
        ),
        (HEADER_TEXT + ROW + ROW.replace(",1\n", ",2\n"), r"drops/bad\.csv: record 1: label 'churned' .*'2'"),
        (HEADER_TEXT + ROW.replace("2.1", "9.5"), r"drops/bad\.csv: record 0, feature 'satisfaction_score'"),
        (HEADER_TEXT, r"drops/bad\.csv: no records"),
        (
            HEADER_TEXT.replace(",autopay", ",autopay,autopay") + ROW.replace(",0,1\n", ",0,0,1\n"),
            r"drops/bad\.csv: schema change: header repeats columns \['autopay'\]",
        ),
    ],
    ids=[
        "empty",
        "corrupt",
        "renamed-column",
        "missing-column",
        "label-2",
        "out-of-range",
        "header-only",
        "repeated-column",
    ],
)
def test_a_bad_drop_fails_naming_its_key_and_the_record_and_writes_nothing(
    tmp_path: Path, text: str, reason: str
) -> None:
    data = write(tmp_path / "data", {"drops/good.csv": drop_text(20, 1), "drops/bad.csv": text})
    with pytest.raises(TrainingDataError, match=reason):
        step.preprocess(data, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_object_that_is_not_csv_is_refused(tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a.csv": drop_text(20, 1), "notes.txt": "hello\n"})
    with pytest.raises(TrainingDataError, match=r"notes\.txt: not a \.csv file"):
        step.preprocess(data, tmp_path / "out")


def test_no_data_at_all_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(DataVersionError, match="no data files"):
        step.preprocess(tmp_path / "data", tmp_path / "out")


def test_the_command_writes_the_reason_where_sagemaker_reads_it_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(tmp_path / "data", {"bad.csv": HEADER_TEXT + ROW.replace(",1\n", ",yes\n")})
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    with pytest.raises(SystemExit) as exit_info:
        step.main(["--data-dir", str(data), "--out-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    message = (tmp_path / "output" / "message").read_text()
    assert message.startswith("preprocessing failed: bad.csv: record 0: label 'churned' must be 0 or 1")
    assert message in capsys.readouterr().err


def test_a_long_reason_is_cut_to_sagemakers_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "/".join(["é" * 100] * 6) + ".csv"  # a reason of some 1.2 KB, two bytes a letter
    data = write(tmp_path / "data", {key: ""})
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    with pytest.raises(SystemExit):
        step.main(["--data-dir", str(data), "--out-dir", str(tmp_path / "out")])
    message = (tmp_path / "output" / "message").read_bytes()
    assert 1000 < len(message) <= 1024
    assert message.decode("utf-8").startswith("preprocessing failed: éé")


def test_the_command_prints_the_data_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "data", {"a.csv": drop_text(30, 1)})
    step.main(["--data-dir", str(data), "--out-dir", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert manifest_of_dir(data).data_version in printed
    assert '"rows": 30' in printed


def test_the_step_starts_without_scikit_learn() -> None:
    """It only reads and checks data: importing scikit-learn (and SciPy) cost each job a CPU-second and a
    half before it began (the step imported the training module for its data reader)."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pipelines.preprocess; print(sorted({'sklearn', 'scipy'} & set(sys.modules)))",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
