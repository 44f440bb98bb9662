"""The retraining workflow's Lambda handlers against moto: the family's lock, SageMaker's job and registry
calls, S3 reads; jobs that fail or run long through `localcloud.sagemaker.jobs` (real local processes)."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from lambdas.locking.lock import NotLockHolder
from lambdas.retraining.aws.wiring import RunsJobs, build_services, use
from lambdas.retraining.evaluation import EvaluationReport
from lambdas.retraining.gate import GateFailed
from lambdas.retraining.jobs import JobFailed, RunLayout
from lambdas.retraining.registration import InvalidMetadata
from lambdas.retraining.settings import UnknownFamily, load_retraining_settings
from lambdas.retraining.state import InvalidRetrainingInput, run_id_for
from lambdas.shared.aws_clients import ReadsObjects
from localcloud.sagemaker.job_processes import LocalJobs
from localcloud.sagemaker.jobs import run_jobs_locally
from tests.functional.rollout_support import LambdaContextStub
from tests.retraining_support import (
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    DATA_VERSION,
    EXECUTION_ID,
    FAMILY,
    GROUP,
    INFERENCE_IMAGE,
    LOCK_TABLE,
    ROLE_ARN,
    environment,
    report,
)
from tests.unit.test_preprocess import drop_text

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
OTHER_EXECUTION = EXECUTION_ID.replace("run-1", "run-2")
HANDLERS = ("start", "preprocess", "train", "evaluate", "check_job", "register", "release")
LOCK_KEY = f"retraining#{FAMILY}"
JOB_WAIT_SECONDS = 120.0


@dataclass
class Retraining:
    handlers: dict[str, ModuleType]
    sagemaker: Any  # the sagemaker stubs are not installed
    s3: Any  # the s3 stubs are not installed
    dynamodb: Any

    def run(self, name: str, event: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.handlers[name].handler(event, LambdaContextStub())
        return result

    def start(self, execution_id: str = EXECUTION_ID, family: str = FAMILY) -> dict[str, Any]:
        trigger = {"kind": "new_data", "detail": {"key": f"{family}/2026-11-25/part-0.csv"}}
        return self.run("start", {"model_family": family, "trigger": trigger, "execution_id": execution_id})

    def lock_holder(self) -> str | None:
        item = self.dynamodb.get_item(TableName=LOCK_TABLE, Key={"endpoint": {"S": LOCK_KEY}})
        return item["Item"]["holder"]["S"] if "Item" in item else None

    def layout(self, state: dict[str, Any]) -> RunLayout:
        return RunLayout(DATA_BUCKET, ARTIFACTS_BUCKET, FAMILY, state["run_id"])

    def put(self, uri: str, body: str | bytes) -> None:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def evaluated(self, evaluation: EvaluationReport, manifest_version: str = DATA_VERSION) -> dict[str, Any]:
        """A run whose three jobs completed on moto, with the evaluation's outputs beside the model."""
        state = self.start()
        for step in ("preprocess", "train", "evaluate"):
            state = self.run("check_job", self.run(step, state))
            assert state["job"]["status"] == "Completed"
        where = self.layout(state)
        training_job = state["jobs"]["train"]
        self.put(where.evaluation_report(training_job), evaluation.model_dump_json())
        manifest = {"objects": [], "data_version": manifest_version}
        self.put(where.data_manifest(training_job), json.dumps(manifest))
        return state

    def packages(self) -> list[dict[str, Any]]:
        listed = self.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
        return [self.sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in listed]


def _handlers(env: dict[str, str]) -> Iterator[dict[str, ModuleType]]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        # Re-imported under this environment: Powertools reads its namespace when a module loads.
        yield {
            name: importlib.reload(importlib.import_module(f"lambdas.handlers.retraining_{name}"))
            for name in HANDLERS
        }


def _aws(handlers: dict[str, ModuleType], env: dict[str, str]) -> Iterator[Retraining]:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = boto3.client("s3")
    for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    services = build_services(
        load_retraining_settings(env),
        sagemaker=cast(RunsJobs, sagemaker),
        dynamodb=dynamodb,
        s3=cast(ReadsObjects, s3),
    )
    use(services)
    try:
        yield Retraining(handlers, sagemaker, s3, dynamodb)
    finally:
        use(None)


ENVIRONMENT = environment(POWERTOOLS_SERVICE_NAME="retraining", POWERTOOLS_METRICS_NAMESPACE="mlrollout")


@pytest.fixture
def retraining() -> Iterator[Retraining]:
    with mock_aws():
        for handlers in _handlers(ENVIRONMENT):
            yield from _aws(handlers, ENVIRONMENT)


@pytest.fixture
def pending_approval() -> Iterator[Retraining]:
    env = ENVIRONMENT | {"AUTO_APPROVE": "false"}
    with mock_aws():
        for handlers in _handlers(env):
            yield from _aws(handlers, env)


