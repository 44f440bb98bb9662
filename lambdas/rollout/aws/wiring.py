"""The rollout tasks' services, built from the settings on a function's first call (never at import).

Every boto3 client is created here unless a test injects one; the running function keeps its services
for later invocations of the same container.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.exceptions import ClientError

from lambdas.gates.aws.candidate import InvokesEndpoints
from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock
from lambdas.rollout.aws.endpoint_ops import IN_PROGRESS_STATUSES, SageMakerControl
from lambdas.rollout.aws.fence import Fence, FencedLedgerStore, LockGenerations
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.aws.metrics_reader import CloudWatchWindowReader
from lambdas.rollout.aws.overrides import PromotionRequests
from lambdas.rollout.aws.reports import RolloutReports, WritesObjects
from lambdas.rollout.ledger import EntryKind, Ledger, LedgerEntry
from lambdas.rollout.settings import RolloutEndpoint, RolloutSettings, load_rollout_settings
from lambdas.rollout.state import EndpointBusy, RolloutState
from lambdas.shared.aws_clients import (
    CLIENT_CONFIG,
    PublishesNotifications,
    PutsEvents,
    ReadsObjects,
    throttling_as_retryable,
)
from lambdas.shared.container import ContainerServices

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from pydantic import JsonValue

# SageMaker's answer to an update of an endpoint that is already updating.
_BUSY_MESSAGE = re.compile(r"in-progress|being updated|status Updating", re.IGNORECASE)


@dataclass(frozen=True)
class RolloutServices:
    settings: RolloutSettings
    sagemaker: SageMakerControl
    lock: EndpointLock
    ledger: Ledger
    windows: CloudWatchWindowReader
    sns: PublishesNotifications
    s3: ReadsObjects
    runtime: InvokesEndpoints | None = None
    """SageMaker Runtime, for the golden inputs the gates send to the deployed candidate."""
    clock: Callable[[], float] = time.time
    generations: LockGenerations | None = None
    """The lock's generations: when set, every ledger write and lease renewal is fenced by them."""
    ledger_store: DynamoDBLedgerStore | None = None
    alarms: CloudWatchClient | None = None
    """Reads the guardrail alarms' states (CloudWatch); needed where an endpoint has guardrail alarms."""
    events: PutsEvents | None = None
    """EventBridge, for the promote's offer to the next environment (settings.release_to)."""
    promotions: PromotionRequests | None = None
    """A person's promotion requests (`mlrollout promote`): when set, the judge task reads them."""
    reports: RolloutReports | None = None
    """Where the promote and rollback tasks write a rollout's report (settings.report_bucket)."""

    def guardrail_alarms(self) -> CloudWatchClient:
        if self.alarms is None:
            raise RuntimeError(
                "the rollout's services read no alarms, and this endpoint has guardrail alarms"
            )
        return self.alarms

    def now(self) -> int:
        return int(self.clock())

    def endpoint(self, state: RolloutState) -> RolloutEndpoint:
        return self.settings.endpoints[state.endpoint]

    def record(self, state: RolloutState, kind: EntryKind, payload: dict[str, JsonValue]) -> RolloutState:
        """Append one entry at the state's next sequence; the returned state points past it."""
        entry = LedgerEntry(
            rollout_id=state.rollout_id,
            sequence=state.sequence,
            recorded_at=self.now(),
            kind=kind,
            payload=payload,
        )
        ledger = self.ledger
        if self.generations is not None and self.ledger_store is not None:
            ledger = Ledger(FencedLedgerStore(self.ledger_store, self.generations, self.fence(state)))
        ledger.append(entry)
        return state.model_copy(update={"sequence": state.sequence + 1})

    def fence(self, state: RolloutState) -> Fence:
        return Fence(state.request.endpoint_name, state.rollout_id, state.generation)

    def hold_lock(self, state: RolloutState) -> None:
        """Renew the lease; NotLockHolder when this rollout no longer owns the endpoint, Fenced when a
        newer execution of it (the rollback of an abort) has taken it over."""
        self.lock.renew(state.request.endpoint_name, state.rollout_id, lease_seconds=state.lease_seconds)
        if self.generations is not None:
            self.generations.check(self.fence(state))

    def require_idle(self, endpoint_name: str) -> None:
        """EndpointBusy while an update runs: the state machine retries later."""
        status = str(self.sagemaker.describe_endpoint(EndpointName=endpoint_name).get("EndpointStatus", ""))
        if status in IN_PROGRESS_STATUSES:
            raise EndpointBusy(f"endpoint {endpoint_name} is {status}; try again when it is in service")


