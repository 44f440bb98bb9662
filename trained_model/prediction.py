"""A request body to a feature matrix, and a loaded model's answer to it: the endpoint's request path,
which the evaluation step also takes to compute what the endpoint will answer to the golden cases."""

from __future__ import annotations

import json

import numpy as np

from trained_model.directory import LoadedModel
from trained_model.features import FeatureSchema, Matrix

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"


class RequestError(Exception):
    """A request the server refuses: an HTTP status, a stable code and a message for the client."""

    def __init__(self, status: int, code: str, message: str, **detail: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def parse_records(body: bytes, content_type: str, charset: str, schema: FeatureSchema) -> Matrix:
    """The request body as a feature matrix, or a RequestError / FeatureError saying why not."""
    if content_type not in (JSON_TYPE, CSV_TYPE):
        raise RequestError(
            415, "unsupported_media_type", f"use {JSON_TYPE} or {CSV_TYPE}, not {content_type!r}"
        )
    if not body.strip():
        raise RequestError(400, "empty_body", "the request body is empty")
    try:
        text = body.decode(charset)
    except (UnicodeDecodeError, LookupError) as error:
        raise RequestError(400, "bad_encoding", f"body is not valid {charset}: {error}") from error
    if content_type == CSV_TYPE:
        return schema.matrix_from_csv(text)
    return schema.matrix_from_records(_json_records(text))


def _json_records(text: str) -> list[object]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            400,
            "malformed_json",
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except RecursionError:
        # The C parser counts its depth against the interpreter's limit and stops cleanly.
        raise RequestError(400, "malformed_json", "body is not valid JSON: nested too deeply") from None
    except ValueError:
        # Integers of more digits than Python converts (sys.get_int_max_str_digits()).
        raise RequestError(400, "malformed_json", "body is not valid JSON: a number is too long") from None
    if isinstance(document, dict):
        if "instances" not in document:
            return [document]
        instances = document["instances"]
        if not isinstance(instances, list):
            raise RequestError(400, "bad_request", "'instances' must be an array of records")
        return instances
    if isinstance(document, list):
        # An array of arrays/objects is a batch; an array of anything else is one record in order.
        is_batch = bool(document) and all(isinstance(item, list | dict) for item in document)
        return document if is_batch else [document]
    raise RequestError(400, "bad_request", "send an object, or an array of records")


def predict(loaded: LoadedModel, features: Matrix) -> dict[str, object]:
    probabilities = np.asarray(loaded.model.predict_proba(features), dtype=np.float64)
    classes = np.asarray(loaded.model.classes_)
    return {
        "model_version": loaded.version,
        "classes": classes.tolist(),
        "predictions": classes[np.argmax(probabilities, axis=1)].tolist(),
        "probabilities": probabilities.tolist(),
    }
