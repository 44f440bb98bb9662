"""Roll back: the champion takes all traffic at once, the candidate leaves, the package is Rejected.

The task is ``lambdas.rollout.tasks.rollback.rollback``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.aws.wiring import run_task
from lambdas.rollout.tasks.rollback import rollback

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = run_task(event, rollback)
    if state.get("outcome") is not None:
        metrics.add_metric(name="RolloutRolledBack", unit=MetricUnit.Count, value=1)
    return state
