"""Give the challenger its share of the current step (canary, linear, ab_test) and start the step's clock.

The task is ``lambdas.rollout.tasks.set_traffic.set_traffic``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.aws.wiring import run_task
from lambdas.rollout.tasks.set_traffic import set_traffic

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, set_traffic)
