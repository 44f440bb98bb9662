"""SageMaker training and processing jobs on moto run as local processes (`localcloud.sagemaker.jobs`).

The retraining's three steps go through boto3's CreateProcessingJob / CreateTrainingJob against moto,
as the retraining Lambdas call them, and run for real: their outputs land in moto's S3, the statuses
move as SageMaker's do, a failing step's own reason is the job's FailureReason, and jobs stop.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from lambdas.retraining.evaluation import EvaluationReport
from localcloud.sagemaker import job_builders
from localcloud.sagemaker.job_models import LocalJobError
from localcloud.sagemaker.job_processes import LocalJobs
from localcloud.sagemaker.jobs import run_jobs_locally
from pipelines.data_version import DataManifest, ManifestObject
from tests.unit.test_preprocess import drop_text

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-training:1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
DATA_BUCKET = "training-data"
ARTIFACTS = "artifacts"
FAMILY = "churn"
RUN = "run-1"
RUN_PREFIX = f"s3://{ARTIFACTS}/retraining/{FAMILY}/{RUN}"
DROPS = {
    f"{FAMILY}/2026-11-24/part-0.csv": drop_text(150, 1),
    f"{FAMILY}/2026-11-25/part-0.csv": drop_text(150, 2),
}
RESOURCES = {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}}


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[LocalJobs]:
    with mock_aws(), run_jobs_locally(tmp_path / "scratch") as local_jobs:
        s3 = boto3.client("s3")
        for bucket in (DATA_BUCKET, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        for key, text in DROPS.items():
            s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=text.encode())
        yield local_jobs


@pytest.fixture
def sagemaker(jobs: LocalJobs) -> Any:
    return boto3.client("sagemaker")


@pytest.fixture
def s3(jobs: LocalJobs) -> Any:
    return boto3.client("s3")


def s3_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File"},
    }


def s3_output(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def start_preprocess(client: Any, name: str, data_prefix: str = f"s3://{DATA_BUCKET}/{FAMILY}/") -> None:
    client.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        ProcessingResources=RESOURCES,
        AppSpecification={
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "-m", "pipelines.preprocess"],
            "ContainerArguments": [
                "--data-dir",
                "/opt/ml/processing/input/data",
                "--out-dir",
                "/opt/ml/processing/output/train",
            ],
        },
        ProcessingInputs=[s3_input("data", data_prefix, "/opt/ml/processing/input/data")],
        ProcessingOutputConfig={
            "Outputs": [s3_output("train", f"{RUN_PREFIX}/train/", "/opt/ml/processing/output/train")]
        },
    )


def start_training(client: Any, name: str, hyperparameters: dict[str, str], **overrides: Any) -> None:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"{RUN_PREFIX}/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"{RUN_PREFIX}/model/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    client.create_training_job(**{**request, **overrides})


def start_evaluation(client: Any, name: str, model_artifact: str, output: str) -> None:
    client.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        ProcessingResources=RESOURCES,
        AppSpecification={
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "-m", "pipelines.evaluate"],
            "ContainerArguments": [
                "--model-dir",
                "/opt/ml/processing/input/model",
                "--train-dir",
                "/opt/ml/processing/input/train",
                "--out-dir",
                "/opt/ml/processing/output/evaluation",
            ],
        },
        ProcessingInputs=[
            s3_input("model", model_artifact, "/opt/ml/processing/input/model"),
            s3_input("train", f"{RUN_PREFIX}/train/", "/opt/ml/processing/input/train"),
        ],
        ProcessingOutputConfig={
            "Outputs": [s3_output("evaluation", output, "/opt/ml/processing/output/evaluation")]
        },
    )


def start_python(client: Any, name: str, code: str, *arguments: str, **request: Any) -> None:
    """A processing job whose program is a line of Python, its output uploaded to s3://artifacts/<name>/."""
    client.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        ProcessingResources=RESOURCES,
        AppSpecification={
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "-c", code],
            **({"ContainerArguments": list(arguments)} if arguments else {}),
        },
        ProcessingOutputConfig={
            "Outputs": [s3_output("out", f"s3://{ARTIFACTS}/{name}/", "/opt/ml/processing/output/out")]
        },
        **request,
    )


