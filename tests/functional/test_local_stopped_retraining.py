"""A retraining stopped by hand, on the local cloud: the stack's own rule on the execution's ABORTED
status runs the clean-up function, which stops the run's job in progress and frees the family.

The whole `dev` stack deployed by `LocalCloud`; the data drop's S3 event starts the retraining through the
stack's new-data rule; its preprocessing job is held in progress (`LocalJobs.hold`); StopExecution puts
the "Execution Status Change" event (`localcloud.stepfunctions.execution_events`), delivered to the function
(`localcloud.events.delivery`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from localcloud.cloud import LocalCloud
from localcloud.cloudformation.template import load_stacks
from localcloud.events.delivery import deliver_events
from localcloud.sagemaker.job_processes import LocalJobs
from localcloud.sagemaker.jobs import run_jobs_locally
from tests.infra.conftest import shared_outdir
from tests.unit.test_preprocess import drop_text

STACK = "MlRollout-dev"
FAMILY = "churn-classifier"
DEADLINE_SECONDS = 60.0


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_outdir(tmp_path_factory)


def until(what: str, found: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {DEADLINE_SECONDS} s")


def test_a_stopped_retraining_stops_its_job_and_frees_the_family(cdk_out: Path) -> None:
    assert "RetrainingStateMachine" in "".join(load_stacks(cdk_out)[STACK].resources)  # dev retrains
    with LocalCloud(
        cdk_out,
        STACK,
        require_appconfig=False,
        gap_fillers={
            "events": lambda _cloud: deliver_events(),
            "jobs": lambda _cloud: run_jobs_locally(),
        },
    ) as cloud:
        jobs: LocalJobs = cloud.gap_filler("jobs")
        deliveries = cloud.gap_filler("events")
        states, sagemaker = boto3.client("stepfunctions"), boto3.client("sagemaker")
        machine = cloud.stack.retraining_state_machine_arn
        [data_bucket] = [name for key, name in cloud.stack.bucket_names.items() if "TrainingData" in key]
        [lock_table] = [name for key, name in cloud.stack.table_names.items() if "Lock" in key]
        with jobs.hold():
            boto3.client("s3").put_object(
                Bucket=data_bucket, Key=f"{FAMILY}/2026-11-25/part-0000.csv", Body=drop_text(200, 3).encode()
            )
            [execution] = until(
                "retraining", lambda: states.list_executions(stateMachineArn=machine)["executions"]
            )
            arn = execution["executionArn"]
            [job] = until(
                "preprocessing job", lambda: sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
            )
            assert job["ProcessingJobStatus"] == "InProgress"
            lock = boto3.client("dynamodb").get_item(
                TableName=lock_table, Key={"endpoint": {"S": f"retraining#{FAMILY}"}}, ConsistentRead=True
            )
            assert lock["Item"]["holder"]["S"] == arn
            states.stop_execution(executionArn=arn, error="Manual", cause="the data was wrong")
            assert jobs.wait(job["ProcessingJobName"], timeout=DEADLINE_SECONDS) == "Stopped"
        until("clean-up", lambda: [d for d in deliveries.wait() if "RetrainingEndedExecution" in d.rule])
        [cleanup] = [d for d in deliveries.wait() if "RetrainingEndedExecution" in d.rule]
        assert cleanup.error is None, cleanup.result
        assert json.dumps(cleanup.payload).count(arn) >= 1
        freed = boto3.client("dynamodb").get_item(
            TableName=lock_table, Key={"endpoint": {"S": f"retraining#{FAMILY}"}}, ConsistentRead=True
        )
        assert "Item" not in freed
        assert states.describe_execution(executionArn=arn)["status"] == "ABORTED"