@pytest.fixture
def local_jobs(retraining: Retraining) -> Iterator[tuple[Retraining, LocalJobs]]:
    with run_jobs_locally() as jobs:
        yield retraining, jobs


# --- The lock --------------------------------------------------------------------------------------------


def test_start_takes_the_familys_lock_and_names_the_run_after_the_execution(retraining: Retraining) -> None:
    state = retraining.start()
    assert state["lock"] == {"taken": True, "key": LOCK_KEY, "holder": EXECUTION_ID}
    assert state["run_id"] == run_id_for(EXECUTION_ID)
    assert state["trigger"]["kind"] == "new_data"
    assert retraining.lock_holder() == EXECUTION_ID


def test_a_second_run_while_the_family_is_locked_takes_nothing_and_names_the_holder(
    retraining: Retraining,
) -> None:
    retraining.start()
    second = retraining.start(OTHER_EXECUTION)
    assert second["lock"] == {"taken": False, "key": LOCK_KEY, "holder": EXECUTION_ID}
    assert retraining.lock_holder() == EXECUTION_ID
    # The same execution asking again (a retried task) keeps its lock.
    assert retraining.start()["lock"]["taken"] is True


def test_the_failure_path_releases_with_the_caught_errors_beside_the_state(retraining: Retraining) -> None:
    state = retraining.start()
    failed = state | {
        "error": {"Error": "JobFailed", "Cause": "preprocess job failed"},
        "notify_error": {"Error": "SNS.InternalErrorException", "Cause": "try later"},
    }
    assert retraining.run("release", failed) == failed
    assert retraining.lock_holder() is None


