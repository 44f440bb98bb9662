"""Roll back: the champion takes all traffic at once, the candidate leaves, the package is Rejected (or,
stopped for too little data, inconclusive: back to pending approval).

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
    outcome = state.get("outcome")
    if outcome is not None:
        name = "RolloutInconclusive" if outcome == "inconclusive" else "RolloutRolledBack"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return state