def keys(s3: Any, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def body(s3: Any, key: str, bucket: str = ARTIFACTS) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def test_the_retraining_steps_run_as_jobs_and_leave_their_outputs_in_s3(
    jobs: LocalJobs, sagemaker: Any, s3: Any
) -> None:
    with jobs.hold():
        start_preprocess(sagemaker, "preprocess-1")
        waiting = sagemaker.describe_processing_job(ProcessingJobName="preprocess-1")
        assert waiting["ProcessingJobStatus"] == "InProgress"
        assert "ProcessingEndTime" not in waiting
    assert jobs.wait("preprocess-1") == "Completed"
    described = sagemaker.describe_processing_job(ProcessingJobName="preprocess-1")
    assert described["ProcessingEndTime"] >= described["ProcessingStartTime"]
    assert keys(s3, f"retraining/{FAMILY}/{RUN}/train/") == [
        f"retraining/{FAMILY}/{RUN}/train/manifest.json",
        f"retraining/{FAMILY}/{RUN}/train/train.csv",
    ]
    manifest = DataManifest.from_json(body(s3, f"retraining/{FAMILY}/{RUN}/train/manifest.json"))
    expected = DataManifest.of(
        ManifestObject(
            key=key.removeprefix(f"{FAMILY}/"),
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            bytes=len(text.encode()),
        )
        for key, text in DROPS.items()
    )
    assert manifest == expected  # keys relative to the family's prefix
    train_csv = list(csv.reader(io.StringIO(body(s3, f"retraining/{FAMILY}/{RUN}/train/train.csv").decode())))
    assert len(train_csv) == 1 + 300

    hyperparameters = {"recipe": "logistic", "seed": "2", "model_version": "churn-v2"}
    start_training(sagemaker, "train-1", hyperparameters)
    assert jobs.wait("train-1") == "Completed"
    trained = sagemaker.describe_training_job(TrainingJobName="train-1")
    artifact = f"{RUN_PREFIX}/model/train-1/output/model.tar.gz"
    assert trained["TrainingJobStatus"] == "Completed"
    assert trained["ModelArtifacts"] == {"S3ModelArtifacts": artifact}
    assert trained["HyperParameters"] == hyperparameters
    assert trained["AlgorithmSpecification"] == {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    assert "FinalMetricDataList" not in trained
    transitions = [t["Status"] for t in trained["SecondaryStatusTransitions"]]
    assert transitions == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    config = jobs.job("train-1").root / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == hyperparameters
    assert json.loads((config / "inputdataconfig.json").read_text())["train"]["ContentType"] == "text/csv"
    assert json.loads((config / "resourceconfig.json").read_text())["current_host"] == "algo-1"
    with tarfile.open(fileobj=io.BytesIO(body(s3, artifact.removeprefix(f"s3://{ARTIFACTS}/")))) as archive:
        assert sorted(archive.getnames()) == ["features.json", "metadata.json", "model.joblib"]
        metadata = json.loads(archive.extractfile("metadata.json").read())  # type: ignore[union-attr]
    assert metadata["data_version"] == manifest.data_version
    assert metadata["model_version"] == "churn-v2"

    output = f"{RUN_PREFIX}/model/train-1/output/"
    start_evaluation(sagemaker, "evaluate-1", artifact, output)
    assert jobs.wait("evaluate-1") == "Completed"
    folder = f"retraining/{FAMILY}/{RUN}/model/train-1/output/"
    assert keys(s3, folder) == [
        folder + name
        for name in (
            "data-manifest.json",
            "evaluation.json",
            "gates/baseline.json",
            "gates/golden.json",
            "gates/golden_outputs.json",
            "gates/metrics.json",
            "model.tar.gz",
        )
    ]
    report = EvaluationReport.model_validate_json(body(s3, folder + "evaluation.json"))
    assert report.data_version == manifest.data_version
    assert report.model_version == "churn-v2"
    assert report.metrics == metadata["metrics"]
    assert report.golden_check.passed


def test_a_failing_step_shows_its_own_reason_as_the_jobs_failure_reason(
    jobs: LocalJobs, sagemaker: Any, s3: Any
) -> None:
    header = drop_text(1, 1).splitlines()[0]
    s3.put_object(Bucket=DATA_BUCKET, Key=f"{FAMILY}/2026-11-26/bad.csv", Body=f"{header}\n1,2\n".encode())
    start_preprocess(sagemaker, "preprocess-bad")
    assert jobs.wait("preprocess-bad") == "Failed"
    described = sagemaker.describe_processing_job(ProcessingJobName="preprocess-bad")
    reason = "preprocessing failed: 2026-11-26/bad.csv: record 0: 2 cells, header has 9"
    assert described["ExitMessage"].startswith(reason)
    assert described["FailureReason"] == f"AlgorithmError: {described['ExitMessage']}"
    assert keys(s3, f"retraining/{FAMILY}/{RUN}/") == []  # nothing uploaded

    s3.put_object(
        Bucket=ARTIFACTS,
        Key=f"retraining/{FAMILY}/{RUN}/train/train.csv",
        Body=DROPS[f"{FAMILY}/2026-11-24/part-0.csv"].encode(),
    )
    start_training(sagemaker, "train-bad", {"recipe": "forest"})
    assert jobs.wait("train-bad") == "Failed"
    trained = sagemaker.describe_training_job(TrainingJobName="train-bad")
    assert trained["FailureReason"].startswith(
        "AlgorithmError: training failed: hyperparameter recipe='forest' is not one of"
    )
    assert trained["SecondaryStatus"] == "Failed"
    assert "ModelArtifacts" not in trained
    assert keys(s3, f"retraining/{FAMILY}/{RUN}/model/") == []


def test_a_program_that_writes_no_reason_fails_with_its_last_stderr_lines(
    jobs: LocalJobs, sagemaker: Any
) -> None:
    start_python(sagemaker, "crash", "import sys; print('noise'); sys.exit('the model store is gone')")
    assert jobs.wait("crash") == "Failed"
    described = sagemaker.describe_processing_job(ProcessingJobName="crash")
    assert described["FailureReason"] == "AlgorithmError: the model store is gone"
    assert (jobs.job("crash").stdout_log).read_text() == "noise\n"


def test_an_input_prefix_without_objects_fails_the_job_before_its_program_runs(
    jobs: LocalJobs, sagemaker: Any
) -> None:
    start_preprocess(sagemaker, "preprocess-empty", data_prefix=f"s3://{DATA_BUCKET}/no-such-family/")
    assert jobs.wait("preprocess-empty") == "Failed"
    described = sagemaker.describe_processing_job(ProcessingJobName="preprocess-empty")
    assert described["FailureReason"].startswith("ClientError: no S3 objects found under S3 URL")
    assert "ExitMessage" not in described
    assert not jobs.job("preprocess-empty").stdout_log.exists()


def _wait_for_file(path: Path, jobs: LocalJobs, name: str) -> None:
    """Until the job's program has written `path` (or the job has ended, which the caller then sees)."""
    while not path.exists() and not jobs.job(name).ended.is_set():
        time.sleep(0.05)


def test_a_running_processing_job_stops(jobs: LocalJobs, sagemaker: Any, s3: Any) -> None:
    code = (
        "import pathlib, sys, time; out = pathlib.Path(sys.argv[1]); "
        "(out / 'started').write_text('yes'); time.sleep(600)"
    )
    start_python(sagemaker, "forever", code, "/opt/ml/processing/output/out")
    _wait_for_file(jobs.job("forever").local("/opt/ml/processing/output/out/started"), jobs, "forever")
    sagemaker.stop_processing_job(ProcessingJobName="forever")
    assert sagemaker.describe_processing_job(ProcessingJobName="forever")["ProcessingJobStatus"] in {
        "Stopping",
        "Stopped",
    }
    assert jobs.wait("forever") == "Stopped"
    assert keys(s3, "forever/") == []  # a stopped job uploads nothing
    with pytest.raises(ClientError, match="is not in progress: its status is Stopped"):
        sagemaker.stop_processing_job(ProcessingJobName="forever")


def test_a_training_job_stopped_before_it_starts_never_runs(jobs: LocalJobs, sagemaker: Any) -> None:
    with jobs.hold():
        start_training(sagemaker, "train-stopped", {"recipe": "logistic"})
        assert (
            sagemaker.describe_training_job(TrainingJobName="train-stopped")["SecondaryStatus"] == "Starting"
        )
        sagemaker.stop_training_job(TrainingJobName="train-stopped")
        # A stopped job leaves the hold at once: Stopping, then Stopped.
        stopping = sagemaker.describe_training_job(TrainingJobName="train-stopped")["TrainingJobStatus"]
        assert stopping in {"Stopping", "Stopped"}
    assert jobs.wait("train-stopped") == "Stopped"
    described = sagemaker.describe_training_job(TrainingJobName="train-stopped")
    assert described["SecondaryStatus"] == "Stopped"
    assert "ModelArtifacts" not in described
    assert not jobs.job("train-stopped").stdout_log.exists()
    with pytest.raises(ClientError, match="Could not find training job"):
        sagemaker.stop_training_job(TrainingJobName="no-such-job")


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (
            lambda client: client.create_processing_job(
                ProcessingJobName="refused",
                RoleArn=ROLE,
                ProcessingResources=RESOURCES,
                AppSpecification={"ImageUri": IMAGE},
            ),
            "AppSpecification.ContainerEntrypoint is needed",
        ),
        (
            lambda client: start_training(
                client,
                "refused",
                {},
                AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "Pipe"},
            ),
            "input mode Pipe is not run locally",
        ),
        (
            lambda client: start_python(
                client,
                "refused",
                "pass",
                ProcessingInputs=[s3_input("in", f"s3://{DATA_BUCKET}/{FAMILY}/", "/tmp/elsewhere")],
            ),
            "LocalPath '/tmp/elsewhere' must be under /opt/ml/processing/",
        ),
    ],
    ids=["no-entrypoint", "pipe-mode", "local-path-outside-processing"],
)
def test_what_cannot_run_locally_is_refused_by_name_and_not_recorded(
    jobs: LocalJobs, sagemaker: Any, start: Any, message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        start(sagemaker)
    assert "refused" not in jobs.names
    with pytest.raises(ClientError, match="Could not find"):
        sagemaker.describe_processing_job(ProcessingJobName="refused")
    with pytest.raises(ClientError, match="Could not find"):
        sagemaker.describe_training_job(TrainingJobName="refused")


def test_a_job_name_is_used_once(jobs: LocalJobs, sagemaker: Any) -> None:
    start_python(sagemaker, "once", "pass")
    assert jobs.wait("once") == "Completed"
    with pytest.raises(ClientError, match="already exists"):
        start_python(sagemaker, "once", "pass")


def test_jobs_run_when_created_through_motos_server_with_their_environment(jobs: LocalJobs, s3: Any) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        remote = boto3.client("sagemaker", endpoint_url=f"http://{host}:{port}")
        code = (
            "import os, pathlib, sys; "
            "pathlib.Path(sys.argv[1], 'said.txt').write_text(os.environ['GREETING'] + ' ' + sys.argv[1])"
        )
        start_python(
            remote, "remote", code, "/opt/ml/processing/output/out", Environment={"GREETING": "hello"}
        )
        assert jobs.wait("remote") == "Completed"
        described = remote.describe_processing_job(ProcessingJobName="remote")
        assert described["ProcessingJobStatus"] == "Completed"
        assert described["Environment"] == {"GREETING": "hello"}
        local_out = jobs.job("remote").local("/opt/ml/processing/output/out")
        assert body(s3, "remote/said.txt").decode() == f"hello {local_out}"
        with pytest.raises(ClientError, match="Could not find training job"):
            remote.stop_training_job(TrainingJobName="absent")
    finally:
        server.stop()


def test_an_object_key_that_leaves_its_prefix_fails_the_job_and_writes_nothing_outside(
    jobs: LocalJobs, sagemaker: Any, s3: Any
) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key=f"{FAMILY}/../../escaped.csv", Body=b"a\n")
    start_preprocess(sagemaker, "preprocess-escape")
    assert jobs.wait("preprocess-escape") == "Failed"
    described = sagemaker.describe_processing_job(ProcessingJobName="preprocess-escape")
    assert described["FailureReason"].startswith(
        f"ClientError: s3://{DATA_BUCKET}/{FAMILY}/../../escaped.csv"
    )
    assert not (jobs.job("preprocess-escape").root / "processing" / "escaped.csv").exists()
    assert not (jobs.scratch / "preprocess-escape" / "escaped.csv").exists()


