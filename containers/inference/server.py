"""The inference server: SageMaker's container contract over a scikit-learn model directory.

``GET /ping`` answers 200 once the model is loaded and 503 before; ``POST /invocations`` takes JSON
or CSV records and returns predictions and class probabilities as JSON. The records go through
``trained_model.prediction`` and ``trained_model.features`` (the same conversion as in training), then
through the fitted pipeline.

Input (``Content-Type``):
- ``application/json``: ``{"instances": [record, ...]}``; a single record object ``{"name": value}``;
  a bare array of records ``[record, ...]``; or a single record as a bare array of numbers. A record
  is an object keyed by feature name or an array of numbers in schema order.
- ``text/csv``: one record per line, values in schema order, no header.

Output: ``{"model_version": ..., "classes": [...], "predictions": [...], "probabilities": [[...]]}``,
one entry per record in request order.

Errors are JSON ``{"error": <code>, "message": ...}`` (plus ``record``/``feature`` when one is at
fault): 400 when the request as a whole is malformed (empty body, bad JSON or CSV, no records),
413 above the payload limit, 415 for another content type, 406 when the client accepts no JSON,
422 when a record does not match the schema (feature count, unknown or missing feature, not a
number, not finite, out of bounds), 503 while no model is loaded, 500 only for real faults.

Run by gunicorn through ``containers/inference/serve``; ``create_app`` is the factory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from trained_model.directory import LoadedModel, load_model
from trained_model.features import FeatureError
from trained_model.prediction import JSON_TYPE, RequestError, parse_records, predict

DEFAULT_MODEL_DIR = "/opt/ml/model"
# SageMaker's InvokeEndpoint payload limit; a larger body never reaches a real endpoint anyway.
DEFAULT_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Beyond this a refused body is not even read: the connection is dropped instead.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024

logger = logging.getLogger("containers.inference")


class ModelHolder:
    """Loads the model on first use and keeps retrying until it is there (it may arrive late)."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._loaded: LoadedModel | None = None
        self._last_error = ""
        self._lock = threading.Lock()

    def get(self) -> LoadedModel | None:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._try_load()
        return self._loaded

    @property
    def last_error(self) -> str:
        return self._last_error

    def _try_load(self) -> None:
        try:
            self._loaded = load_model(self.model_dir)
        except Exception as error:  # any failure leaves the server up and unhealthy
            message = f"{type(error).__name__}: {error}"
            if message != self._last_error:
                logger.error("model not loaded from %s: %s", self.model_dir, message)
            self._last_error = message
        else:
            logger.info("model %s loaded from %s", self._loaded.version, self.model_dir)


def _json_response(payload: dict[str, object], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype=JSON_TYPE)


def _error_response(status: int, code: str, message: str, **detail: object) -> Response:
    return _json_response({"error": code, "message": message, **detail}, status)


def _feature_error_response(error: FeatureError) -> Response:
    # A malformed whole (no records, broken CSV) is a bad request; a record that does not fit the
    # schema is well-formed but unprocessable, and the body names the record and the feature.
    status = 400 if error.index is None else 422
    return _error_response(status, error.kind, str(error), record=error.index, feature=error.feature)


def _not_loaded(holder: ModelHolder) -> Response:
    return _error_response(503, "model_not_loaded", f"no model loaded yet ({holder.last_error})")


def _drain(stream: Any, length: int) -> None:
    """Read and drop a refused body, so that the client, still sending it, gets to read the answer."""
    remaining = min(length, DRAIN_LIMIT_BYTES)
    while remaining > 0:
        chunk = stream.read(min(remaining, 64 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)


def read_body(limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; a larger one is drained and refused with 413.

    Read from the WSGI stream itself: werkzeug would cut a chunked body off at the limit silently.
    """
    stream = request.environ["wsgi.input"]
    length = request.content_length
    if length is not None and length > limit:
        _drain(stream, length)
        raise RequestError(413, "payload_too_large", f"the body has {length} bytes, the limit is {limit}")
    body: bytes = stream.read(limit + 1 if length is None else length)
    if len(body) > limit:
        _drain(stream, DRAIN_LIMIT_BYTES)
        raise RequestError(413, "payload_too_large", f"the chunked body exceeds the limit of {limit} bytes")
    return body


def _register_routes(app: Flask, holder: ModelHolder, workers: int) -> None:
    @app.get("/ping")
    def ping() -> Response:
        loaded = holder.get()
        if loaded is None:
            return _not_loaded(holder)
        return _json_response({"status": "healthy", "model_version": loaded.version})

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        # Asked by SageMaker batch transform before it sends work.
        max_mb = int(app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)) or 1
        payload = {
            "MaxConcurrentTransforms": workers,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max_mb,
        }
        return _json_response(payload)

    @app.post("/invocations")
    def invocations() -> Response:
        body = read_body(int(app.config["MAX_CONTENT_LENGTH"]))  # first, so that every answer is readable
        loaded = holder.get()
        if loaded is None:
            return _not_loaded(holder)
        if request.headers.get("Accept") and not request.accept_mimetypes.accept_json:
            raise RequestError(406, "not_acceptable", f"responses are {JSON_TYPE}")
        charset = request.mimetype_params.get("charset", "utf-8")
        features = parse_records(body, request.mimetype, charset, loaded.schema)
        return _json_response(predict(loaded, features))


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def request_error(error: RequestError) -> Response:
        return _error_response(error.status, error.code, error.message, **error.detail)

    @app.errorhandler(FeatureError)
    def feature_error(error: FeatureError) -> Response:
        return _feature_error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        # 413 also comes from werkzeug (a chunked body cut off at the limit): one code for both paths.
        code = "payload_too_large" if status == 413 else error.name.lower().replace(" ", "_")
        return _error_response(status, code, error.description or error.name)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        logger.exception("unhandled error while serving a request")
        return _error_response(500, "internal_error", "the server failed to handle the request")


def create_app(model_dir: Path | None = None, max_payload_bytes: int | None = None) -> Flask:
    """The WSGI app. Defaults come from the environment: SM_MODEL_DIR, INFERENCE_MAX_PAYLOAD_BYTES."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
    )
    directory = model_dir or Path(os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    limit = max_payload_bytes or int(os.environ.get("INFERENCE_MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD_BYTES))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = limit
    holder = ModelHolder(directory)
    holder.get()  # load at start-up so that the first ping is already healthy
    _register_routes(app, holder, int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "1")))
    _register_error_handlers(app)
    return app