def test_the_release_frees_the_family_for_the_next_run_and_a_second_release_changes_nothing(
    retraining: Retraining,
) -> None:
    state = retraining.start()
    assert retraining.run("release", state) == state
    assert retraining.lock_holder() is None
    assert retraining.run("release", state) == state
    assert retraining.start(OTHER_EXECUTION)["lock"]["taken"] is True
    # The first run's steps now fail: it no longer holds the family.
    with pytest.raises(NotLockHolder, match="does not hold endpoint retraining#churn-classifier"):
        retraining.run("preprocess", state)


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (
            {"model_family": "fraud-scorer", "trigger": {"kind": "manual"}},
            UnknownFamily,
            "unknown model family",
        ),
        ({"model_family": FAMILY, "trigger": {"kind": "whim"}}, InvalidRetrainingInput, "trigger.kind"),
        ({"trigger": {"kind": "manual"}}, InvalidRetrainingInput, "model_family: Field required"),
    ],
)
def test_a_bad_input_is_refused_with_the_problem_named_and_nothing_locked(
    retraining: Retraining, event: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        retraining.run("start", event | {"execution_id": EXECUTION_ID})
    assert retraining.lock_holder() is None


# --- The jobs --------------------------------------------------------------------------------------------


def test_every_job_request_is_accepted_by_sagemaker_with_the_runs_layout(retraining: Retraining) -> None:
    state = retraining.start()
    state = retraining.run("preprocess", state)
    prep = retraining.sagemaker.describe_processing_job(ProcessingJobName=state["job"]["name"])
    assert prep["RoleArn"] == ROLE_ARN
    assert prep["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"s3://{DATA_BUCKET}/{FAMILY}/"
    state = retraining.run("check_job", state)
    assert state["job"] == {"step": "preprocess", "name": prep["ProcessingJobName"], "status": "Completed"}
    state = retraining.run("check_job", retraining.run("train", state))
    trained = retraining.sagemaker.describe_training_job(TrainingJobName=state["jobs"]["train"])
    assert trained["HyperParameters"]["recipe"] == "logistic"
    assert state["model_data_url"] == trained["ModelArtifacts"]["S3ModelArtifacts"]
    assert state["model_data_url"] == retraining.layout(state).model_archive(state["jobs"]["train"])
    state = retraining.run("evaluate", state)
    evaluation = retraining.sagemaker.describe_processing_job(ProcessingJobName=state["job"]["name"])
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluation["ProcessingInputs"]}
    assert inputs["model"] == state["model_data_url"]
    assert sorted(state["jobs"]) == ["evaluate", "preprocess", "train"]


def test_a_retried_job_start_starts_no_second_job(retraining: Retraining) -> None:
    state = retraining.start()
    first = retraining.run("preprocess", state)
    again = retraining.run("preprocess", state)
    assert first == again
    summaries = retraining.sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
    assert [s["ProcessingJobName"] for s in summaries] == [first["job"]["name"]]


def test_a_running_job_is_checked_again_later(local_jobs: tuple[Retraining, LocalJobs]) -> None:
    retraining, jobs = local_jobs
    retraining.put(f"s3://{DATA_BUCKET}/{FAMILY}/2026-11-25/part-0.csv", drop_text(50, seed=1))
    with jobs.hold():
        state = retraining.run("preprocess", retraining.start())
        checked = retraining.run("check_job", state)
    assert checked["job"]["status"] == "InProgress"
    assert jobs.wait(state["job"]["name"], timeout=JOB_WAIT_SECONDS) == "Completed"
    assert retraining.run("check_job", checked)["job"]["status"] == "Completed"


def test_a_failed_job_fails_the_check_with_the_scripts_reason(
    local_jobs: tuple[Retraining, LocalJobs],
) -> None:
    retraining, jobs = local_jobs
    schema_change = drop_text(20, seed=1).replace("tenure_months", "tenure_days", 1)
    retraining.put(f"s3://{DATA_BUCKET}/{FAMILY}/2026-11-25/part-0.csv", schema_change)
    state = retraining.run("preprocess", retraining.start())
    assert jobs.wait(state["job"]["name"], timeout=JOB_WAIT_SECONDS) == "Failed"
    with pytest.raises(JobFailed) as failed:
        retraining.run("check_job", state)
    message = str(failed.value)
    assert message.startswith(f"preprocess job {state['job']['name']} failed: AlgorithmError: ")
    assert "2026-11-25/part-0.csv" in message
    # The lock is still this run's: the state machine's failure path releases it.
    assert retraining.lock_holder() == EXECUTION_ID


# --- Gate and registration -------------------------------------------------------------------------------


def test_a_passed_model_is_registered_approved_with_its_provenance(retraining: Retraining) -> None:
    state = retraining.run("register", retraining.evaluated(report()))
    [package] = retraining.packages()
    assert state["registration"]["model_package_arn"] == package["ModelPackageArn"]
    assert state["registration"]["approval_status"] == package["ModelApprovalStatus"] == "Approved"
    assert "accuracy 0.91 >= 0.7" in state["registration"]["gate_reason"]
    training_job = state["jobs"]["train"]
    where = retraining.layout(state)
    assert package["InferenceSpecification"]["Containers"] == [
        {"Image": INFERENCE_IMAGE, "ModelDataUrl": where.model_archive(training_job)}
    ]
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["S3Uri"] == where.evaluation_report(training_job)
    metadata = package["CustomerMetadataProperties"]
    assert metadata["data_version"] == DATA_VERSION
    assert metadata["data_manifest"] == where.data_manifest(training_job)
    assert metadata["retraining_execution"] == EXECUTION_ID
    assert (metadata["hp.C"], metadata["metric.auc"], metadata["training_rows"]) == ("1.0", "0.95", "1200")
    # The gate files sit beside the artifact, where the rollout's gates look.
    assert (
        where.gates(training_job) == where.model_archive(training_job).removesuffix("model.tar.gz") + "gates/"
    )


def test_without_auto_approval_a_passed_model_waits_for_a_person(pending_approval: Retraining) -> None:
    state = pending_approval.run("register", pending_approval.evaluated(report()))
    [package] = pending_approval.packages()
    assert (
        state["registration"]["approval_status"] == package["ModelApprovalStatus"] == "PendingManualApproval"
    )


def test_a_failed_gate_registers_nothing_and_says_why(retraining: Retraining) -> None:
    weak = report(metrics={**report().metrics, "auc": 0.6})
    state = retraining.evaluated(weak)
    with pytest.raises(GateFailed, match=re.escape("auc 0.6 is below the minimum 0.75")):
        retraining.run("register", state)
    assert retraining.packages() == []


def test_an_unreadable_or_inconsistent_evaluation_registers_nothing(retraining: Retraining) -> None:
    state = retraining.evaluated(report(), manifest_version="cd" * 32)
    with pytest.raises(
        ValueError, match=f"has data version '{'cd' * 32}', the evaluation report '{DATA_VERSION}'"
    ):
        retraining.run("register", state)
    training_job = state["jobs"]["train"]
    retraining.put(
        retraining.layout(state).evaluation_report(training_job), json.dumps({"model_version": "x"})
    )
    with pytest.raises(
        ValueError, match=re.escape("evaluation.json is not an evaluation report: recipe: Field required")
    ):
        retraining.run("register", state)
    assert retraining.packages() == []


def test_a_missing_evaluation_is_named(retraining: Retraining) -> None:
    state = retraining.start()
    for step in ("preprocess", "train", "evaluate"):
        state = retraining.run("check_job", retraining.run(step, state))
    with pytest.raises(Exception, match=r"evaluation.json is missing"):
        retraining.run("register", state)


def test_metadata_beyond_sagemakers_limits_registers_nothing(retraining: Retraining) -> None:
    state = retraining.evaluated(report(hyperparameters={"layers": "[64, 32]"}))
    with pytest.raises(InvalidMetadata, match=re.escape("metadata hp.layers")):
        retraining.run("register", state)
    assert retraining.packages() == []
