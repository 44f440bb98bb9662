"""End a release: ``{"action": "approve" | "reject", "state": ...}`` approves or rejects the registered
package; ``{"action": "refused", "state": <the offer with the refusal in "error">}`` tells why an offer
was not registered."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from lambdas.release.wiring import services
from lambdas.release.workflow import ReleaseState, StepError, approve, refused, reject
from lambdas.shared.aws_clients import throttling_as_retryable
from lambdas.shared.validation import describe_problems

logger = Logger()
tracer = Tracer()


class ConcludeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["approve", "reject", "refused"]
    state: dict[str, Any]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = ConcludeInput.model_validate(event)
        if parsed.action == "refused":
            error = StepError.model_validate(parsed.state.get("error") or {"Error": "ReleaseRefused"})
            with throttling_as_retryable():
                refused(parsed.state, error, services())
            return parsed.state
        state = ReleaseState.model_validate(parsed.state)
    except ValidationError as problem:
        raise ValueError(f"invalid release conclusion: {describe_problems(problem)}") from None
    conclude = approve if parsed.action == "approve" else reject
    with throttling_as_retryable():
        concluded = conclude(state, services())
    logger.info("release concluded", extra={"action": parsed.action, "package": state.model_package_arn})
    return concluded.dump()