@contextmanager
def busy_as_retryable(endpoint_name: str) -> Iterator[None]:
    """Turn SageMaker's "endpoint is being updated" refusal into EndpointBusy."""
    try:
        yield
    except ClientError as error:
        detail = error.response.get("Error", {})
        message = str(detail.get("Message"))
        if detail.get("Code") == "ValidationException" and _BUSY_MESSAGE.search(message):
            raise EndpointBusy(f"endpoint {endpoint_name} is being updated: {message}") from error
        raise


def build_services(
    settings: RolloutSettings,
    *,
    sagemaker: SageMakerControl | None = None,
    dynamodb: DynamoDBClient | None = None,
    cloudwatch: CloudWatchClient | None = None,
    sns: PublishesNotifications | None = None,
    s3: ReadsObjects | None = None,
    runtime: InvokesEndpoints | None = None,
    events: PutsEvents | None = None,
    clock: Callable[[], float] = time.time,
) -> RolloutServices:
    dynamodb = dynamodb or boto3.client("dynamodb", config=CLIENT_CONFIG)
    cloudwatch = cloudwatch or boto3.client("cloudwatch", config=CLIENT_CONFIG)
    ledger_store = DynamoDBLedgerStore(client=dynamodb, table_name=settings.ledger_table)
    s3 = s3 or cast("ReadsObjects", boto3.client("s3", config=CLIENT_CONFIG))
    reports = None
    if settings.report_bucket is not None:
        # The same client: boto3's s3 client both reads and writes objects.
        reports = RolloutReports(cast("WritesObjects", s3), settings.report_bucket, settings.region)
    return RolloutServices(
        settings=settings,
        # The sagemaker stubs are not installed; the client has every call of the protocol.
        sagemaker=sagemaker or cast("SageMakerControl", boto3.client("sagemaker", config=CLIENT_CONFIG)),
        lock=EndpointLock(DynamoDBLockTable(client=dynamodb, table_name=settings.lock_table), clock=clock),
        ledger=Ledger(ledger_store),
        windows=CloudWatchWindowReader(client=cloudwatch),
        sns=sns or cast("PublishesNotifications", boto3.client("sns", config=CLIENT_CONFIG)),
        s3=s3,
        runtime=runtime or cast("InvokesEndpoints", boto3.client("sagemaker-runtime", config=CLIENT_CONFIG)),
        clock=clock,
        generations=LockGenerations(client=dynamodb, table_name=settings.lock_table),
        ledger_store=ledger_store,
        alarms=cloudwatch,
        events=events or cast("PutsEvents", boto3.client("events", config=CLIENT_CONFIG)),
        promotions=PromotionRequests(client=dynamodb, table_name=settings.lock_table),
        reports=reports,
    )


_container = ContainerServices(lambda: build_services(load_rollout_settings(os.environ)))
use = _container.use
services = _container.get


def run_task(event: Any, task: Callable[[RolloutState, RolloutServices], RolloutState]) -> dict[str, Any]:
    """Parse the state, run one task, return the new state as the state machine's JSON."""
    state = RolloutState.model_validate(event)
    with throttling_as_retryable():
        return task(state, services()).dump()
