"""Start a rollout: the workflow's input becomes the state; the lock is taken, the start recorded.

Input: an EventBridge "SageMaker Model Package State Change" event, or a direct request
``{"endpoint": ..., "model_package_arn": ..., optional overrides}``; either with ``execution_id`` added
by the state machine. Any failure here
changes nothing (or only takes this execution's own lock), so the state machine ends the execution
without the rollback path.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.aws.wiring import services
from lambdas.rollout.start import parse_input
from lambdas.rollout.tasks.start import start
from lambdas.shared.aws_clients import throttling_as_retryable

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with throttling_as_retryable():
        state = start(parse_input(event), services())
    metrics.add_metric(name="RolloutStarted", unit=MetricUnit.Count, value=1)
    logger.info("rollout started", extra={"endpoint": state.endpoint, "rollout_id": state.rollout_id})
    return state.dump()
