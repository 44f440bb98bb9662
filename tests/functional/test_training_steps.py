"""The training image's three steps as SageMaker runs them: processes with SageMaker's file layout.

Docker cannot run here, so each step is the image's own command run as a process of this machine with
``/opt/ml`` moved under a temporary directory (the ``SM_*`` variables say where): preprocess and evaluate
as ``python3 -m <module> --...`` (a Processing job's ContainerEntrypoint and ContainerArguments), training
as the image's ``train`` program with ``hyperparameters.json`` and the ``train`` channel.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lambdas.retraining.evaluation import EvaluationReport
from pipelines import train
from pipelines.churn_data import CHURN_SCHEMA, LABEL
from pipelines.data_version import DataManifest, code_version
from tests.unit.test_preprocess import drop_text

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PROGRAM = ROOT / "containers" / "training" / "train"
HEADER = ",".join([*CHURN_SCHEMA.names, LABEL]) + "\n"
ROW = "3,80.5,4,1,2,12.0,2.1,0,1\n"


class Container:
    """One job's ``/opt/ml`` under a temporary directory, and the image's commands run against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.opt_ml = root / "opt" / "ml"
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        python3 = self.bin / "python3"  # the image's python3 is this interpreter
        python3.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        python3.chmod(0o755)
        (self.opt_ml / "output").mkdir(parents=True)

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def run(self, command: list[str], **environment: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "SM_OUTPUT_DIR": str(self.path("/opt/ml/output")),
            **environment,
        }
        mapped = [str(self.path(part)) if part.startswith("/opt/ml/") else part for part in command]
        return subprocess.run(
            mapped, check=False, env=env, cwd=self.root, capture_output=True, text=True, timeout=300
        )

    def preprocess(self) -> subprocess.CompletedProcess[str]:
        return self.run(
            [
                "python3",
                "-m",
                "pipelines.preprocess",
                "--data-dir",
                "/opt/ml/processing/input/data",
                "--out-dir",
                "/opt/ml/processing/output/train",
            ]
        )

    def train(self, hyperparameters: dict[str, str]) -> subprocess.CompletedProcess[str]:
        config = self.path("/opt/ml/input/config")
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        return self.run(
            [str(TRAIN_PROGRAM)],
            SM_INPUT_CONFIG_DIR=str(config),
            SM_CHANNEL_TRAIN=str(self.path("/opt/ml/input/data/train")),
            SM_MODEL_DIR=str(self.path("/opt/ml/model")),
        )

    def evaluate(self) -> subprocess.CompletedProcess[str]:
        return self.run(
            [
                "python3",
                "-m",
                "pipelines.evaluate",
                "--model-dir",
                "/opt/ml/processing/input/model",
                "--train-dir",
                "/opt/ml/processing/input/train",
                "--out-dir",
                "/opt/ml/processing/output/evaluation",
            ]
        )

    def failure(self, name: str) -> str:
        return self.path(f"/opt/ml/output/{name}").read_text()


def write_drops(directory: Path, files: dict[str, str]) -> None:
    for key, text in files.items():
        (directory / key).parent.mkdir(parents=True, exist_ok=True)
        (directory / key).write_text(text)


DROPS = {"2026-11-24/part-0.csv": drop_text(150, seed=1), "2026-11-25/part-0.csv": drop_text(150, seed=2)}


