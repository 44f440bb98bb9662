"""Resume an aborted rollout on its rollback path: its state rebuilt from the ledger, the abort its error.

Input: ``{"abort": {"rollout_id": ..., "endpoint": ..., "reason": ...}}``, as the abort function starts
the state machine (``lambdas/handlers/rollout_abort.py``). The returned state goes straight to "Roll back
to the champion", which holds the aborted rollout's lock and appends to its ledger.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from lambdas.rollout.abort import AbortInput, InvalidAbortTrigger, resume
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
        entries = services().ledger.entries(abort.rollout_id)
    state = resume(entries, abort)
    logger.warning(
        "rolling back an aborted rollout", extra={"rollout_id": abort.rollout_id, "reason": abort.reason}
    )
    return state.dump()
