"""POST /feedback: record an inference's outcome once and publish it per variant."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.serving.aws.feedback_wiring import build_feedback_recorder
from lambdas.serving.feedback import FeedbackRequest, FeedbackResult
from lambdas.serving.http import caller_principal, error_response, json_response, parse_body, status_of
from lambdas.serving.ports import ServingError
from lambdas.serving.settings import FeedbackSettings, load_settings
from lambdas.shared.container import ContainerServices

logger = Logger()
tracer = Tracer()
# No `service` dimension: the alarms and the judge read exactly EndpointName + VariantName.
metrics = Metrics(service="")
OUTCOME_METRICS = {"label": "Accuracy", "conversion": "Conversion"}

# The per-container recorder; tests record with their own through use().
_container = ContainerServices(lambda: build_feedback_recorder(load_settings(FeedbackSettings, os.environ)))
use = _container.use
_service = _container.get


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)  # responses carry user data: not in traces
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        caller = caller_principal(event)
        request = parse_body(event, FeedbackRequest)
        result = _service().record(request, caller=caller)
    except ServingError as error:
        status = status_of(error)
        if status >= 500:
            logger.error("feedback failed", extra={"status": status, "problem": str(error)})
        else:
            # The caller's own mistake: its message (which may quote the request) goes to the caller only.
            logger.info("feedback refused", extra={"status": status, "error": type(error).__name__})
        metrics.add_dimension(name="StatusClass", value=f"{status // 100}XX")
        metrics.add_metric(name="Refused", unit=MetricUnit.Count, value=1)
        return error_response(error)
    _publish(result)
    return json_response(200, result.response)


def _publish(result: FeedbackResult) -> None:
    response = result.response
    dimensions = {"EndpointName": result.endpoint_name, "VariantName": response.variant}
    for dimension, label in dimensions.items():
        metrics.add_dimension(name=dimension, value=label)
    for value in response.values:
        metrics.add_metric(name=OUTCOME_METRICS[response.outcome], unit=MetricUnit.NoUnit, value=value)
    # The endpoint's business metric lives in its own namespace, so it goes out as its own EMF blob.
    business = EphemeralMetrics(namespace=result.business_metric.namespace, service="")
    for dimension, label in dimensions.items():
        business.add_dimension(name=dimension, value=label)
    for value in response.values:
        business.add_metric(name=result.business_metric.name, unit=MetricUnit.NoUnit, value=value)
    business.flush_metrics()
