"""A person's requests to a running rollout, kept on the endpoint's lease in the lock table: only the
rollout holding the endpoint gets them, and they go with the lock.

Attributes of the lease item, each a JSON document: ``promotion``, ``pause``, ``resume`` (a person's
requests), ``held`` (the hold the judge task keeps, for the command to show and check) and ``approval``
(a human gate's task token and step, for `mlrollout approve`/`reject`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from lambdas.rollout.overrides import PersonPause, PersonPromotion, PersonRequests, PersonResume

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["ATTRIBUTE", "PromotionRequests"]

RequestT = TypeVar("RequestT", bound=BaseModel)

ATTRIBUTE = "promotion"
PAUSE = "pause"
RESUME = "resume"
HELD = "held"
APPROVAL = "approval"


class PromotionRequests:
    """The person's requests on a lease, and the hold and gate the workflow keeps there."""

    def __init__(self, *, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def request(self, endpoint_name: str, holder: str, promotion: PersonPromotion) -> bool:
        """Leave the request on `holder`'s live lease; False if that rollout no longer holds the endpoint."""
        return self._set(endpoint_name, holder, ATTRIBUTE, promotion, now=promotion.requested_at)

    def pause(self, endpoint_name: str, holder: str, pause: PersonPause) -> bool:
        return self._set(endpoint_name, holder, PAUSE, pause, now=pause.requested_at)

    def resume(self, endpoint_name: str, holder: str, resume: PersonResume) -> bool:
        return self._set(endpoint_name, holder, RESUME, resume, now=resume.requested_at)

    def pending(self, endpoint_name: str, holder: str) -> PersonPromotion | None:
        return self.requests(endpoint_name, holder).promotion

    def requests(self, endpoint_name: str, holder: str) -> PersonRequests:
        item = self._item(endpoint_name, holder)
        return PersonRequests(
            promotion=_parsed(item, ATTRIBUTE, PersonPromotion),
            pause=_parsed(item, PAUSE, PersonPause),
            resume=_parsed(item, RESUME, PersonResume),
        )

    def attribute(self, endpoint_name: str, holder: str, name: str) -> dict[str, Any] | None:
        """A JSON attribute of `holder`'s lease (``held``, ``approval``), None if absent."""
        text = self._item(endpoint_name, holder).get(name, {}).get("S")
        return dict(json.loads(text)) if text else None

    def keep(self, endpoint_name: str, holder: str, name: str, value: dict[str, Any] | None) -> None:
        """Set (or, for None, remove) one of the workflow's own attributes on `holder`'s lease; a resume
        is consumed with the hold it releases. Nothing changes when `holder` no longer has the lease."""
        if value is None:
            update: dict[str, Any] = {
                "UpdateExpression": f"REMOVE #name{', #pause, #resume' if name == HELD else ''}"
            }
            names = {"#name": name} | ({"#pause": PAUSE, "#resume": RESUME} if name == HELD else {})
            values: dict[str, Any] = {":holder": {"S": holder}}
        else:
            update = {"UpdateExpression": "SET #name = :value"}
            names = {"#name": name}
            values = {":holder": {"S": holder}, ":value": {"S": json.dumps(value, sort_keys=True)}}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint_name}},
                ConditionExpression="holder = :holder",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **update,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _set(self, endpoint_name: str, holder: str, name: str, request: BaseModel, *, now: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"endpoint": {"S": endpoint_name}},
                UpdateExpression="SET #request = :request",
                ConditionExpression="holder = :holder AND expires_at >= :now",
                ExpressionAttributeNames={"#request": name},
                ExpressionAttributeValues={
                    ":request": {"S": request.model_dump_json()},
                    ":holder": {"S": holder},
                    ":now": {"N": str(now)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _item(self, endpoint_name: str, holder: str) -> dict[str, Any]:
        found = self._client.get_item(
            TableName=self._table, Key={"endpoint": {"S": endpoint_name}}, ConsistentRead=True
        )
        item = dict(found.get("Item") or {})
        return item if item.get("holder", {}).get("S") == holder else {}


def _parsed(item: dict[str, Any], name: str, model: type[RequestT]) -> RequestT | None:
    text = item.get(name, {}).get("S")
    return model.model_validate_json(str(text)) if text else None
