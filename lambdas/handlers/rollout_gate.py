"""A human gate of the rollout: ask a person (``{"state": ..., "task_token": ...}``, the workflow waiting on
the token) or record the approval that came back (the state, with ``approval``).

The tasks are ``lambdas.rollout.tasks.approval``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from lambdas.rollout.aws.wiring import run_task, services
from lambdas.rollout.state import RolloutState
from lambdas.rollout.tasks.approval import ask_approval, record_approval
from lambdas.shared.aws_clients import throttling_as_retryable

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class _Ask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: RolloutState
    task_token: str = Field(min_length=1, max_length=1024)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "task_token" in event:
        asked = _Ask.model_validate(event)
        with throttling_as_retryable():
            ask_approval(asked.state, asked.task_token, services())
        metrics.add_metric(name="ApprovalAsked", unit=MetricUnit.Count, value=1)
        return {"asked": asked.state.approval_needed}
    return run_task(event, record_approval)
