"""The rollout adapters against moto: the endpoint lock, the evidence ledger, SageMaker and the registry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.aws.lock_table import DynamoDBLockTable
from lambdas.rollout.ledger import (
    EntryKind,
    Ledger,
    LedgerConflict,
    LedgerEntry,
    gate_payload,
    summarize,
    traffic_payload,
)
from lambdas.rollout.lock import EndpointLock, EndpointLocked, NotLockHolder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENDPOINT = "mlrollout-dev-churn"
LOCK_TABLE = "mlrollout-dev-rollout-locks"
LEDGER_TABLE = "mlrollout-dev-rollout-ledger"
LEASE = 600


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBClient:
    return boto3.client("dynamodb", region_name="us-east-1")


# --- the endpoint lock ----------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lock(dynamodb: DynamoDBClient, clock: Clock) -> EndpointLock:
    dynamodb.create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return EndpointLock(
        DynamoDBLockTable(client=dynamodb, table_name=LOCK_TABLE), lease_seconds=LEASE, clock=clock
    )


def stored_lock(dynamodb: DynamoDBClient) -> dict[str, str]:
    item = dynamodb.get_item(TableName=LOCK_TABLE, Key={"endpoint": {"S": ENDPOINT}}, ConsistentRead=True)
    return {name: str(value.get("S", value.get("N"))) for name, value in item.get("Item", {}).items()}


def test_lock_is_stored_with_holder_and_expiry(
    lock: EndpointLock, dynamodb: DynamoDBClient, clock: Clock
) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    now = int(clock.now)
    assert stored_lock(dynamodb) == {
        "endpoint": ENDPOINT,
        "holder": "exec-1",
        "acquired_at": str(now),
        "expires_at": str(now + LEASE),
    }


def test_lock_refuses_a_second_rollout_naming_the_holder(lock: EndpointLock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    with pytest.raises(EndpointLocked, match="locked by rollout exec-1"):
        lock.acquire(ENDPOINT, "exec-2")


def test_lock_reacquired_by_its_holder_is_unchanged(
    lock: EndpointLock, dynamodb: DynamoDBClient, clock: Clock
) -> None:
    first = lock.acquire(ENDPOINT, "exec-1")
    before = stored_lock(dynamodb)
    clock.now += 60
    assert lock.acquire(ENDPOINT, "exec-1") == first
    assert stored_lock(dynamodb) == before


def test_lock_is_released_only_by_its_holder(lock: EndpointLock, dynamodb: DynamoDBClient) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    assert lock.release(ENDPOINT, "exec-2") is False
    assert stored_lock(dynamodb)["holder"] == "exec-1"
    assert lock.release(ENDPOINT, "exec-1") is True
    assert stored_lock(dynamodb) == {}
    assert lock.release(ENDPOINT, "exec-1") is False


def test_expired_lock_is_taken_over_and_the_old_holder_cannot_renew(lock: EndpointLock, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "crashed")
    clock.now += LEASE + 1
    assert lock.acquire(ENDPOINT, "exec-2").holder == "exec-2"
    with pytest.raises(NotLockHolder):
        lock.renew(ENDPOINT, "crashed")
    assert lock.release(ENDPOINT, "crashed") is False


def test_lock_renewal_pushes_the_expiry(lock: EndpointLock, dynamodb: DynamoDBClient, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    clock.now += 300
    renewed = lock.renew(ENDPOINT, "exec-1")
    assert renewed.expires_at == int(clock.now) + LEASE
    assert stored_lock(dynamodb)["expires_at"] == str(renewed.expires_at)


# --- the evidence ledger ----------------------------------------------------------------------------


@pytest.fixture
def ledger(dynamodb: DynamoDBClient) -> Ledger:
    dynamodb.create_table(
        TableName=LEDGER_TABLE,
        KeySchema=[
            {"AttributeName": "rollout_id", "KeyType": "HASH"},
            {"AttributeName": "sequence", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "rollout_id", "AttributeType": "S"},
            {"AttributeName": "sequence", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return Ledger(DynamoDBLedgerStore(client=dynamodb, table_name=LEDGER_TABLE))


def ledger_entry(
    sequence: int, kind: EntryKind, payload: Mapping[str, object], rollout_id: str = "exec-1"
) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "rollout_id": rollout_id,
            "sequence": sequence,
            "recorded_at": 1_700_000_000 + sequence,
            "kind": kind,
            "payload": payload,
        }
    )


def test_ledger_appends_and_reads_back_in_sequence_order(ledger: Ledger) -> None:
    written = [
        ledger_entry(10, EntryKind.TRAFFIC_STEP, traffic_payload(0, 5, 950, 50)),
        ledger_entry(2, EntryKind.GATE_RESULT, gate_payload("golden", "passed", {"cases": 12, "tol": 1e-6})),
        ledger_entry(0, EntryKind.DEPLOYMENT, {"action": "deploy_challenger", "endpoint_config": "cfg"}),
    ]
    assert all(ledger.append(entry) for entry in written)
    assert ledger.entries("exec-1") == sorted(written, key=lambda e: e.sequence)


def test_ledger_ignores_a_retried_entry_and_keeps_the_recorded_one(ledger: Ledger) -> None:
    first = ledger_entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed"))
    ledger.append(first)
    retry = first.model_copy(update={"recorded_at": first.recorded_at + 60})
    assert ledger.append(retry) is False
    with pytest.raises(LedgerConflict):
        ledger.append(ledger_entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "failed")))
    assert ledger.entries("exec-1") == [first]


def test_ledger_reads_every_page_of_a_long_rollout(ledger: Ledger) -> None:
    # 22 entries of 60 kB are more than DynamoDB returns in one 1 MB page.
    big = {"blob": "x" * 60_000}
    for sequence in range(22):
        ledger.append(ledger_entry(sequence, EntryKind.DEPLOYMENT, big))
    assert [e.sequence for e in ledger.entries("exec-1")] == list(range(22))


def test_ledger_summary_is_built_from_the_stored_entries(ledger: Ledger) -> None:
    ledger.append(ledger_entry(0, EntryKind.GATE_RESULT, gate_payload("metrics", "passed")))
    ledger.append(ledger_entry(1, EntryKind.TRAFFIC_STEP, traffic_payload(0, 25, 750, 250)))
    ledger.append(ledger_entry(2, EntryKind.OUTCOME, {"status": "promoted", "reason": ""}))
    summary = summarize(ledger.entries("exec-1"))
    assert summary["rollout.outcome"] == "promoted"
    assert summary["rollout.traffic"] == "25pct:750/250"
    assert summary["rollout.gates"] == "metrics=passed"
