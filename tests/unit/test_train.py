"""Training: the model directory SageMaker expects, honest held-out metrics, reproducibility, and a
degraded recipe that really is worse."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]  # no stubs
import numpy as np
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from pipelines import churn_data, train
from pipelines.churn_data import CHURN_SCHEMA, LABEL, TrainingDataError
from pipelines.train import TrainConfig
from trained_model.features import FeatureSchema

SAMPLES = 2000
METRICS = {"accuracy", "precision", "recall", "f1", "auc"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """One model directory per recipe, all from seed 3 (same data, same held-out rows)."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    # One OpenMP thread: on a busy machine the boosted trees' spinning threads cost seconds.
    with threadpool_limits(limits=1):
        for recipe in ("logistic", "boosted", "degraded", "heavy"):
            model_dir = tmp_path_factory.mktemp(recipe)
            out[recipe] = (model_dir, train.train(TrainConfig(recipe, seed=3, samples=SAMPLES), model_dir))
    return out


def test_model_directory_holds_the_model_the_schema_and_the_metadata(
    trained: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    model_dir, metadata = trained["logistic"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["features.json", "metadata.json", "model.joblib"]
    assert FeatureSchema.load(model_dir / "features.json") == CHURN_SCHEMA
    assert json.loads((model_dir / "metadata.json").read_text()) == metadata
    assert metadata["model_version"] == "logistic-seed3"
    assert metadata["classes"] == [0, 1]
    assert metadata["data"]["test_rows"] == SAMPLES // 4
    assert metadata["data"]["train_rows"] + metadata["data"]["test_rows"] == SAMPLES


@pytest.mark.parametrize("recipe", ["logistic", "boosted", "degraded", "heavy"])
def test_metrics_are_probabilities_and_the_real_models_beat_chance(
    trained: dict[str, tuple[Path, dict[str, Any]]], recipe: str
) -> None:
    metrics = trained[recipe][1]["metrics"]
    assert set(metrics) == METRICS
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    if recipe != "degraded":
        assert metrics["auc"] > 0.75
        assert metrics["accuracy"] > 0.78


def test_the_heavy_model_is_about_as_accurate_as_the_baseline(
    trained: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    # Its harm is latency, which the offline gates do not see: only traffic shows it.
    heavy, baseline = (trained[recipe][1]["metrics"] for recipe in ("heavy", "logistic"))
    assert abs(heavy["accuracy"] - baseline["accuracy"]) < 0.03
    assert trained["heavy"][1]["hyperparameters"]["n_estimators"] == 300


def test_saved_model_predicts_from_schema_rows(trained: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    model = joblib.load(trained["boosted"][0] / "model.joblib")
    rows = CHURN_SCHEMA.matrix_from_csv("3,80.5,4,1,2,12,2.1,0\n60,40,0,24,0,300,4.5,1\n")
    probabilities = model.predict_proba(rows)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    # An unhappy new customer who keeps calling is likelier to leave than a content long-timer.
    assert probabilities[0, 1] > probabilities[1, 1]


def test_same_seed_gives_the_same_metrics_and_another_seed_does_not(
    trained: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    again = train.train(TrainConfig("logistic", seed=3, samples=SAMPLES), tmp_path / "again")
    other = train.train(TrainConfig("logistic", seed=4, samples=SAMPLES), tmp_path / "other")
    assert again["metrics"] == trained["logistic"][1]["metrics"]
    assert other["metrics"] != trained["logistic"][1]["metrics"]


def test_the_degraded_version_is_clearly_worse_on_the_same_held_out_rows(
    trained: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    good, bad = trained["logistic"][1]["metrics"], trained["degraded"][1]["metrics"]
    assert bad["auc"] < good["auc"] - 0.08
    assert bad["f1"] < good["f1"] - 0.15
    assert bad["accuracy"] < good["accuracy"]


def test_synthetic_data_is_valid_under_the_schema_and_seeded() -> None:
    first, second = churn_data.synthetic_churn(500, seed=9), churn_data.synthetic_churn(500, seed=9)
    text = "\n".join(",".join(repr(float(v)) for v in row) for row in first.features)
    np.testing.assert_array_equal(CHURN_SCHEMA.matrix_from_csv(text), first.features)
    np.testing.assert_array_equal(first.features, second.features)
    assert 0.1 < first.labels.mean() < 0.4


def test_package_puts_the_artifact_files_at_the_archive_root(
    trained: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    tarball = train.package_model(trained["logistic"][0], tmp_path / "out" / "model.tar.gz")
    with tarfile.open(tarball) as archive:
        assert sorted(archive.getnames()) == ["features.json", "metadata.json", "model.joblib"]


def _write_channel_csv(path: Path, samples: int, seed: int) -> None:
    data = churn_data.synthetic_churn(samples, seed)
    header = [*reversed(CHURN_SCHEMA.names), LABEL]  # any column order: matched by name
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row, label in zip(data.features, data.labels, strict=True):
            writer.writerow([*(repr(float(v)) for v in reversed(row)), int(label)])


def test_cli_follows_sagemakers_layout_and_reads_the_train_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = tmp_path / "channel"
    channel.mkdir()
    _write_channel_csv(channel / "part-1.csv", 800, seed=1)
    _write_channel_csv(channel / "part-2.csv", 800, seed=2)
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(channel))
    train.main(["--model-version", "v7", "--tarball", str(tmp_path / "model.tar.gz")])
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["model_version"] == "v7"
    assert metadata["data"]["rows"] == 1600
    assert metadata["data"]["source"] == "csv(part-1.csv, part-2.csv)"
    assert metadata["metrics"]["auc"] > 0.7
    assert (tmp_path / "model.tar.gz").is_file()
    assert json.loads(capsys.readouterr().out)["model_version"] == "v7"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no CSV files"),
        ("", "empty file"),
        ("tenure_months,churned\n1,0\n", "lacks"),
        (",".join([*CHURN_SCHEMA.names, LABEL, "extra"]) + "\n", "unknown columns \\['extra'\\]"),
        (",".join([*CHURN_SCHEMA.names, LABEL]) + "\n", "no records"),
        (",".join([*CHURN_SCHEMA.names, LABEL]) + "\n3,80,4,1,2,12,2.1,0,yes\n", "record 0: label"),
        (",".join([*CHURN_SCHEMA.names, LABEL]) + "\n3,80,4,1,2,12,2.1,0\n", "record 0: 8 cells"),
        (",".join([*CHURN_SCHEMA.names, LABEL]) + "\n3,80,4,1,2,12,9,0,1\n", "'satisfaction_score'"),
        (",".join([*CHURN_SCHEMA.names, LABEL]) + '\n3,"80,4,1,2,12,2,0,1\n', "malformed CSV"),
    ],
)
def test_bad_training_data_fails_with_a_clear_reason(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "drop.csv").write_text(content)
    with pytest.raises(TrainingDataError, match=message):
        churn_data.read_training_dir(tmp_path, CHURN_SCHEMA)


def test_training_needs_both_classes(tmp_path: Path) -> None:
    data = churn_data.synthetic_churn(200, seed=1)
    one_class = churn_data.Dataset(data.features, np.zeros_like(data.labels), "all stay")
    with pytest.raises(TrainingDataError, match="both classes"):
        train.train(TrainConfig(), tmp_path, one_class)
