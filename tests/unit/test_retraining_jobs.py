"""The run's jobs: names within SageMaker's limits and the same on a retry, the contract's S3 layout,
every container path under /opt/ml/, hyperparameters as strings, statuses and failure reasons."""

from __future__ import annotations

import re

import pytest

from lambdas.retraining.jobs import (
    JobFailed,
    RunLayout,
    evaluation_request,
    job_name,
    job_status,
    preprocess_request,
    training_request,
)
from lambdas.retraining.state import (
    InvalidRetrainingInput,
    parse_input,
    run_id_for,
)
from tests.retraining_support import (
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    EXECUTION_ID,
    FAMILY,
    ROLE_ARN,
    TRAINING_IMAGE,
    settings,
    state,
    trained_state,
)

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def test_the_run_id_is_the_same_for_the_same_execution_and_differs_between_executions() -> None:
    assert run_id_for(EXECUTION_ID) == run_id_for(EXECUTION_ID)
    assert run_id_for(EXECUTION_ID) != run_id_for(EXECUTION_ID + "-2")
    assert re.fullmatch(r"[0-9a-f]{12}", run_id_for(EXECUTION_ID))


def test_job_names_fit_sagemaker_for_the_longest_prefix_and_family() -> None:
    longest_prefix, longest_family = "mlrollout-" + "e" * 16, "f" * 24
    for step in ("preprocess", "train", "evaluate"):
        name = job_name(longest_prefix, longest_family, step, "0123456789ab")
        assert SAGEMAKER_NAME.match(name), name
        assert name.startswith(f"{longest_prefix}-fff")
        assert name.endswith("-0123456789ab")
    assert job_name("mlrollout-dev", FAMILY, "train", "0123456789ab") == (
        "mlrollout-dev-churn-classifier-train-0123456789ab"
    )


def test_the_layout_is_the_contracts() -> None:
    where = RunLayout(DATA_BUCKET, ARTIFACTS_BUCKET, FAMILY, "run1")
    run = f"s3://{ARTIFACTS_BUCKET}/retraining/{FAMILY}/run1/"
    assert where.data == f"s3://{DATA_BUCKET}/{FAMILY}/"
    assert where.train == f"{run}train/"
    assert where.model_output == f"{run}model/"
    assert where.model_archive("job") == f"{run}model/job/output/model.tar.gz"
    assert where.gates("job") == f"{run}model/job/output/gates/"
    assert where.evaluation_report("job") == f"{run}model/job/output/evaluation.json"
    assert where.data_manifest("job") == f"{run}model/job/output/data-manifest.json"


def _paths(request: dict[str, object]) -> list[str]:
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith("/"):
            found.append(value)

    walk(request)
    return found


def test_preprocess_reads_the_familys_data_and_writes_the_runs_train_folder() -> None:
    run = state()
    request = preprocess_request(run, settings())
    assert request["ProcessingJobName"] == f"mlrollout-dev-{FAMILY}-prep-{run.run_id}"
    assert request["RoleArn"] == ROLE_ARN
    app = request["AppSpecification"]
    assert app["ImageUri"] == TRAINING_IMAGE
    assert app["ContainerEntrypoint"] == ["python3", "-m", "pipelines.preprocess"]
    assert app["ContainerArguments"] == [
        "--data-dir",
        "/opt/ml/processing/input/data",
        "--out-dir",
        "/opt/ml/processing/output/train",
    ]
    [data] = request["ProcessingInputs"]
    assert data["S3Input"]["S3Uri"] == f"s3://{DATA_BUCKET}/{FAMILY}/"
    assert data["S3Input"]["LocalPath"] == "/opt/ml/processing/input/data"
    assert data["S3Input"]["S3DataType"] == "S3Prefix"
    [train] = request["ProcessingOutputConfig"]["Outputs"]
    assert train["S3Output"]["S3Uri"] == f"s3://{ARTIFACTS_BUCKET}/retraining/{FAMILY}/{run.run_id}/train/"
    assert train["S3Output"]["LocalPath"] == "/opt/ml/processing/output/train"
    cluster = request["ProcessingResources"]["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["InstanceCount"], cluster["VolumeSizeInGB"]) == (
        "ml.m5.large",
        1,
        30,
    )
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert all(path.startswith("/opt/ml/") for path in _paths(request))


