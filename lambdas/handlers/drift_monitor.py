"""Scheduled drift monitor: per endpoint, the champion's captured inputs against its training baseline.

The run itself is ``lambdas.retraining.aws.drift_monitor.monitor``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.drift_monitor import monitor, services

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    observations = monitor(services())
    return {"endpoints": [observation.model_dump(mode="json") for observation in observations]}
