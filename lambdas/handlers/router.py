"""POST /endpoints/{endpoint}/invocations: choose a variant, call the model, return the prediction."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.serving.aws.wiring import build_predictor
from lambdas.serving.http import (
    caller_principal,
    error_response,
    json_response,
    parse_body,
    path_parameter,
    status_of,
)
from lambdas.serving.inference import PredictionRequest, PredictionResult
from lambdas.serving.ports import ServingError
from lambdas.serving.routing import RouteReason
from lambdas.serving.settings import RouterSettings, load_settings
from lambdas.shared.container import ContainerServices

logger = Logger()
tracer = Tracer()
# No `service` dimension: the dashboards read exactly EndpointName + VariantName.
metrics = Metrics(service="")

# The per-container predictor; tests serve with their own through use().
_container = ContainerServices(lambda: build_predictor(load_settings(RouterSettings, os.environ)))
use = _container.use
_service = _container.get


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)  # responses carry user data: not in traces
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        caller = caller_principal(event)
        endpoint = path_parameter(event, "endpoint")
        request = parse_body(event, PredictionRequest)
        result = _service().predict(endpoint, request, caller=caller)
    except ServingError as error:
        status = status_of(error)
        if status >= 500:
            logger.error("prediction failed", extra={"status": status, "problem": str(error)})
        else:
            # The caller's own mistake: its message (which may quote the request) goes to the caller only.
            logger.info("prediction refused", extra={"status": status, "error": type(error).__name__})
        metrics.add_dimension(name="StatusClass", value=f"{status // 100}XX")
        metrics.add_metric(name="Refused", unit=MetricUnit.Count, value=1)
        return error_response(error)
    _publish(result)
    return json_response(200, result.response)


def _publish(result: PredictionResult) -> None:
    response = result.response
    metrics.add_dimension(name="EndpointName", value=result.endpoint_name)
    metrics.add_dimension(name="VariantName", value=response.variant)
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    metrics.add_metadata(key="routing_reason", value=response.routing.reason.value)
    metrics.add_metadata(key="inference_id", value=response.inference_id)
    if result.store_failure is not None:
        metrics.add_metric(name="InferenceNotRecorded", unit=MetricUnit.Count, value=1)
        logger.warning(
            "inference not recorded: dropped, its feedback will be refused",
            extra={"inference_id": response.inference_id, "problem": result.store_failure},
        )
    if response.routing.reason is RouteReason.FLAGS_UNAVAILABLE:
        metrics.add_metric(name="FlagsUnavailable", unit=MetricUnit.Count, value=1)
        logger.warning("flags unavailable: served the champion", extra={"detail": response.routing.detail})
