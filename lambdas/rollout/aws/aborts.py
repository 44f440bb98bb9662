"""The abort's calls: per endpoint named by the trigger, stop the running rollout and start its rollback.

What each trigger names is ``lambdas.rollout.abort``; the handler is ``lambdas/handlers/rollout_abort.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.flags import FlagSet
from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock
from lambdas.rollout.abort import (
    ABORTED_ERROR,
    LEFT_LOCK_STATUS,
    AbortInput,
    AbortTarget,
    AlarmEvent,
    ExecutionEndedEvent,
    FlagsDeployedEvent,
    Trigger,
    abort_execution_name,
    lock_left_by_failed_execution,
    runs_on_endpoint,
    target_for_ended_execution,
    targets_for_alarm,
    targets_for_flags,
    targets_for_operator,
)
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.ledger import EntryKind, Ledger
from lambdas.rollout.settings import AbortSettings
from lambdas.shared.aws_clients import CLIENT_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["AbortServices", "RunsExecutions", "abort", "build_abort_services"]

logger = Logger()

CAUSE_MAX = 32768


class RunsExecutions(Protocol):
    """The Step Functions calls of the abort (boto3's `stepfunctions` client; its stubs are not installed)."""

    def describe_execution(self, *, executionArn: str) -> Any: ...
    def stop_execution(self, *, executionArn: str, error: str, cause: str) -> Any: ...
    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> Any: ...
    def list_executions(self, **request: Any) -> Any: ...


@dataclass(frozen=True)
class AbortServices:
    settings: AbortSettings
    lock: EndpointLock
    ledger: Ledger
    states: RunsExecutions
    flags: Callable[[], FlagSet]


def build_abort_services(
    settings: AbortSettings,
    *,
    read_flags: Callable[[], FlagSet],
    dynamodb: DynamoDBClient | None = None,
    states: RunsExecutions | None = None,
    clock: Callable[[], float] = time.time,
) -> AbortServices:
    """``read_flags`` reads the flags as deployed now (the handler passes the AppConfig reader)."""
    dynamodb = dynamodb or boto3.client("dynamodb", config=CLIENT_CONFIG)
    return AbortServices(
        settings=settings,
        lock=EndpointLock(DynamoDBLockTable(client=dynamodb, table_name=settings.lock_table), clock=clock),
        ledger=Ledger(DynamoDBLedgerStore(client=dynamodb, table_name=settings.ledger_table)),
        states=states or cast("RunsExecutions", boto3.client("stepfunctions", config=CLIENT_CONFIG)),
        flags=read_flags,
    )


def abort(trigger: Trigger, services: AbortServices) -> dict[str, list[dict[str, str]]]:
    if isinstance(trigger, ExecutionEndedEvent) and trigger.detail.status == LEFT_LOCK_STATUS:
        return {"released": _release_left_lock(trigger, services)}
    aborted: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for target in _targets(trigger, services):
        rollout_id, why_not = _abort_one(target, services)
        entry = {"endpoint": target.endpoint, "reason": target.reason}
        if rollout_id is not None:
            aborted.append(entry | {"rollout_id": rollout_id})
        else:
            skipped.append(entry | {"left_alone": why_not})
    return {"aborted": aborted, "skipped": skipped}


def _targets(trigger: Trigger, services: AbortServices) -> list[AbortTarget]:
    endpoints = services.settings.endpoints
    if isinstance(trigger, AlarmEvent):
        return targets_for_alarm(trigger, endpoints)
    if isinstance(trigger, FlagsDeployedEvent):
        return targets_for_flags(services.flags(), endpoints)
    if isinstance(trigger, ExecutionEndedEvent):
        return target_for_ended_execution(trigger, services.ledger.entries(trigger.detail.execution_arn))
    return targets_for_operator(trigger, endpoints)


def _release_left_lock(event: ExecutionEndedEvent, services: AbortServices) -> list[dict[str, str]]:
    """The lock of a rollout that recorded its outcome and failed to release it, released."""
    rollout_id = event.detail.execution_arn
    endpoint = lock_left_by_failed_execution(event, services.ledger.entries(rollout_id))
    if endpoint is None:
        return []
    endpoint_name = services.settings.endpoints[endpoint].endpoint_name
    if not services.lock.release(endpoint_name, rollout_id):
        return []
    logger.warning("lock left by a failed execution released", extra={"rollout_id": rollout_id})
    return [{"endpoint": endpoint, "rollout_id": rollout_id}]


def _abort_one(target: AbortTarget, services: AbortServices) -> tuple[str | None, str]:
    """The aborted rollout's id, or None and why it was left alone."""
    endpoint_name = services.settings.endpoints[target.endpoint].endpoint_name
    lease = services.lock.live_lease(endpoint_name)
    # No live lease: a rollout may still run whose lease expired (nothing renewed it); its execution
    # finds it.
    rollout_id = lease.holder if lease is not None else _running_rollout(target.endpoint, services)
    if rollout_id is None:
        return None, f"no rollout is running on {endpoint_name}"
    if target.rollout_id is not None and rollout_id != target.rollout_id:
        return None, f"{endpoint_name} is held by rollout {rollout_id}, not by {target.rollout_id}"
    entries = services.ledger.entries(rollout_id)
    if not entries:
        return None, f"rollout {rollout_id} has recorded nothing yet; it has deployed nothing"
    if any(entry.kind is EntryKind.OUTCOME for entry in entries):
        return None, f"rollout {rollout_id} has recorded its outcome and is ending"
    _stop(rollout_id, target.reason, services)
    request = AbortInput(rollout_id=rollout_id, endpoint=target.endpoint, reason=target.reason)
    try:
        services.states.start_execution(
            stateMachineArn=services.settings.state_machine_arn,
            name=abort_execution_name(rollout_id),
            input=json.dumps({"abort": request.model_dump(mode="json")}),
        )
    except ClientError as error:
        if _code(error) != "ExecutionAlreadyExists":
            raise
        return None, f"rollout {rollout_id} is being rolled back already"
    logger.warning("rollout aborted", extra={"rollout_id": rollout_id, "reason": target.reason})
    return rollout_id, ""


def _running_rollout(endpoint: str, services: AbortServices) -> str | None:
    """The running execution of the rollout state machine that is a rollout of `endpoint` without an
    outcome (an abort's own execution records under the rollout it rolls back, never its own id)."""
    request: dict[str, Any] = {
        "stateMachineArn": services.settings.state_machine_arn,
        "statusFilter": "RUNNING",
    }
    while True:
        listed = services.states.list_executions(**request)
        for execution in listed.get("executions", []):
            rollout_id = str(execution["executionArn"])
            if runs_on_endpoint(services.ledger.entries(rollout_id), endpoint):
                return rollout_id
        if not listed.get("nextToken"):
            return None
        request["nextToken"] = listed["nextToken"]


def _stop(rollout_id: str, reason: str, services: AbortServices) -> None:
    try:
        status = services.states.describe_execution(executionArn=rollout_id)["status"]
    except ClientError as error:
        if _code(error) != "ExecutionDoesNotExist":
            raise
        return
    if status == "RUNNING":
        services.states.stop_execution(executionArn=rollout_id, error=ABORTED_ERROR, cause=reason[:CAUSE_MAX])


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
