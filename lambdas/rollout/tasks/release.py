"""Release the endpoint's lock at the end of every path; releasing a lock already gone changes nothing.

A path that ends without an outcome (the rollback failed) also tells a person, on the environment's
topic, why: the endpoint may still serve the candidate, and nothing else would say so.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.state import RolloutState

logger = Logger()

SUBJECT_MAX = 100


def release(state: RolloutState, services: RolloutServices) -> RolloutState:
    if state.outcome is None:
        _notify_failure(state, services)
    released = services.lock.release(state.request.endpoint_name, state.rollout_id)
    logger.info("lock released" if released else "lock was not held: nothing to release")
    return state


def _notify_failure(state: RolloutState, services: RolloutServices) -> None:
    reason = state.error.describe() if state.error is not None else state.failure_reason()
    if state.rollback_reason is not None and state.error is not None:
        reason = f"rolling back ({state.rollback_reason}) failed: {reason}"
    request = state.request
    message = {
        "event": "rollout_rollback_failed",
        "endpoint": state.endpoint,
        "endpoint_name": request.endpoint_name,
        "model_package_arn": request.model_package_arn,
        "rollout_id": state.rollout_id,
        "reason": reason,
        "action": "the endpoint needs a person: check which config it runs and restore the champion",
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {state.endpoint} rollback FAILED"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )
    logger.error("rollback failed", extra={"reason": reason})
