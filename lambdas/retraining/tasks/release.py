"""Release the family's lock at the end of every path that took it; a lock already gone changes nothing."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.retraining.aws.wiring import RetrainingServices, lock_key
from lambdas.retraining.state import RetrainingState

logger = Logger()


def release(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    released = services.lock.release(lock_key(state.model_family), state.execution_id)
    logger.info("lock released" if released else "lock was not held: nothing to release")
    return state