def _tar_model(model_dir: Path, into: Path) -> None:
    """``model.tar.gz`` as SageMaker uploads a training job's model directory: its files at the root."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into / "model.tar.gz", "w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)


def test_preprocess_train_and_evaluate_chain_into_an_evaluation_report(tmp_path: Path) -> None:
    preprocess = Container(tmp_path / "preprocess")
    write_drops(preprocess.path("/opt/ml/processing/input/data"), DROPS)
    done = preprocess.preprocess()
    assert done.returncode == 0, done.stderr
    train_output = preprocess.path("/opt/ml/processing/output/train")
    manifest = DataManifest.read(train_output / "manifest.json")
    assert [entry.key for entry in manifest.objects] == sorted(DROPS)
    assert json.loads(done.stdout)["data_version"] == manifest.data_version

    training = Container(tmp_path / "training")
    shutil.copytree(train_output, training.path("/opt/ml/input/data/train"))
    hyperparameters = {"recipe": "logistic", "seed": "2", "model_version": "churn-v2"}
    done = training.train(hyperparameters)
    assert done.returncode == 0, done.stderr
    metadata = json.loads(training.path("/opt/ml/model/metadata.json").read_text())
    assert metadata["model_version"] == "churn-v2"
    assert metadata["seed"] == 2
    assert metadata["data_version"] == manifest.data_version
    assert metadata["data_objects"] == 2
    assert metadata["code_version"] == code_version()
    assert metadata["job_hyperparameters"] == hyperparameters
    assert metadata["data"]["rows"] == 300

    evaluation = Container(tmp_path / "evaluation")
    _tar_model(training.path("/opt/ml/model"), evaluation.path("/opt/ml/processing/input/model"))
    shutil.copytree(train_output, evaluation.path("/opt/ml/processing/input/train"))
    done = evaluation.evaluate()
    assert done.returncode == 0, done.stderr
    out = evaluation.path("/opt/ml/processing/output/evaluation")
    report = EvaluationReport.model_validate_json((out / "evaluation.json").read_text())
    assert report.model_version == "churn-v2"
    assert report.recipe == "logistic"
    assert report.data_version == manifest.data_version
    assert report.data_objects == 2
    assert report.training_rows == 300
    assert report.code_version == code_version()
    assert report.hyperparameters["seed"] == 2
    assert report.metrics == metadata["metrics"]
    assert report.golden_check.passed, report.golden_check.detail
    assert sorted(p.name for p in (out / "gates").iterdir()) == [
        "baseline.json",
        "golden.json",
        "golden_outputs.json",
        "metrics.json",
    ]
    assert json.loads((out / "gates" / "metrics.json").read_text()) == metadata["metrics"]
    assert DataManifest.read(out / "data-manifest.json") == manifest


def test_the_same_data_is_the_same_version_and_a_changed_object_a_new_one(tmp_path: Path) -> None:
    versions = []
    changed = {**DROPS, "2026-11-25/part-0.csv": DROPS["2026-11-25/part-0.csv"].replace(",1\n", ",0\n", 1)}
    for name, drops in (("first", DROPS), ("again", DROPS), ("changed", changed)):
        container = Container(tmp_path / name)
        write_drops(container.path("/opt/ml/processing/input/data"), drops)
        done = container.preprocess()
        assert done.returncode == 0, done.stderr
        manifest_file = container.path("/opt/ml/processing/output/train/manifest.json")
        versions.append(DataManifest.read(manifest_file).data_version)
    first, again, changed_version = versions
    assert first == again
    assert changed_version != first


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "preprocessing failed: 2026-11-26/bad.csv: empty file"),
        (HEADER + '3,"80,4\n', "preprocessing failed: 2026-11-26/bad.csv: malformed CSV"),
        (
            HEADER.replace("support_calls_90d", "support_calls") + ROW,
            "preprocessing failed: 2026-11-26/bad.csv: schema change: header has unknown columns "
            "['support_calls'], lacks ['support_calls_90d']",
        ),
        (
            HEADER.replace(",autopay", "") + ROW.replace(",0,1\n", ",1\n"),
            "preprocessing failed: 2026-11-26/bad.csv: schema change: header has unknown columns [], "
            "lacks ['autopay']",
        ),
        (
            HEADER + ROW.replace(",1\n", ",-1\n"),
            "preprocessing failed: 2026-11-26/bad.csv: record 0: label 'churned' must be 0 or 1, got '-1'",
        ),
    ],
    ids=["empty", "corrupt", "renamed-column", "missing-column", "label-not-0-or-1"],
)
def test_a_bad_drop_fails_the_preprocess_job_with_the_reason_in_its_message_file(
    tmp_path: Path, text: str, reason: str
) -> None:
    container = Container(tmp_path)
    write_drops(container.path("/opt/ml/processing/input/data"), {**DROPS, "2026-11-26/bad.csv": text})
    done = container.preprocess()
    assert done.returncode == 1
    message = container.failure("message")
    assert message.splitlines()[0].startswith(reason)
    assert reason in done.stderr
    assert not any(container.path("/opt/ml/processing/output/train").glob("*"))


def test_a_bad_hyperparameter_or_channel_fails_training_with_the_reason_in_its_failure_file(
    tmp_path: Path,
) -> None:
    container = Container(tmp_path)
    write_drops(container.path("/opt/ml/input/data/train"), {"train.csv": DROPS["2026-11-24/part-0.csv"]})
    done = container.train({"recipe": "bagging"})
    assert done.returncode == 1
    assert container.failure("failure").startswith(
        "training failed: hyperparameter recipe='bagging' is not one of"
    )
    done = container.train({"recipe": "logistic", "learning_rate": "0.1"})
    assert done.returncode == 1
    assert "unknown hyperparameter(s) ['learning_rate']" in container.failure("failure")
    write_drops(container.path("/opt/ml/input/data/train"), {"train.csv": HEADER + ROW.replace("2.1", "x")})
    done = container.train({"recipe": "logistic"})
    assert done.returncode == 1
    assert container.failure("failure").startswith(
        "training failed: train.csv: record 0, feature 'satisfaction_score': expected a number"
    )
    assert not container.path("/opt/ml/model/model.joblib").exists()


def test_evaluation_refuses_a_model_trained_on_other_data(tmp_path: Path) -> None:
    training = Container(tmp_path / "training")
    preprocess = Container(tmp_path / "preprocess")
    write_drops(preprocess.path("/opt/ml/processing/input/data"), DROPS)
    assert preprocess.preprocess().returncode == 0
    train_output = preprocess.path("/opt/ml/processing/output/train")
    shutil.copytree(train_output, training.path("/opt/ml/input/data/train"))
    assert training.train({"seed": "1"}).returncode == 0

    evaluation = Container(tmp_path / "evaluation")
    _tar_model(training.path("/opt/ml/model"), evaluation.path("/opt/ml/processing/input/model"))
    other = Container(tmp_path / "other")
    write_drops(other.path("/opt/ml/processing/input/data"), {"only.csv": DROPS["2026-11-24/part-0.csv"]})
    assert other.preprocess().returncode == 0
    shutil.copytree(
        other.path("/opt/ml/processing/output/train"), evaluation.path("/opt/ml/processing/input/train")
    )
    done = evaluation.evaluate()
    assert done.returncode == 1
    assert evaluation.failure("message").startswith(
        "evaluation failed: the model was trained on data version"
    )
    assert not evaluation.path("/opt/ml/processing/output/evaluation").exists()


def test_training_reads_sagemakers_default_paths_when_no_variable_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(tmp_path)
    channel = container.path("/opt/ml/input/data/train")
    write_drops(channel, {"train.csv": DROPS["2026-11-24/part-0.csv"]})
    config = container.path("/opt/ml/input/config")
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"seed": "5", "model_version": "from-config"}))
    for name in ("SM_CHANNEL_TRAIN", "SM_INPUT_CONFIG_DIR", "SM_OUTPUT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(train, "DEFAULT_CHANNEL_DIR", str(channel))
    monkeypatch.setattr(train, "DEFAULT_CONFIG_DIR", str(config))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))

    train.main(["--seed", "7"])  # a flag overrides its hyperparameter
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["data"]["source"] == "csv(train.csv)"
    assert (metadata["seed"], metadata["model_version"]) == (7, "from-config")
    assert metadata["job_hyperparameters"] == {"seed": "5", "model_version": "from-config"}
    assert metadata["data_version"] is None  # no manifest.json in the channel

    shutil.rmtree(channel)
    train.main(["--samples", "300"])  # no channel at all: the seeded synthetic data
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["data"]["source"] == "synthetic(seed=5)"
    assert '"model_version": "from-config"' in capsys.readouterr().out
