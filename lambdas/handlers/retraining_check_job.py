"""Where the run's current job stands: still running, completed, or ended without its output.

The task is ``lambdas.retraining.tasks.check_job.check_job``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.wiring import run_task
from lambdas.retraining.tasks.check_job import check_job

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, check_job)
