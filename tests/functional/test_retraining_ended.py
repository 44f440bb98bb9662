"""The clean-up after a retraining stopped by hand or timed out, against moto: the run's job in progress
stopped (jobs as real local processes through `localcloud.sagemaker.jobs`, held so they are InProgress for
certain), the family's lock released only if the execution still holds it, the topic told; the same event
twice, and events that are not this workflow's, change nothing."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock
from lambdas.retraining.aws import ended as ended_run
from lambdas.retraining.ended import InvalidEndedEvent, load_ended_settings
from lambdas.retraining.jobs import job_name, preprocess_request, training_request
from lambdas.retraining.settings import UnknownFamily
from lambdas.retraining.state import run_id_for
from lambdas.shared.aws_clients import PublishesNotifications
from localcloud.sagemaker.job_processes import LocalJobs
from localcloud.sagemaker.jobs import run_jobs_locally
from tests.functional.rollout_support import LambdaContextStub
from tests.retraining_support import (
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    EXECUTION_ID,
    FAMILY,
    LOCK_TABLE,
    environment,
    settings,
    state,
)
from tests.unit.test_preprocess import drop_text

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:mlrollout-dev-retraining"
OTHER_EXECUTION = EXECUTION_ID.replace("run-1", "run-2")
LOCK_KEY = f"retraining#{FAMILY}"
RUN_ID = run_id_for(EXECUTION_ID)
PREPROCESS_JOB = job_name("mlrollout-dev", FAMILY, "preprocess", RUN_ID)
TRAINING_JOB = job_name("mlrollout-dev", FAMILY, "train", RUN_ID)
EVALUATION_JOB = job_name("mlrollout-dev", FAMILY, "evaluate", RUN_ID)
JOB_WAIT_SECONDS = 60.0


def ended_event(
    status: str = "ABORTED",
    execution_arn: str = EXECUTION_ID,
    state_machine_arn: str = STATE_MACHINE_ARN,
    execution_input: str | None = None,
) -> dict[str, Any]:
    """The event EventBridge delivers for an execution's status change (its documented shape)."""
    given = {"model_family": FAMILY, "trigger": {"kind": "new_data", "detail": {"key": f"{FAMILY}/a.csv"}}}
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-26T02:00:00Z",
        "region": "us-east-1",
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": state_machine_arn,
            "name": execution_arn.rsplit(":", 1)[-1],
            "status": status,
            "startDate": 1795000000000,
            "stopDate": 1795003600000,
            "input": json.dumps(given) if execution_input is None else execution_input,
            "output": None,
            "inputDetails": {"included": True},
            "outputDetails": None,
        },
    }


