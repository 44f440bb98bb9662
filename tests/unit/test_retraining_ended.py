"""The clean-up's domain: an ended execution's run and job names as the workflow derives them, what to do
with each job from SageMaker's status, the notification, and the settings' problems named."""

from __future__ import annotations

import json

import pytest

from lambdas.retraining.ended import (
    EndedExecution,
    JobOutcome,
    changed_anything,
    job_outcome,
    load_ended_settings,
    notification,
    parse_ended_event,
)
from lambdas.retraining.jobs import job_name
from lambdas.retraining.settings import SettingsError
from lambdas.retraining.state import run_id_for
from tests.retraining_support import EXECUTION_ID, FAMILY, environment

STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:mlrollout-dev-retraining"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:mlrollout-dev-notifications"


def _ended(status: str = "ABORTED") -> EndedExecution:
    event = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": EXECUTION_ID,
            "stateMachineArn": STATE_MACHINE_ARN,
            "status": status,
            "input": json.dumps({"model_family": FAMILY, "trigger": {"kind": "schedule", "detail": {}}}),
        },
    }
    return parse_ended_event(event, state_machine_arn=STATE_MACHINE_ARN, name_prefix="mlrollout-dev")


def test_the_run_and_its_job_names_are_the_workflows_for_that_execution() -> None:
    ended = _ended()
    # The start task's state: execution_id is $$.Execution.Id, the execution's ARN.
    assert ended.run_id == run_id_for(EXECUTION_ID)
    assert ended.jobs == (
        ("preprocess", job_name("mlrollout-dev", FAMILY, "preprocess", ended.run_id)),
        ("train", job_name("mlrollout-dev", FAMILY, "train", ended.run_id)),
        ("evaluate", job_name("mlrollout-dev", FAMILY, "evaluate", ended.run_id)),
    )
    assert ended.request.model_family == FAMILY and ended.request.execution_id == EXECUTION_ID
    assert (ended.how, _ended("TIMED_OUT").how) == ("stopped", "timed out")


@pytest.mark.parametrize(
    ("step", "description", "action"),
    [
        ("preprocess", None, "never started"),
        ("preprocess", {"ProcessingJobStatus": "InProgress"}, "stop"),
        ("train", {"TrainingJobStatus": "InProgress"}, "stop"),
        ("train", {"TrainingJobStatus": "Stopping"}, "stopping"),
        ("evaluate", {"ProcessingJobStatus": "Completed"}, "ended"),
        ("train", {"TrainingJobStatus": "Stopped"}, "ended"),
        ("train", {"TrainingJobStatus": "Failed"}, "ended"),
        # A training job's status is TrainingJobStatus: a processing key on it is no sign it runs.
        ("train", {"ProcessingJobStatus": "InProgress", "TrainingJobStatus": "Completed"}, "ended"),
    ],
)
def test_only_a_job_in_progress_is_stopped(
    step: str, description: dict[str, str] | None, action: str
) -> None:
    assert job_outcome(step, "j", description).action == action  # type: ignore[arg-type]


def test_a_notification_is_due_only_when_something_was_stopped_or_released() -> None:
    ended_job = JobOutcome("preprocess", "p", "ended", "Stopped")
    stopped = JobOutcome("train", "t", "stop", "InProgress")
    assert not changed_anything([ended_job, JobOutcome("train", "t", "never started")], released=False)
    assert changed_anything([ended_job], released=True)
    assert changed_anything([ended_job, stopped], released=False)


def test_the_notification_says_what_ended_how_and_what_was_stopped_and_released() -> None:
    ended = _ended("TIMED_OUT")
    outcomes = [
        JobOutcome("preprocess", "p", "ended", "Completed"),
        JobOutcome("train", "t", "stop", "InProgress"),
        JobOutcome("evaluate", "e", "never started"),
    ]
    subject, body = notification(
        ended, outcomes, released=True, lock_key="retraining#x", prefix="mlrollout-dev"
    )
    assert subject == f"mlrollout-dev: retraining of {FAMILY} timed out"
    message = json.loads(body)
    assert message["event"] == "retraining_timed_out"
    assert message["stopped_jobs"] == ["t"]
    assert [job["outcome"] for job in message["jobs"]] == [
        "had ended (Completed)",
        "stopped",
        "never started",
    ]
    assert message["lock"]["released"] is True and message["lock"]["key"] == "retraining#x"
    assert message["trigger"] == {"kind": "schedule", "detail": {}}


def test_settings_need_the_topic_and_the_state_machine() -> None:
    settings = load_ended_settings(environment(TOPIC_ARN=TOPIC_ARN, STATE_MACHINE_ARN=STATE_MACHINE_ARN))
    assert (settings.topic_arn, settings.state_machine_arn) == (TOPIC_ARN, STATE_MACHINE_ARN)
    with pytest.raises(SettingsError, match="TOPIC_ARN: Field required; STATE_MACHINE_ARN: Field required"):
        load_ended_settings(environment())
    with pytest.raises(SettingsError, match="STATE_MACHINE_ARN: String should match pattern"):
        load_ended_settings(environment(TOPIC_ARN=TOPIC_ARN, STATE_MACHINE_ARN="mlrollout-dev-retraining"))
