"""Cleaning up after a retraining execution that ended without running its own release.

A retraining stopped by hand (Step Functions status ABORTED) or timed out (TIMED_OUT) runs no further
state: its failure path never releases the family's lock and the SageMaker job it started keeps running.
A "Step Functions Execution Status Change" event for such an execution says which it was and carries the
execution's input; from them follow, as the workflow derives them, the run's id (`run_id_for` of the
execution's ARN, which is the state's ``execution_id``), its three job names (`job_name`) and the lock's
key. The function stops whichever of those jobs is still in progress, releases the lock if this execution
still holds it, and tells the notifications topic.

Pure domain code: pydantic and the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.retraining.jobs import job_name
from lambdas.retraining.settings import RetrainingSettings, load_retraining_settings
from lambdas.retraining.state import (
    InvalidRetrainingInput,
    JobStep,
    RetrainingInput,
    parse_input,
    run_id_for,
)
from lambdas.shared.settings import read_environment, validate_settings
from lambdas.shared.validation import describe_problems

__all__ = [
    "ENDED_STATUSES",
    "EXECUTION_EVENT",
    "EndedExecution",
    "EndedSettings",
    "InvalidEndedEvent",
    "JobOutcome",
    "changed_anything",
    "job_outcome",
    "load_ended_settings",
    "notification",
    "parse_ended_event",
]

EXECUTION_EVENT = "Step Functions Execution Status Change"
# The workflow's own ends (succeeded, failed, already retraining) release the lock in the state machine.
EndedStatus = Literal["ABORTED", "TIMED_OUT"]
ENDED_STATUSES: tuple[str, ...] = get_args(EndedStatus)
HOW = {"ABORTED": "stopped", "TIMED_OUT": "timed out"}
STEPS: tuple[JobStep, ...] = ("preprocess", "train", "evaluate")
SUBJECT_MAX = 100
# SageMaker's job statuses: still running, and on its way to Stopped.
IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
ARN_PATTERN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"


class InvalidEndedEvent(ValueError):
    """The event is not the end of one of this environment's retraining executions by hand or timeout."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndedSettings(_Strict):
    retraining: RetrainingSettings
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
    state_machine_arn: str = Field(pattern=ARN_PATTERN)


def load_ended_settings(environ: Mapping[str, str]) -> EndedSettings:
    """The retraining functions' environment plus TOPIC_ARN and STATE_MACHINE_ARN."""
    retraining = load_retraining_settings(environ)
    variables = {"topic_arn": "TOPIC_ARN", "state_machine_arn": "STATE_MACHINE_ARN"}
    raw = read_environment(environ, variables) | {"retraining": retraining}
    return validate_settings(EndedSettings, raw, variables)


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1, max_length=256)
    state_machine_arn: str = Field(alias="stateMachineArn", min_length=1)
    status: str
    input: str = Field(min_length=1, description="the execution's input as a JSON string")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: _Detail


@dataclass(frozen=True, slots=True)
class EndedExecution:
    execution_arn: str
    status: str
    request: RetrainingInput
    run_id: str
    jobs: tuple[tuple[JobStep, str], ...]
    """Every job the run may have started, by step, under the names the workflow gives them."""

    @property
    def how(self) -> str:
        return HOW[self.status]


def parse_ended_event(event: Any, *, state_machine_arn: str, name_prefix: str) -> EndedExecution:
    """The ended execution and its run's job names; InvalidEndedEvent naming what is wrong otherwise."""
    if not isinstance(event, Mapping):
        raise InvalidEndedEvent(
            f"an execution status change event must be a JSON object, got {type(event).__name__}"
        )
    try:
        parsed = _Event.model_validate(event)
    except ValidationError as error:
        raise InvalidEndedEvent(f"invalid {EXECUTION_EVENT!r} event: {describe_problems(error)}") from None
    detail = parsed.detail
    if detail.state_machine_arn != state_machine_arn:
        raise InvalidEndedEvent(
            f"the event is for state machine {detail.state_machine_arn}; this function cleans up after "
            f"{state_machine_arn} only"
        )
    executions = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    if not detail.execution_arn.startswith(executions):
        raise InvalidEndedEvent(f"execution {detail.execution_arn} is not one of {state_machine_arn}")
    if detail.status not in ENDED_STATUSES:
        raise InvalidEndedEvent(
            f"execution {detail.execution_arn} is {detail.status}: only {' or '.join(ENDED_STATUSES)} "
            "leaves a run to clean up (the workflow's own ends release the family themselves)"
        )
    try:
        given = json.loads(detail.input)
    except json.JSONDecodeError as error:
        raise InvalidEndedEvent(f"the execution's input is not JSON: {error}") from None
    if not isinstance(given, dict):
        raise InvalidEndedEvent(f"the execution's input must be a JSON object, got {type(given).__name__}")
    try:
        request = parse_input({**given, "execution_id": detail.execution_arn})
    except InvalidRetrainingInput as error:
        raise InvalidEndedEvent(f"execution {detail.execution_arn}: {error}") from None
    run_id = run_id_for(detail.execution_arn)
    return EndedExecution(
        execution_arn=detail.execution_arn,
        status=detail.status,
        request=request,
        run_id=run_id,
        jobs=tuple((step, job_name(name_prefix, request.model_family, step, run_id)) for step in STEPS),
    )


JobAction = Literal["stop", "never started", "stopping", "ended"]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    step: JobStep
    name: str
    action: JobAction
    status: str | None = None
    """SageMaker's status when the job was found."""

    def summary(self) -> dict[str, str]:
        said = {
            "stop": "stopped",
            "never started": "never started",
            "stopping": "was stopping already",
            "ended": f"had ended ({self.status})",
        }[self.action]
        return {"step": self.step, "job": self.name, "outcome": said}


def job_outcome(step: JobStep, name: str, description: Mapping[str, Any] | None) -> JobOutcome:
    """What to do with one of the run's jobs, from its Describe*Job answer (None: no such job)."""
    if description is None:
        return JobOutcome(step, name, "never started")
    key = "TrainingJobStatus" if step == "train" else "ProcessingJobStatus"
    status = str(description.get(key, ""))
    if status == IN_PROGRESS:
        return JobOutcome(step, name, "stop", status)
    if status == STOPPING:
        return JobOutcome(step, name, "stopping", status)
    return JobOutcome(step, name, "ended", status)


def changed_anything(outcomes: Sequence[JobOutcome], released: bool) -> bool:
    return released or any(outcome.action == "stop" for outcome in outcomes)


def notification(
    ended: EndedExecution, outcomes: Sequence[JobOutcome], *, released: bool, lock_key: str, prefix: str
) -> tuple[str, str]:
    """The subject and message: what ended and how, which jobs were stopped, whether the lock was freed."""
    family = ended.request.model_family
    message = {
        "event": f"retraining_{ended.status.lower()}",
        "execution_id": ended.execution_arn,
        "status": ended.status,
        "model_family": family,
        "run_id": ended.run_id,
        "trigger": ended.request.trigger.model_dump(mode="json"),
        "stopped_jobs": [outcome.name for outcome in outcomes if outcome.action == "stop"],
        "jobs": [outcome.summary() for outcome in outcomes],
        "lock": {
            "key": lock_key,
            "released": released,
            "note": "released: the family can retrain again"
            if released
            else "not held by this execution: left as it was",
        },
    }
    subject = f"{prefix}: retraining of {family} {ended.how}"[:SUBJECT_MAX]
    return subject, json.dumps(message, indent=2)
