"""The endpoint locks on DynamoDB.

Table: partition key ``endpoint`` (S), no sort key. Attributes: ``holder`` (S, the rollout's execution
id), ``acquired_at`` (N, epoch seconds), ``expires_at`` (N, epoch seconds; also the table's TTL
attribute, so DynamoDB clears abandoned leases eventually; expiry itself is checked in every condition,
never left to TTL). Reads are strongly consistent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.locking.lock import Lease

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_FREE = "attribute_not_exists(endpoint) OR expires_at < :now"
_HELD_BY = "holder = :holder"


class DynamoDBLockTable:
    def __init__(self, *, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put_if_free(self, lease: Lease, *, now: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "endpoint": {"S": lease.endpoint},
                    "holder": {"S": lease.holder},
                    "acquired_at": {"N": str(lease.acquired_at)},
                    "expires_at": {"N": str(lease.expires_at)},
                },
                ConditionExpression=_FREE,
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def get(self, endpoint: str) -> Lease | None:
        found = self._client.get_item(
            TableName=self._table, Key={"endpoint": {"S": endpoint}}, ConsistentRead=True
        )
        item = found.get("Item")
        return None if item is None else _lease(item)

    def extend_if_held(self, endpoint: str, holder: str, *, expires_at: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                UpdateExpression="SET expires_at = :expires_at",
                ConditionExpression=_HELD_BY,
                ExpressionAttributeValues={":holder": {"S": holder}, ":expires_at": {"N": str(expires_at)}},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def delete_if_held(self, endpoint: str, holder: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint}},
                ConditionExpression=_HELD_BY,
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _lease(item: dict[str, AttributeValueTypeDef]) -> Lease:
    return Lease(
        endpoint=str(item["endpoint"].get("S", "")),
        holder=str(item["holder"].get("S", "")),
        acquired_at=int(item["acquired_at"].get("N", "0")),
        expires_at=int(item["expires_at"].get("N", "0")),
    )
