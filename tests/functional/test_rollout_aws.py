"""The rollout adapters against moto: the endpoint lock, the evidence ledger, SageMaker and the registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from lambdas.rollout.aws.lock_table import DynamoDBLockTable
from lambdas.rollout.lock import EndpointLock, EndpointLocked, NotLockHolder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENDPOINT = "mlrollout-dev-churn"
LOCK_TABLE = "mlrollout-dev-rollout-locks"
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