def test_training_passes_string_hyperparameters_and_writes_under_the_runs_model_folder() -> None:
    run = state()
    request = training_request(run, settings())
    assert request["TrainingJobName"] == f"mlrollout-dev-{FAMILY}-train-{run.run_id}"
    assert request["AlgorithmSpecification"] == {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"}
    assert request["HyperParameters"] == {
        "recipe": "logistic",
        "seed": "1",
        "model_version": f"{FAMILY}-{run.run_id}",
    }
    assert all(isinstance(value, str) for value in request["HyperParameters"].values())
    [channel] = request["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    source = channel["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == f"s3://{ARTIFACTS_BUCKET}/retraining/{FAMILY}/{run.run_id}/train/"
    assert request["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{ARTIFACTS_BUCKET}/retraining/{FAMILY}/{run.run_id}/model/"
    }
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }


def test_evaluation_reads_the_model_and_writes_beside_it() -> None:
    run = trained_state("the-training-job")
    request = evaluation_request(run, settings())
    folder = f"s3://{ARTIFACTS_BUCKET}/retraining/{FAMILY}/{run.run_id}/"
    assert request["ProcessingJobName"] == f"mlrollout-dev-{FAMILY}-eval-{run.run_id}"
    assert request["AppSpecification"]["ContainerEntrypoint"] == ["python3", "-m", "pipelines.evaluate"]
    assert request["AppSpecification"]["ContainerArguments"] == [
        "--model-dir",
        "/opt/ml/processing/input/model",
        "--train-dir",
        "/opt/ml/processing/input/train",
        "--out-dir",
        "/opt/ml/processing/output/evaluation",
    ]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert inputs == {
        "model": f"{folder}model/the-training-job/output/model.tar.gz",
        "train": f"{folder}train/",
    }
    [output] = request["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == f"{folder}model/the-training-job/output/"
    assert all(path.startswith("/opt/ml/") for path in _paths(request))


def test_evaluation_before_training_is_refused() -> None:
    with pytest.raises(ValueError, match="has no training job yet"):
        evaluation_request(state(), settings())


@pytest.mark.parametrize(
    ("step", "description", "expected"),
    [
        ("train", {"TrainingJobStatus": "InProgress"}, "InProgress"),
        ("train", {"TrainingJobStatus": "Stopping"}, "InProgress"),
        ("preprocess", {"ProcessingJobStatus": "Completed"}, "Completed"),
    ],
)
def test_a_running_or_completed_job_reads_as_its_status(
    step: str, description: dict[str, str], expected: str
) -> None:
    assert job_status(step, "job", description) == expected  # type: ignore[arg-type]


def test_a_failed_job_raises_with_sagemakers_reason() -> None:
    failed = {
        "ProcessingJobStatus": "Failed",
        "FailureReason": "AlgorithmError: schema change: part-0.csv lacks column tenure_months",
    }
    with pytest.raises(JobFailed, match=r"preprocess job j failed: AlgorithmError: schema change"):
        job_status("preprocess", "j", failed)
    with pytest.raises(JobFailed, match="train job j stopped: no reason given"):
        job_status("train", "j", {"TrainingJobStatus": "Stopped"})
    with pytest.raises(JobFailed, match="unknown status ''"):
        job_status("evaluate", "j", {})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"trigger": {"kind": "manual"}, "execution_id": "e"}, "model_family: Field required"),
        (
            {"model_family": "Churn!", "trigger": {"kind": "manual"}, "execution_id": "e"},
            "model_family: String",
        ),
        (
            {"model_family": FAMILY, "trigger": {"kind": "whim"}, "execution_id": "e"},
            "trigger.kind: Input should",
        ),
        ({"model_family": FAMILY, "trigger": {"kind": "manual"}}, "execution_id: Field required"),
        ("retrain please", "(top level): Input should be a valid dictionary"),
    ],
)
def test_a_bad_input_is_refused_with_every_problem_named(event: object, message: str) -> None:
    with pytest.raises(InvalidRetrainingInput, match="invalid retraining request") as raised:
        parse_input(event)
    assert message in str(raised.value)


def test_a_good_input_parses_with_its_trigger_detail() -> None:
    given = parse_input(
        {
            "model_family": FAMILY,
            "trigger": {"kind": "new_data", "detail": {"key": f"{FAMILY}/x.csv"}},
            "execution_id": EXECUTION_ID,
        }
    )
    assert (given.model_family, given.trigger.kind, given.trigger.detail) == (
        FAMILY,
        "new_data",
        {"key": f"{FAMILY}/x.csv"},
    )
