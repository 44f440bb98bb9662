"""Release the endpoint's lock at the end of every path; releasing a lock already gone changes nothing.

A path that ends without an outcome (the rollback function failed, in `rollback_error`) also tells a
person, on the environment's topic, why: the endpoint may still serve the candidate, and nothing else
would say so; a rollback that gave up (outcome `failed`) has told already. A start that
failed (another rollout holds the endpoint, the input or package is refused) is told too
(`not_started`).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from lambdas.rollout.aws.guardrail_alarms import GuardrailAlarmsInAlarm
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.start import (
    InvalidWorkflowInput,
    PackageNotRollable,
    UnknownEndpoint,
    parse_input,
    resolve_target,
)
from lambdas.rollout.state import RolloutState, TaskError

logger = Logger()

SUBJECT_MAX = 100


def release(state: RolloutState, services: RolloutServices) -> RolloutState:
    if state.outcome is None:
        _notify_failure(state, services)
    released = services.lock.release(state.request.endpoint_name, state.rollout_id)
    logger.info("lock released" if released else "lock was not held: nothing to release")
    return state


def _notify_failure(state: RolloutState, services: RolloutServices) -> None:
    reason = state.failure_reason()
    if state.rollback_error is not None:
        reason = f"rolling back ({reason}) failed: {state.rollback_error.describe()}"
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


class _Execution(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    execution_id: str = Field(min_length=1)


class NotStarted(BaseModel):
    """What the start's Catch leaves in the state: the execution's input, its id, and the start's error."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    input: Any
    execution: _Execution
    error: TaskError


GUARDRAIL_REFUSAL = GuardrailAlarmsInAlarm.__name__


def _not_started_action(error: TaskError) -> str:
    if error.error == GUARDRAIL_REFUSAL:
        return "the package stays approved: start its rollout again once the guardrail alarm is OK"
    return "the package stays approved: start its rollout again once the endpoint is free"


def not_started(failed: NotStarted, services: RolloutServices) -> None:
    """A rollout that did not start is refused with a notification, never queued: the approval stays in
    the registry, and a person starts it again once the endpoint is free (a queued candidate would be
    judged against whatever champion the rollout before it left). A lock this execution took before it
    failed is released at once instead of blocking the endpoint until its lease expires."""
    rollout_id = failed.execution.execution_id
    endpoint, endpoint_name, package = None, None, None
    if isinstance(failed.input, dict):
        try:
            given = parse_input({**failed.input, "execution_id": rollout_id})
            endpoint, settings, package, _ = resolve_target(given, services.settings.endpoints)
            endpoint_name = settings.endpoint_name
        except (InvalidWorkflowInput, UnknownEndpoint, PackageNotRollable):
            pass  # the error below says what was wrong with the input
    if endpoint_name is not None and services.lock.release(endpoint_name, rollout_id):
        logger.info("lock taken by the failed start released", extra={"endpoint": endpoint_name})
    reason = failed.error.describe()
    message = {
        "event": "rollout_not_started",
        "endpoint": endpoint,
        "endpoint_name": endpoint_name,
        "model_package_arn": package,
        "rollout_id": rollout_id,
        "reason": reason,
        "action": _not_started_action(failed.error),
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {endpoint or 'a'} rollout did not start"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )
    logger.warning("rollout not started", extra={"reason": reason})
