"""Release the endpoint's lock at the end of every path; releasing a lock already gone changes nothing."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.state import RolloutState

logger = Logger()


def release(state: RolloutState, services: RolloutServices) -> RolloutState:
    released = services.lock.release(state.request.endpoint_name, state.rollout_id)
    logger.info("lock released" if released else "lock was not held: nothing to release")
    return state