def test_a_job_name_sagemaker_would_refuse_is_refused(jobs: LocalJobs, sagemaker: Any) -> None:
    with pytest.raises(ClientError, match=r"ProcessingJobName '\.\./outside' must match"):
        start_python(sagemaker, "../outside", "pass")
    assert not (jobs.scratch.parent / "outside").exists()


def test_one_runner_at_a_time(jobs: LocalJobs) -> None:
    with pytest.raises(LocalJobError, match="open already"), run_jobs_locally():
        pass


def test_a_training_entrypoint_runs_with_sagemakers_variables_and_its_model_dir_is_uploaded(
    jobs: LocalJobs, sagemaker: Any, s3: Any
) -> None:
    s3.put_object(Bucket=ARTIFACTS, Key=f"retraining/{FAMILY}/{RUN}/train/train.csv", Body=b"x\n")
    code = (
        "import json, os, pathlib; names = ['SM_MODEL_DIR', 'SM_CHANNEL_TRAIN', 'SM_INPUT_CONFIG_DIR', "
        "'SM_OUTPUT_DIR', 'SM_OUTPUT_DATA_DIR']; "
        "seen = {n: os.environ[n] for n in names}; "
        "seen['hyperparameters'] = json.loads(pathlib.Path(os.environ['SM_INPUT_CONFIG_DIR'], "
        "'hyperparameters.json').read_text()); "
        "seen['channel'] = sorted(p.name for p in pathlib.Path(os.environ['SM_CHANNEL_TRAIN']).iterdir()); "
        "pathlib.Path(os.environ['SM_MODEL_DIR'], 'seen.json').write_text(json.dumps(seen))"
    )
    start_training(
        sagemaker,
        "train-entrypoint",
        {"epochs": "3"},
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "-c", code],
        },
    )
    assert jobs.wait("train-entrypoint") == "Completed"
    artifact = f"retraining/{FAMILY}/{RUN}/model/train-entrypoint/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(body(s3, artifact))) as archive:
        seen = json.loads(archive.extractfile("seen.json").read())  # type: ignore[union-attr]
    root = jobs.job("train-entrypoint").root
    assert seen == {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_CHANNEL_TRAIN": str(root / "input" / "data" / "train"),
        "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "hyperparameters": {"epochs": "3"},
        "channel": ["train.csv"],
    }


def test_a_job_is_listed_in_progress_from_the_moment_moto_records_it(
    jobs: LocalJobs, sagemaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto records a job `Completed`; another caller listing jobs while its local run is being built
    (a retraining's stop, a test waiting for the job) must not see it ended before it ran."""
    seen_while_built: list[str] = []

    def listing_first(build: Any) -> Any:
        def built(*arguments: Any) -> Any:
            [summary] = sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
            seen_while_built.append(summary["ProcessingJobStatus"])
            return build(*arguments)

        return built

    monkeypatch.setattr(
        "localcloud.sagemaker.jobs.processing_job", listing_first(job_builders.processing_job)
    )
    with jobs.hold():
        start_python(sagemaker, "seen", "pass")
        assert seen_while_built == ["InProgress"]
    assert jobs.wait("seen") == "Completed"
