"""API Gateway HTTP API (payload 2.0) events in, JSON responses out, faults as statuses.

Every error body names the problem: ``{"error": "bad_request", "message": "...", "problems": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.serving.ports import (
    FeedbackRejected,
    Forbidden,
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
# Far above the largest valid request (1000 records of a few features); API Gateway's own limit is 10 MB.
MAX_BODY_BYTES = 1024 * 1024
_SCALAR_TAGS = frozenset({"str", "int", "float", "bool", "none"})

_STATUS: Mapping[type[ServingError], int] = {
    UnknownEndpoint: 404,
    Forbidden: 403,
    InferenceNotFound: 404,
    OutcomeAlreadyRecorded: 409,
    FeedbackRejected: 400,
    StoreUnavailable: 503,
}
_ERROR_NAMES: Mapping[int, str] = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class BadRequest(ServingError):
    """The request itself is wrong: body not JSON, fields missing or of the wrong type."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class PayloadTooLarge(BadRequest):
    """The body is above MAX_BODY_BYTES."""


class UnsupportedMediaType(BadRequest):
    """The body is declared as something other than UTF-8 JSON."""


class HttpEvent(BaseModel):
    """The parts of the payload-2.0 event the handlers read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    body: str | None = None
    isBase64Encoded: bool = False
    headers: dict[str, str] | None = None
    pathParameters: dict[str, str] | None = None


def parse_body(event: Mapping[str, Any], model: type[ModelT]) -> ModelT:
    """The JSON body validated into `model`; raises BadRequest naming each problem.

    Only UTF-8 JSON objects are read (no Content-Type is taken as JSON); NaN and Infinity, which
    Python's parser would accept, are refused like any other token that is not JSON.
    """
    http_event = HttpEvent.model_validate(event)
    _check_content_type(http_event.headers or {})
    raw = _parse_json(_body_text(http_event))
    if not isinstance(raw, dict):
        raise BadRequest(f"body must be a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = _problems(error)
        summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
        raise BadRequest(f"invalid request: {summary}", problems) from None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        # The C parser counts its depth against the interpreter's limit and stops cleanly.
        raise BadRequest("body is not valid JSON: nested too deeply") from None
    except ValueError as error:
        # Integers of more digits than Python converts (sys.get_int_max_str_digits()).
        raise BadRequest(f"body is not valid JSON: a number is too long ({_first_line(error)})") from None


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"body is not valid JSON: {name} is not a JSON number")


def _first_line(error: Exception) -> str:
    return str(error).split(":", 1)[0]


def _check_content_type(headers: Mapping[str, str]) -> None:
    declared = next((value for key, value in headers.items() if key.lower() == "content-type"), None)
    if declared is None:
        return
    media_type, _, parameters = declared.partition(";")
    if media_type.strip().lower() != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("the body must be UTF-8 (charset=utf-8 or none)")


class IamCaller(BaseModel):
    """`requestContext.authorizer.iam`, filled by the HTTP API's IAM authorization on every call."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    accountId: str = Field(min_length=1, max_length=64)
    userId: str = Field(min_length=1, max_length=256)

    @property
    def principal(self) -> str:
        """The account and the role's or user's unique id: stable across a role's sessions."""
        return f"{self.accountId}:{self.userId.split(':', 1)[0]}"


def caller_principal(event: Mapping[str, Any]) -> str:
    """The signing principal; raises Forbidden when the event carries no IAM identity."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    identity = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    try:
        return IamCaller.model_validate(identity).principal
    except ValidationError:
        raise Forbidden(
            "the request carries no IAM caller identity; the API takes SigV4-signed calls only"
        ) from None


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
    if isinstance(error, PayloadTooLarge):
        return 413
    if isinstance(error, UnsupportedMediaType):
        return 415
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
    if not event.body or not event.body.strip():
        raise BadRequest("the request needs a JSON body")
    # A base64 body is a third longer than its bytes; either way the text bounds what is parsed.
    if len(event.body) > (MAX_BODY_BYTES * 4 // 3 + 4 if event.isBase64Encoded else MAX_BODY_BYTES):
        raise PayloadTooLarge(f"the body is above the limit of {MAX_BODY_BYTES} bytes")
    if not event.isBase64Encoded:
        return event.body
    try:
        text = base64.b64decode(event.body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("body is not base64-encoded UTF-8 text") from None
    if not text.strip():
        raise BadRequest("the request needs a JSON body")
    return text


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
