"""The retraining workflow's input and state: the one object every task takes and returns.

The execution's input is ``{"model_family": ..., "trigger": {"kind": ..., "detail": {...}}}``; the state
machine adds ``execution_id``. The start task turns it into a ``RetrainingState``; each later task fills
in its part and returns the whole state. The Choice states read ``lock.taken``, ``job.status`` and
``registration.approval_status``; a Catch puts the failure in ``error`` beside the state.

Pure domain code: pydantic and the standard library only.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from lambdas.retraining.settings import FAMILY_PATTERN
from lambdas.shared.validation import describe_problems

__all__ = [
    "InvalidRetrainingInput",
    "JobRecord",
    "JobStep",
    "LockStatus",
    "Registration",
    "RetrainingInput",
    "RetrainingState",
    "Trigger",
    "parse_input",
    "run_id_for",
]

JobStep = Literal["preprocess", "train", "evaluate"]
JobStatus = Literal["InProgress", "Completed"]
TriggerKind = Literal["schedule", "new_data", "drift_alarm", "manual"]
# A run's id names its jobs and its S3 folder: short, and the same on every retry of the start task.
RUN_ID_HEX = 12


class InvalidRetrainingInput(ValueError):
    """The execution's input is not a retraining request."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Frozen):
    kind: TriggerKind
    detail: dict[str, JsonValue] = Field(default_factory=dict)


class RetrainingInput(_Frozen):
    model_family: str = Field(min_length=1, max_length=24, pattern=FAMILY_PATTERN)
    trigger: Trigger
    execution_id: str = Field(min_length=1, max_length=256)


class LockStatus(_Frozen):
    taken: bool
    key: str
    holder: str = Field(description="this execution when taken, else the run that holds the family")


class JobRecord(_Frozen):
    """The job of the step in progress, as the last check saw it; a failed job fails its check task."""

    step: JobStep
    name: str = Field(min_length=1, max_length=63)
    status: JobStatus = "InProgress"


class Registration(_Frozen):
    model_package_arn: str
    approval_status: Literal["Approved", "PendingManualApproval"]
    gate_reason: str


class RetrainingState(_Frozen):
    model_family: str
    trigger: Trigger
    execution_id: str
    run_id: str = Field(pattern=rf"^[0-9a-f]{{{RUN_ID_HEX}}}$")
    lock: LockStatus
    job: JobRecord | None = None
    jobs: dict[JobStep, str] = Field(default_factory=dict, description="step -> its job's name")
    model_data_url: str | None = Field(default=None, description="the training job's model.tar.gz")
    registration: Registration | None = None
    # What a Catch adds beside the state: {"Error": ..., "Cause": ...}; the failure path's release also
    # runs when the notification could not be published, with that error beside the first.
    error: dict[str, JsonValue] | None = None
    notify_error: dict[str, JsonValue] | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def run_id_for(execution_id: str) -> str:
    """The run's id: a digest of the execution's id, so a retried start names the same jobs."""
    return hashlib.sha256(execution_id.encode()).hexdigest()[:RUN_ID_HEX]


def parse_input(event: Any) -> RetrainingInput:
    """The execution's input (with its id), or InvalidRetrainingInput naming every problem."""
    try:
        return RetrainingInput.model_validate(event)
    except ValidationError as error:
        problems = describe_problems(error)
        raise InvalidRetrainingInput(f"invalid retraining request: {problems}") from None
