"""Start the evaluation job: gate files, evaluation.json and the manifest beside model.tar.gz.

The task is ``lambdas.retraining.tasks.evaluate.start_evaluate``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.wiring import run_task
from lambdas.retraining.tasks.evaluate import start_evaluate

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, start_evaluate)
