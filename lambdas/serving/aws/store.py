"""The inference store on DynamoDB: pk `inference_id` (S), TTL attribute `expires_at` (epoch seconds).

DynamoDB deletes expired items lazily (within days), so expiry is also checked on every read.
An outcome is written once, under a condition, so retried feedback never counts twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.serving.ports import (
    InferenceNotFound,
    InferenceRecord,
    Outcome,
    OutcomeAlreadyRecorded,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, UniversalAttributeValueTypeDef

# Two quick tries: the store sits on the request path of both functions (see wiring's time budget).
# For the router's save this is the whole retry rule: after the second failure the record is dropped
# and counted (InferenceNotRecorded), the prediction still answered.
STORE_CONFIG = Config(
    retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=1
)
_RECORD_ONCE = "attribute_exists(inference_id) AND attribute_not_exists(outcome) AND expires_at > :now"


class DynamoDBInferenceStore:
    def __init__(self, *, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def save(self, record: InferenceRecord) -> None:
        item: dict[str, AttributeValueTypeDef] = {
            "inference_id": {"S": record.inference_id},
            "endpoint": {"S": record.endpoint},
            "endpoint_name": {"S": record.endpoint_name},
            "variant": {"S": record.variant},
            "records": {"N": str(record.records)},
            "created_at": {"N": str(record.created_at)},
            "expires_at": {"N": str(record.expires_at)},
            "caller": {"S": record.caller},
        }
        if record.predicted_labels is not None:
            item["predicted_labels"] = {"S": json.dumps(list(record.predicted_labels))}
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (BotoCoreError, ClientError) as error:
            raise StoreUnavailable(f"inference store: {error}") from error

    def load(self, inference_id: str, *, now: int) -> InferenceRecord:
        try:
            found = self._client.get_item(
                TableName=self._table, Key={"inference_id": {"S": inference_id}}, ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise StoreUnavailable(f"inference store: {error}") from error
        item = found.get("Item")
        if item is None:
            raise InferenceNotFound(
                f"no inference {inference_id} is recorded: an unknown id, one expired and deleted, or one "
                "whose record could not be saved when it was served (its prediction answered recorded: false)"
            )
        if int(_number(item, "expires_at")) <= now:
            raise InferenceNotFound(f"inference {inference_id} has expired; feedback is no longer accepted")
        return _record(item)

    def record_outcome(self, inference_id: str, outcome: Outcome, *, now: int) -> None:
        values: list[UniversalAttributeValueTypeDef] = [{"N": repr(value)} for value in outcome.values]
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"inference_id": {"S": inference_id}},
                UpdateExpression="SET outcome = :kind, outcome_values = :values, recorded_at = :now",
                ConditionExpression=_RECORD_ONCE,
                ExpressionAttributeValues={
                    ":kind": {"S": outcome.kind},
                    ":values": {"L": values},
                    ":now": {"N": str(now)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise StoreUnavailable(f"inference store: {error}") from error
            # Lost a race, or the record expired in between: say which.
            self.load(inference_id, now=now)
            raise OutcomeAlreadyRecorded(
                f"an outcome for inference {inference_id} was already recorded"
            ) from error
        except BotoCoreError as error:
            raise StoreUnavailable(f"inference store: {error}") from error


def _number(item: dict[str, AttributeValueTypeDef], name: str) -> str:
    return str(item[name].get("N", "0"))


def _string(item: dict[str, AttributeValueTypeDef], name: str) -> str:
    return str(item[name].get("S", ""))


def _record(item: dict[str, AttributeValueTypeDef]) -> InferenceRecord:
    labels = item.get("predicted_labels")
    return InferenceRecord(
        inference_id=_string(item, "inference_id"),
        endpoint=_string(item, "endpoint"),
        endpoint_name=_string(item, "endpoint_name"),
        variant=_string(item, "variant"),
        records=int(_number(item, "records")),
        predicted_labels=tuple(json.loads(labels["S"])) if labels is not None and "S" in labels else None,
        created_at=int(_number(item, "created_at")),
        expires_at=int(_number(item, "expires_at")),
        # Stored before inferences were bound to their caller: no principal matches it.
        caller=_string(item, "caller") if "caller" in item else "",
        outcome_recorded="outcome" in item,
    )
