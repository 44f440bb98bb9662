"""Start the preprocessing job: validate every data drop of the family, write train.csv and the manifest.

The task is ``lambdas.retraining.tasks.preprocess.start_preprocess``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.wiring import run_task
from lambdas.retraining.tasks.preprocess import start_preprocess

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, start_preprocess)
