"""API Gateway HTTP API (payload 2.0) events in, JSON responses out, faults as statuses.

Every error body names the problem: ``{"error": "bad_request", "message": "...", "problems": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lambdas.serving.ports import (
    FeedbackRejected,
    InferenceNotFound,
    InvocationFailed,
    OutcomeAlreadyRecorded,
    ServingError,
    StoreUnavailable,
    UnknownEndpoint,
)
from lambdas.shared.validation import problem_location, problem_message

ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_PROBLEMS = 10
_SCALAR_TAGS = frozenset({"str", "int", "float", "bool", "none"})

_STATUS: Mapping[type[ServingError], int] = {
    UnknownEndpoint: 404,
    InferenceNotFound: 404,
    OutcomeAlreadyRecorded: 409,
    FeedbackRejected: 400,
    StoreUnavailable: 503,
}
_ERROR_NAMES: Mapping[int, str] = {
    400: "bad_request",
    404: "not_found",
    409: "conflict",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class BadRequest(ServingError):
    """The request itself is wrong: body not JSON, fields missing or of the wrong type."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class HttpEvent(BaseModel):
    """The parts of the payload-2.0 event the handlers read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    body: str | None = None
    isBase64Encoded: bool = False
    pathParameters: dict[str, str] | None = None


def parse_body(event: Mapping[str, Any], model: type[ModelT]) -> ModelT:
    """The JSON body validated into `model`; raises BadRequest naming each problem."""
    text = _body_text(HttpEvent.model_validate(event))
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(raw, dict):
        raise BadRequest(f"body must be a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = _problems(error)
        summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
        raise BadRequest(f"invalid request: {summary}", problems) from None


def path_parameter(event: Mapping[str, Any], name: str) -> str:
    value = (HttpEvent.model_validate(event).pathParameters or {}).get(name)
    if not value:
        raise BadRequest(f"missing path parameter {name!r}")
    return value


def json_response(status: int, body: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": text}


def status_of(error: ServingError) -> int:
    if isinstance(error, InvocationFailed):
        return error.status
    if isinstance(error, BadRequest):
        return 400
    return next((status for kind, status in _STATUS.items() if isinstance(error, kind)), 500)


def error_response(error: ServingError) -> dict[str, Any]:
    status = status_of(error)
    body: dict[str, Any] = {"error": _ERROR_NAMES.get(status, "internal_error"), "message": str(error)}
    if isinstance(error, BadRequest) and error.problems:
        body["problems"] = error.problems
    return json_response(status, body)


def _body_text(event: HttpEvent) -> str:
    if not event.body:
        raise BadRequest("the request needs a JSON body")
    if not event.isBase64Encoded:
        return event.body
    try:
        return base64.b64decode(event.body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("body is not base64-encoded UTF-8 text") from None


def _problems(error: ValidationError) -> list[dict[str, str]]:
    """One entry per field; a union's alternatives (pydantic reports each) become one "or" message."""
    by_field: dict[str, list[str]] = {}
    for problem in error.errors():
        location = tuple(part for part in problem["loc"] if not _is_union_member(part))
        message = problem_message(problem, unknown_field="unknown field")
        messages = by_field.setdefault(problem_location(location, top_level="body"), [])
        if message not in messages:
            messages.append(message)
    fields = list(by_field.items())[:MAX_PROBLEMS]
    return [{"field": field, "message": " or ".join(messages)} for field, messages in fields]


def _is_union_member(part: str | int) -> bool:
    # pydantic names the union member it tried in the location, e.g. "list[...]" or "str".
    return isinstance(part, str) and ("[" in part or part in _SCALAR_TAGS)
