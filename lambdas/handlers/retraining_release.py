"""Release the family's lock at the end of every path that took it; a lock already gone changes nothing.

The task is ``lambdas.retraining.tasks.release.release``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.wiring import run_task
from lambdas.retraining.tasks.release import release

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, release)
