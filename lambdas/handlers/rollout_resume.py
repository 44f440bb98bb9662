"""Resume an aborted rollout on its rollback path: its state rebuilt from the ledger, the abort its error.

Input: ``{"abort": {"rollout_id": ..., "endpoint": ..., "reason": ...}}``, as the abort function starts
the state machine (``lambdas/handlers/rollout_abort.py``). The returned state goes straight to "Roll back
to the champion", which holds the aborted rollout's lock and appends to its ledger. The lock is taken
over at a new generation (``lambdas/rollout/aws/fence.py``): a task of the stopped execution still
running writes nothing after that.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from lambdas.rollout.abort import STOPPED_TASK_WINDOW_SECONDS, AbortInput, InvalidAbortTrigger, resume
from lambdas.rollout.aws.wiring import services
from lambdas.shared.aws_clients import throttling_as_retryable
from lambdas.shared.validation import describe_problems

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class _ResumeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    abort: AbortInput


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        abort = _ResumeInput.model_validate(event).abort
    except ValidationError as error:
        raise InvalidAbortTrigger(f"invalid abort execution input: {describe_problems(error)}") from None
    with throttling_as_retryable():
        running = services()
        entries = running.ledger.entries(abort.rollout_id)
        state = resume(entries, abort)
        # The stopped execution's tasks may still run: this execution takes the lock over (a new
        # generation, which fences their writes off) and records nothing before they can have ended.
        now = running.now()
        generation = state.generation
        if running.generations is not None:
            generation = running.generations.take_over(
                state.request.endpoint_name, state.rollout_id, expires_at=now + state.lease_seconds
            )
    state = state.model_copy(
        update={"generation": generation, "settle_until": now + STOPPED_TASK_WINDOW_SECONDS}
    )
    logger.warning(
        "rolling back an aborted rollout", extra={"rollout_id": abort.rollout_id, "reason": abort.reason}
    )
    return state.dump()
