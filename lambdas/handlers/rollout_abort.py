"""Abort the rollout running on an endpoint: stop its execution, roll it back on a new one.

Targets of EventBridge rules (an endpoint's composite alarm to ALARM, an AppConfig deployment of the
flags, a rollout execution timed out or stopped) and of a person (``aws lambda invoke`` with
``{"endpoint": ..., "reason": ...}``); `lambdas.rollout.abort` says which endpoints each names.

Per endpoint: the live lease names the running rollout; if it has recorded an outcome it is ending on
its own and is left alone. Otherwise its execution is stopped (if still running) and the state machine
is started on its rollback path for the same rollout, under a name derived from the rollout: the same
trigger delivered twice, or two triggers for one rollout, start one rollback. A task of the stopped
execution that was already running may still finish its one call; every task that changes the endpoint
renews the lock first, and the rollback restores the champion after whatever it did.

The result lists what was aborted and what was left alone, with why.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.flags import EndpointVariants, FlagSet
from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock
from lambdas.rollout.abort import (
    ABORTED_ERROR,
    AbortInput,
    AbortTarget,
    AlarmEvent,
    ExecutionEndedEvent,
    FlagsDeployedEvent,
    Trigger,
    abort_execution_name,
    parse_trigger,
    target_for_ended_execution,
    targets_for_alarm,
    targets_for_flags,
    targets_for_operator,
)
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.ledger import EntryKind, Ledger
from lambdas.rollout.settings import AbortSettings, load_abort_settings
from lambdas.serving.aws.flags import MIN_POLL_INTERVAL_SECONDS, AppConfigFlagSource
from lambdas.shared.aws_clients import CLIENT_CONFIG, throttling_as_retryable
from lambdas.shared.container import ContainerServices

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger()
tracer = Tracer()
metrics = Metrics()

CAUSE_MAX = 32768


class RunsExecutions(Protocol):
    """The Step Functions calls of the abort (boto3's `stepfunctions` client; its stubs are not installed)."""

    def describe_execution(self, *, executionArn: str) -> Any: ...
    def stop_execution(self, *, executionArn: str, error: str, cause: str) -> Any: ...
    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> Any: ...


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
    dynamodb: DynamoDBClient | None = None,
    states: RunsExecutions | None = None,
    appconfigdata: AppConfigDataClient | None = None,
    clock: Callable[[], float] = time.time,
) -> AbortServices:
    dynamodb = dynamodb or boto3.client("dynamodb", config=CLIENT_CONFIG)
    catalog = tuple(
        EndpointVariants(endpoint=name, champion=endpoint.champion, challenger=endpoint.challenger)
        for name, endpoint in settings.endpoints.items()
    )

    flags_client = appconfigdata or boto3.client("appconfigdata", config=CLIENT_CONFIG)

    def read_flags() -> FlagSet:
        # A new session per abort: the flags as deployed now, never a cached copy.
        return AppConfigFlagSource(
            application=settings.appconfig_application,
            environment=settings.appconfig_environment,
            profile=settings.appconfig_profile,
            ttl_seconds=MIN_POLL_INTERVAL_SECONDS,
            catalog=catalog,
            client=flags_client,
        ).flags()

    return AbortServices(
        settings=settings,
        lock=EndpointLock(DynamoDBLockTable(client=dynamodb, table_name=settings.lock_table), clock=clock),
        ledger=Ledger(DynamoDBLedgerStore(client=dynamodb, table_name=settings.ledger_table)),
        states=states or cast("RunsExecutions", boto3.client("stepfunctions", config=CLIENT_CONFIG)),
        flags=read_flags,
    )


_container = ContainerServices(lambda: build_abort_services(load_abort_settings(os.environ)))
use = _container.use
services = _container.get


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    trigger = parse_trigger(event)
    with throttling_as_retryable():
        result = abort(trigger, services())
    if result["aborted"]:
        metrics.add_metric(name="RolloutAborted", unit=MetricUnit.Count, value=len(result["aborted"]))
    logger.info("abort handled", extra=result)
    return result


def abort(trigger: Trigger, services: AbortServices) -> dict[str, list[dict[str, str]]]:
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


def _abort_one(target: AbortTarget, services: AbortServices) -> tuple[str | None, str]:
    """The aborted rollout's id, or None and why it was left alone."""
    endpoint_name = services.settings.endpoints[target.endpoint].endpoint_name
    lease = services.lock.live_lease(endpoint_name)
    if lease is None:
        return None, f"no rollout is running on {endpoint_name}"
    rollout_id = lease.holder
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
