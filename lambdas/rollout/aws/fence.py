"""The rollout's fencing token: the generation of its lock, checked in every ledger write.

An abort stops a rollout's execution and rolls it back on a new one, under the same rollout id and
lock. A task of the stopped execution may still be running then (Step Functions does not stop a Lambda
invocation); it holds the same rollout id, so holding the lock proves nothing. The resumed rollback
therefore takes the lock over (`take_over`): the lock item's ``generation`` goes up by one and the
rollback carries the new value in its state. Every ledger entry is written in one transaction with a
check that the lock is still held by the rollout at the writer's generation (`FencedLedgerStore`), so a
stopped execution's late task writes nothing and fails with `Fenced`; the task's lease renewal checks
the generation too (`check`).

A lock taken by the start has no ``generation`` attribute: that is generation 0. The attribute is the
rollout's own (`lambdas/locking` knows nothing of it); the lock's other attributes are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.locking.lock import NotLockHolder
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore, item_of
from lambdas.rollout.ledger import LedgerEntry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

__all__ = ["Fence", "Fenced", "FencedLedgerStore", "LockGenerations"]

FIRST_GENERATION = 0


class Fenced(NotLockHolder):
    """The writer's generation is no longer the lock's: a newer execution of the rollout has taken over."""


@dataclass(frozen=True, slots=True)
class Fence:
    endpoint_name: str
    holder: str
    generation: int


def _condition(fence: Fence) -> tuple[str, dict[str, Any]]:
    values: dict[str, Any] = {":holder": {"S": fence.holder}}
    if fence.generation == FIRST_GENERATION:
        return "holder = :holder AND attribute_not_exists(generation)", values
    values[":generation"] = {"N": str(fence.generation)}
    return "holder = :holder AND generation = :generation", values


class LockGenerations:
    """The generation attribute of the lock table's items."""

    def __init__(self, *, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def take_over(self, endpoint_name: str, holder: str, *, expires_at: int) -> int:
        """The next generation of `holder`'s lock, its lease renewed; NotLockHolder if another holds it."""
        try:
            updated = self._client.update_item(
                TableName=self.table_name,
                Key={"endpoint": {"S": endpoint_name}},
                UpdateExpression="SET generation = if_not_exists(generation, :zero) + :one, "
                "expires_at = :expires_at",
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":zero": {"N": str(FIRST_GENERATION)},
                    ":one": {"N": "1"},
                    ":expires_at": {"N": str(expires_at)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise NotLockHolder(
                    f"rollout {holder} does not hold endpoint {endpoint_name}: nothing to take over"
                ) from None
            raise
        return int(updated["Attributes"]["generation"].get("N", "0"))

    def check(self, fence: Fence) -> None:
        """Fenced unless the lock is held by the fence's holder at its generation."""
        found = self._client.get_item(
            TableName=self.table_name, Key={"endpoint": {"S": fence.endpoint_name}}, ConsistentRead=True
        )
        item = found.get("Item") or {}
        holder = item.get("holder", {}).get("S")
        generation = int(item.get("generation", {}).get("N", str(FIRST_GENERATION)))
        if holder != fence.holder or generation != fence.generation:
            raise Fenced(
                f"rollout {fence.holder} at generation {fence.generation} no longer holds endpoint "
                f"{fence.endpoint_name} (held by {holder or 'no one'} at generation {generation}): "
                "a newer execution of it has taken over"
            )


class FencedLedgerStore:
    """The ledger store whose writes also check the writer's fence, in one transaction."""

    def __init__(self, store: DynamoDBLedgerStore, locks: LockGenerations, fence: Fence) -> None:
        self._store = store
        self._locks = locks
        self._fence = fence

    def put_if_absent(self, entry: LedgerEntry) -> bool:
        condition, values = _condition(self._fence)
        items: list[TransactWriteItemTypeDef] = [
            {
                "ConditionCheck": {
                    "TableName": self._locks.table_name,
                    "Key": {"endpoint": {"S": self._fence.endpoint_name}},
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Put": {
                    "TableName": self._store.table_name,
                    "Item": item_of(entry),
                    "ConditionExpression": "attribute_not_exists(rollout_id)",
                }
            },
        ]
        try:
            self._store.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                self._locks.check(self._fence)  # names who holds it now
                raise Fenced(f"rollout {self._fence.holder}: the lock's generation moved on") from None
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def get(self, rollout_id: str, sequence: int) -> LedgerEntry | None:
        return self._store.get(rollout_id, sequence)

    def entries(self, rollout_id: str) -> list[LedgerEntry]:
        return self._store.entries(rollout_id)
