"""The evidence ledger on DynamoDB.

Table: partition key ``rollout_id`` (S), sort key ``sequence`` (N). Attributes: ``recorded_at``
(N, epoch seconds), ``kind`` (S: gate_result, judge_verdict, traffic_step, deployment, outcome),
``payload`` (S, JSON). Writes are conditional on the key being free, so an entry is never overwritten;
no TTL: the ledger is the audit trail.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.rollout.ledger import EntryKind, LedgerEntry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

_KEY_IS_FREE = "attribute_not_exists(rollout_id)"


def item_of(entry: LedgerEntry) -> dict[str, AttributeValueTypeDef]:
    """The entry as the table's item."""
    return {
        "rollout_id": {"S": entry.rollout_id},
        "sequence": {"N": str(entry.sequence)},
        "recorded_at": {"N": str(entry.recorded_at)},
        "kind": {"S": entry.kind.value},
        "payload": {"S": json.dumps(entry.payload, sort_keys=True)},
    }


class DynamoDBLedgerStore:
    def __init__(self, *, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    @property
    def table_name(self) -> str:
        return self._table

    def put_if_absent(self, entry: LedgerEntry) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item_of(entry),
                ConditionExpression=_KEY_IS_FREE,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, rollout_id: str, sequence: int) -> LedgerEntry | None:
        found = self._client.get_item(
            TableName=self._table,
            Key={"rollout_id": {"S": rollout_id}, "sequence": {"N": str(sequence)}},
            ConsistentRead=True,
        )
        item = found.get("Item")
        return None if item is None else _entry(item)

    def entries(self, rollout_id: str) -> list[LedgerEntry]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "rollout_id = :rollout_id",
            "ExpressionAttributeValues": {":rollout_id": {"S": rollout_id}},
            "ConsistentRead": True,
        }
        entries: list[LedgerEntry] = []
        while True:
            page = self._client.query(**query)
            entries.extend(_entry(item) for item in page.get("Items", []))
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return entries
            query["ExclusiveStartKey"] = last_key


def _entry(item: dict[str, AttributeValueTypeDef]) -> LedgerEntry:
    return LedgerEntry(
        rollout_id=str(item["rollout_id"].get("S", "")),
        sequence=int(item["sequence"].get("N", "0")),
        recorded_at=int(item["recorded_at"].get("N", "0")),
        kind=EntryKind(item["kind"].get("S", "")),
        payload=json.loads(item["payload"].get("S", "{}")),
    )
