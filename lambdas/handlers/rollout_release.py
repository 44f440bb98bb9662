"""Release the endpoint's lock at the end of every path; releasing a lock already gone changes nothing."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.aws.wiring import RolloutServices, run_task
from lambdas.rollout.state import RolloutState

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, release)


def release(state: RolloutState, services: RolloutServices) -> RolloutState:
    released = services.lock.release(state.request.endpoint_name, state.rollout_id)
    logger.info("lock released" if released else "lock was not held: nothing to release")
    return state
