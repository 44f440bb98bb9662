"""Aborting a running rollout: which endpoints a trigger names, and the rollout to roll back.

Three triggers abort the rollout running on an endpoint, whatever step it is at:

* its composite alarm (``<prefix>-<endpoint>-unhealthy``), or one of its guardrail alarms outside the
  stack (``rollout.guardrails.alarms``: a database, a downstream API), going to ALARM (a CloudWatch
  "Alarm State Change" event);
* its kill switch deployed ON (an AppConfig deployment event: the event carries no flag values, so the
  flags are read, and every endpoint whose switch is on is aborted);
* a person: ``{"endpoint": "churn", "reason": "..."}``;
* the rollout's execution ending without an outcome: timed out, or stopped from the console or the API
  (a "Step Functions Execution Status Change" event). Its lock is still held and its challenger may
  still take traffic: the same rollback cleans up.

An abort stops the rollout's execution (a Wait of minutes would otherwise delay it) and starts the
rollout state machine again on its rollback path for the same rollout: the rollback keeps Step
Functions' retries while the endpoint is busy, holds the rollout's lock, and records into its ledger.
That execution rebuilds the rollout's state from the ledger (`resume`): the start entry records the
state the rollout began with, and the next free sequence follows the last entry.

Pure domain code: pydantic and the standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.flags import FlagSet, Name
from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.settings import RolloutEndpoint
from lambdas.rollout.state import RolloutState, TaskError
from lambdas.shared.validation import describe_problems

__all__ = [
    "ABORTED_ERROR",
    "STOPPED_TASK_WINDOW_SECONDS",
    "AbortInput",
    "AbortTarget",
    "InvalidAbortTrigger",
    "OperatorAbort",
    "RolloutNotResumable",
    "abort_execution_name",
    "lock_left_by_failed_execution",
    "parse_trigger",
    "resume",
    "runs_on_endpoint",
    "target_for_ended_execution",
    "targets_for_alarm",
    "targets_for_flags",
    "targets_for_operator",
]

ABORTED_ERROR = "RolloutAborted"
STOPPED_TASK_WINDOW_SECONDS = 300
"""How long a task of a stopped execution may still run: the longest timeout of a rollout task's
function (the gates', 5 minutes; `tests/infra/test_rollout_workflow.py` holds every function to it)."""
ALARM_EVENT = "CloudWatch Alarm State Change"
APPCONFIG_SOURCE = "aws.appconfig"
# Step Functions execution names: at most 80 characters of letters, digits, - and _.
_NAME_DIGEST_LENGTH = 40
REASON_MAX = 1024


class InvalidAbortTrigger(ValueError):
    """The event is none of the abort triggers, or names no endpoint of this environment."""


class RolloutNotResumable(ValueError):
    """The ledger has no start entry to rebuild the aborted rollout from."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorAbort(_Frozen):
    endpoint: Name
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class _AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    value: str
    reason: str = ""


class _AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: _AlarmState


class AlarmEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: _AlarmDetail


class FlagsDeployedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    source: Literal["aws.appconfig"]


class AbortInput(_Frozen):
    """The input of the execution that rolls an aborted rollout back: ``{"abort": {...}}``."""

    rollout_id: str = Field(min_length=1, max_length=256)
    endpoint: Name
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class _ExecutionDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1)
    status: str


class ExecutionEndedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: _ExecutionDetail


@dataclass(frozen=True, slots=True)
class AbortTarget:
    endpoint: str
    """The logical endpoint name (an ENDPOINTS key)."""
    reason: str
    rollout_id: str | None = None
    """Only this rollout, if it still holds the endpoint (else whichever rollout holds it)."""


Trigger = OperatorAbort | AlarmEvent | FlagsDeployedEvent | ExecutionEndedEvent
EXECUTION_EVENT = "Step Functions Execution Status Change"
# A rollout's own ends (promoted, rolled back, refused) are SUCCEEDED or FAILED and release the lock.
ENDED_WITHOUT_OUTCOME = frozenset({"TIMED_OUT", "ABORTED"})
# A rollout that recorded its outcome but whose release failed ends FAILED with its lock held.
LEFT_LOCK_STATUS = "FAILED"


def parse_trigger(event: Any) -> Trigger:
    """The event as one of the three triggers; InvalidAbortTrigger naming what is wrong otherwise."""
    if not isinstance(event, Mapping):
        raise InvalidAbortTrigger(f"an abort trigger must be a JSON object, got {type(event).__name__}")
    model: type[Trigger]
    if event.get("detail-type") == ALARM_EVENT:
        model, what = AlarmEvent, "alarm state change event"
    elif event.get("detail-type") == EXECUTION_EVENT:
        model, what = ExecutionEndedEvent, "execution status change event"
    elif event.get("source") == APPCONFIG_SOURCE:
        model, what = FlagsDeployedEvent, "AppConfig deployment event"
    elif "detail-type" in event:
        raise InvalidAbortTrigger(
            f"unexpected event {event.get('detail-type')!r} from {event.get('source')!r}: an abort follows "
            f"an {ALARM_EVENT!r} event, an AppConfig deployment event, or a person's request"
        )
    else:
        model, what = OperatorAbort, 'abort request {"endpoint": ..., "reason": ...}'
    try:
        return model.model_validate(event)
    except ValidationError as error:
        raise InvalidAbortTrigger(f"invalid {what}: {describe_problems(error)}") from None


def targets_for_operator(
    request: OperatorAbort, endpoints: Mapping[str, RolloutEndpoint]
) -> list[AbortTarget]:
    if request.endpoint not in endpoints:
        raise InvalidAbortTrigger(
            f"unknown endpoint {request.endpoint!r}; this environment has {sorted(endpoints)}"
        )
    return [AbortTarget(request.endpoint, f"aborted: {request.reason}")]


def targets_for_alarm(event: AlarmEvent, endpoints: Mapping[str, RolloutEndpoint]) -> list[AbortTarget]:
    """The endpoints whose abort alarm or one of whose guardrail alarms (outside the stack) went to
    ALARM; nothing for another state."""
    detail = event.detail
    if detail.state.value != "ALARM":
        return []
    targets = []
    for name, endpoint in endpoints.items():
        if endpoint.abort_alarm_name == detail.alarm_name:
            what = "alarm"
        elif detail.alarm_name in endpoint.rollout.guardrails.alarm_names:
            what = "guardrail alarm"
        else:
            continue
        reason = f"{what} {detail.alarm_name} in ALARM: {detail.state.reason}".rstrip(": ")
        targets.append(AbortTarget(name, reason[:REASON_MAX]))
    if not targets:
        known = sorted(
            {e.abort_alarm_name for e in endpoints.values() if e.abort_alarm_name}
            | {alarm for e in endpoints.values() for alarm in e.rollout.guardrails.alarm_names}
        )
        raise InvalidAbortTrigger(
            f"alarm {detail.alarm_name!r} aborts no endpoint here (abort and guardrail alarms: {known})"
        )
    return targets


def targets_for_flags(flags: FlagSet, endpoints: Mapping[str, RolloutEndpoint]) -> list[AbortTarget]:
    """Every endpoint whose kill switch is on."""
    targets = []
    for name in endpoints:
        switch = flags.for_endpoint(name).kill_switch
        if switch.on:
            why = f": {switch.reason}" if switch.reason else ""
            targets.append(AbortTarget(name, f"kill switch on{why}"))
    return targets


def target_for_ended_execution(
    event: ExecutionEndedEvent, entries: Sequence[LedgerEntry]
) -> list[AbortTarget]:
    """The rollout whose execution timed out or was stopped before recording an outcome."""
    detail = event.detail
    if detail.status not in ENDED_WITHOUT_OUTCOME or not _started(entries):
        # Not a rollout that began (a refused start, or an abort's own execution): nothing to clean up.
        return []
    if any(entry.kind is EntryKind.OUTCOME for entry in entries):
        return []
    started = RolloutState.model_validate(entries[0].payload["state"])
    reason = f"the rollout's execution ended {detail.status} before an outcome"
    return [AbortTarget(started.endpoint, reason, rollout_id=detail.execution_arn)]


def lock_left_by_failed_execution(event: ExecutionEndedEvent, entries: Sequence[LedgerEntry]) -> str | None:
    """The endpoint (logical name) whose lock a rollout left held when its execution FAILED after
    recording its outcome: its release task failed past its retries ("…, lock not released"). A
    rollout without an outcome keeps its lock: its endpoint may need a person first."""
    if event.detail.status != LEFT_LOCK_STATUS or not _started(entries):
        return None
    if not any(entry.kind is EntryKind.OUTCOME for entry in entries):
        return None
    return RolloutState.model_validate(entries[0].payload["state"]).endpoint


def runs_on_endpoint(entries: Sequence[LedgerEntry], endpoint: str) -> bool:
    """Whether a running execution's ledger is a rollout of `endpoint` that began and has no outcome:
    the rollout to abort when its lease has expired (nothing renewed it, and no one took the lock)."""
    if not _started(entries) or any(entry.kind is EntryKind.OUTCOME for entry in entries):
        return False
    return RolloutState.model_validate(entries[0].payload["state"]).endpoint == endpoint


def _started(entries: Sequence[LedgerEntry]) -> bool:
    return bool(entries) and entries[0].kind is EntryKind.DEPLOYMENT and "state" in entries[0].payload


def abort_execution_name(rollout_id: str) -> str:
    """One abort execution per rollout: a trigger delivered twice finds it already started."""
    digest = hashlib.sha256(rollout_id.encode()).hexdigest()[:_NAME_DIGEST_LENGTH]
    return f"abort-{digest}"


def resume(entries: Sequence[LedgerEntry], abort: AbortInput) -> RolloutState:
    """The aborted rollout's state, ready for the rollback: as it started (the champion to restore
    included), with the abort as its error and the ledger's next free sequence."""
    if not _started(entries):
        raise RolloutNotResumable(
            f"rollout {abort.rollout_id} has no recorded start in the ledger: nothing of it was deployed "
            "by the workflow, so there is nothing to roll back"
        )
    started = RolloutState.model_validate(entries[0].payload["state"])
    if started.rollout_id != abort.rollout_id or started.endpoint != abort.endpoint:
        raise RolloutNotResumable(
            f"the ledger's start of {abort.rollout_id} is rollout {started.rollout_id} of endpoint "
            f"{started.endpoint}, not of {abort.endpoint}"
        )
    return started.model_copy(
        update={
            "sequence": max(entry.sequence for entry in entries) + 1,
            "error": TaskError.model_validate({"Error": ABORTED_ERROR, "Cause": abort.reason}),
        }
    )