@dataclass
class Cloud:
    handler: ModuleType
    sagemaker: Any  # the sagemaker stubs are not installed
    dynamodb: Any
    sqs: Any
    queue_url: str
    lock: EndpointLock
    jobs: LocalJobs

    def run(self, event: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.handler.handler(event, LambdaContextStub())
        return result

    def lock_holder(self) -> str | None:
        item = self.dynamodb.get_item(TableName=LOCK_TABLE, Key={"endpoint": {"S": LOCK_KEY}})
        return item["Item"]["holder"]["S"] if "Item" in item else None

    def messages(self) -> list[dict[str, Any]]:
        """What the topic delivered since the last call (subject and parsed message)."""
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in received:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        envelopes = [json.loads(message["Body"]) for message in received]
        return [{"subject": e["Subject"], "message": json.loads(e["Message"])} for e in envelopes]

    def start_preprocessing(self) -> None:
        self.sagemaker.create_processing_job(**preprocess_request(state(), settings()))

    def start_training(self) -> None:
        self.sagemaker.create_training_job(**training_request(state(), settings()))

    def processing_status(self, name: str = PREPROCESS_JOB) -> str:
        return str(self.sagemaker.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"])


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with mock_aws(), run_jobs_locally() as jobs, pytest.MonkeyPatch.context() as patch:
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
        s3.put_object(Bucket=DATA_BUCKET, Key=f"{FAMILY}/2026-11-25/part-0.csv", Body=drop_text(50, seed=1))
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic_arn = sns.create_topic(Name="mlrollout-dev-notifications")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="on-call")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        env = environment(
            TOPIC_ARN=topic_arn,
            STATE_MACHINE_ARN=STATE_MACHINE_ARN,
            POWERTOOLS_SERVICE_NAME="retraining-ended",
            POWERTOOLS_METRICS_NAMESPACE="mlrollout",
        )
        for name, value in env.items():
            patch.setenv(name, value)
        # Re-imported under this environment: Powertools reads its namespace when a module loads.
        handler = importlib.reload(importlib.import_module("lambdas.handlers.retraining_ended"))
        sagemaker = boto3.client("sagemaker")
        ended_run.use(
            ended_run.build_ended_services(
                load_ended_settings(env),
                sagemaker=sagemaker,
                dynamodb=dynamodb,
                sns=cast(PublishesNotifications, sns),
            )
        )
        lock = EndpointLock(DynamoDBLockTable(client=dynamodb, table_name=LOCK_TABLE))
        try:
            yield Cloud(handler, sagemaker, dynamodb, sqs, queue_url, lock, jobs)
        finally:
            ended_run.use(None)


def test_a_stopped_retraining_has_its_running_job_stopped_its_lock_released_and_on_call_told(
    cloud: Cloud,
) -> None:
    cloud.lock.acquire(LOCK_KEY, EXECUTION_ID)
    with cloud.jobs.hold():
        cloud.start_preprocessing()
        assert cloud.processing_status() == "InProgress"
        result = cloud.run(ended_event("ABORTED"))
        assert cloud.jobs.wait(PREPROCESS_JOB, timeout=JOB_WAIT_SECONDS) == "Stopped"
    assert result["stopped_jobs"] == [PREPROCESS_JOB]
    assert result["lock_released"] is True and result["notified"] is True
    assert cloud.lock_holder() is None
    [notice] = cloud.messages()
    assert notice["subject"] == f"mlrollout-dev: retraining of {FAMILY} stopped"
    message = notice["message"]
    assert message["event"] == "retraining_aborted"
    assert (message["execution_id"], message["status"], message["run_id"]) == (
        EXECUTION_ID,
        "ABORTED",
        RUN_ID,
    )
    assert message["stopped_jobs"] == [PREPROCESS_JOB]
    assert message["jobs"] == [
        {"step": "preprocess", "job": PREPROCESS_JOB, "outcome": "stopped"},
        {"step": "train", "job": TRAINING_JOB, "outcome": "never started"},
        {"step": "evaluate", "job": EVALUATION_JOB, "outcome": "never started"},
    ]
    assert message["lock"]["key"] == LOCK_KEY and message["lock"]["released"] is True
    assert message["trigger"] == {"kind": "new_data", "detail": {"key": f"{FAMILY}/a.csv"}}


def test_a_timed_out_retraining_has_its_training_job_stopped(cloud: Cloud) -> None:
    cloud.lock.acquire(LOCK_KEY, EXECUTION_ID)
    with cloud.jobs.hold():
        cloud.start_training()
        result = cloud.run(ended_event("TIMED_OUT"))
        assert cloud.jobs.wait(TRAINING_JOB, timeout=JOB_WAIT_SECONDS) == "Stopped"
    assert result["stopped_jobs"] == [TRAINING_JOB]
    assert cloud.lock_holder() is None
    [notice] = cloud.messages()
    assert notice["subject"] == f"mlrollout-dev: retraining of {FAMILY} timed out"
    assert notice["message"]["event"] == "retraining_timed_out"


def test_another_runs_lock_is_never_released(cloud: Cloud) -> None:
    # The ended run lost its lease (expired and taken): its job is still stopped, the lock left as it is.
    cloud.lock.acquire(LOCK_KEY, OTHER_EXECUTION)
    with cloud.jobs.hold():
        cloud.start_preprocessing()
        result = cloud.run(ended_event())
        assert cloud.jobs.wait(PREPROCESS_JOB, timeout=JOB_WAIT_SECONDS) == "Stopped"
    assert result["lock_released"] is False
    assert cloud.lock_holder() == OTHER_EXECUTION
    [notice] = cloud.messages()
    assert notice["message"]["lock"]["released"] is False
    assert notice["message"]["stopped_jobs"] == [PREPROCESS_JOB]


def test_the_same_event_twice_changes_nothing_the_second_time(cloud: Cloud) -> None:
    cloud.lock.acquire(LOCK_KEY, EXECUTION_ID)
    with cloud.jobs.hold():
        cloud.start_preprocessing()
        cloud.run(ended_event())
        assert cloud.jobs.wait(PREPROCESS_JOB, timeout=JOB_WAIT_SECONDS) == "Stopped"
    assert len(cloud.messages()) == 1
    # The next run took the family meanwhile: the repeated event must not free it.
    cloud.lock.acquire(LOCK_KEY, OTHER_EXECUTION)
    again = cloud.run(ended_event())
    assert again["stopped_jobs"] == [] and again["lock_released"] is False and again["notified"] is False
    assert again["jobs"][0] == {"step": "preprocess", "job": PREPROCESS_JOB, "outcome": "had ended (Stopped)"}
    assert cloud.lock_holder() == OTHER_EXECUTION
    assert cloud.messages() == []


def test_jobs_that_completed_are_left_alone_and_the_lock_still_released(cloud: Cloud) -> None:
    cloud.lock.acquire(LOCK_KEY, EXECUTION_ID)
    cloud.start_preprocessing()
    assert cloud.jobs.wait(PREPROCESS_JOB, timeout=JOB_WAIT_SECONDS) == "Completed"
    result = cloud.run(ended_event())
    assert result["stopped_jobs"] == [] and result["lock_released"] is True
    assert result["jobs"][0]["outcome"] == "had ended (Completed)"
    assert cloud.lock_holder() is None
    [notice] = cloud.messages()
    assert notice["message"]["stopped_jobs"] == []


@pytest.mark.parametrize(
    ("event", "error", "match"),
    [
        (
            ended_event(state_machine_arn=STATE_MACHINE_ARN.replace("retraining", "rollout")),
            InvalidEndedEvent,
            "is for state machine .*mlrollout-dev-rollout; this function cleans up after .*retraining only",
        ),
        (
            ended_event(
                execution_arn=EXECUTION_ID.replace("mlrollout-dev-retraining", "mlrollout-dev-rollout")
            ),
            InvalidEndedEvent,
            "is not one of",
        ),
        (ended_event("SUCCEEDED"), InvalidEndedEvent, "is SUCCEEDED: only ABORTED or TIMED_OUT"),
        (ended_event(execution_input="{not json"), InvalidEndedEvent, "input is not JSON"),
        (ended_event(execution_input="[1]"), InvalidEndedEvent, "must be a JSON object, got list"),
        (
            ended_event(execution_input=json.dumps({"model_family": FAMILY})),
            InvalidEndedEvent,
            "invalid retraining request: trigger: Field required",
        ),
        (
            ended_event(execution_input=json.dumps({"model_family": "fraud", "trigger": {"kind": "manual"}})),
            UnknownFamily,
            "unknown model family 'fraud'",
        ),
        (
            {"detail-type": "Step Functions Execution Status Change"},
            InvalidEndedEvent,
            "source: .*; detail: ",
        ),
        ("ABORTED", InvalidEndedEvent, "must be a JSON object, got str"),
    ],
)
def test_an_event_that_is_not_this_workflows_end_is_refused_and_changes_nothing(
    cloud: Cloud, event: Any, error: type[Exception], match: str
) -> None:
    cloud.lock.acquire(LOCK_KEY, EXECUTION_ID)
    with cloud.jobs.hold():
        cloud.start_preprocessing()
        with pytest.raises(error, match=match):
            cloud.run(event)
        assert cloud.processing_status() == "InProgress"
    assert cloud.lock_holder() == EXECUTION_ID
    assert cloud.messages() == []
