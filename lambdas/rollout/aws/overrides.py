"""A person's promotion request, kept on the endpoint's lease in the lock table (attribute
``promotion``, a JSON document): only the rollout holding the endpoint gets it, and it goes with the lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.rollout.overrides import PersonPromotion

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["PromotionRequests"]

ATTRIBUTE = "promotion"


class PromotionRequests:
    def __init__(self, *, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def request(self, endpoint_name: str, holder: str, promotion: PersonPromotion) -> bool:
        """Leave the request on `holder`'s live lease; False if that rollout no longer holds the endpoint."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint_name}},
                UpdateExpression="SET #promotion = :promotion",
                ConditionExpression="holder = :holder AND expires_at >= :now",
                ExpressionAttributeNames={"#promotion": ATTRIBUTE},
                ExpressionAttributeValues={
                    ":promotion": {"S": promotion.model_dump_json()},
                    ":holder": {"S": holder},
                    ":now": {"N": str(promotion.requested_at)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def pending(self, endpoint_name: str, holder: str) -> PersonPromotion | None:
        found = self._client.get_item(
            TableName=self._table, Key={"endpoint": {"S": endpoint_name}}, ConsistentRead=True
        )
        item = found.get("Item") or {}
        if item.get("holder", {}).get("S") != holder or ATTRIBUTE not in item:
            return None
        return PersonPromotion.model_validate_json(str(item[ATTRIBUTE].get("S")))
