"""Ask a person to approve a released package: the topic gets the commands, with the task token the
workflow waits on (``{"state": <release state>, "task_token": <token>}``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.release.wiring import services
from lambdas.release.workflow import ReleaseState, ask
from lambdas.shared.aws_clients import throttling_as_retryable
from lambdas.shared.validation import describe_problems

logger = Logger()
tracer = Tracer()


class AskInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: ReleaseState
    task_token: str = Field(min_length=1, max_length=1024)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = AskInput.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"invalid approval request: {describe_problems(error)}") from None
    with throttling_as_retryable():
        ask(parsed.state, parsed.task_token, services())
    logger.info("approval asked", extra={"package": parsed.state.model_package_arn})
    return {}
