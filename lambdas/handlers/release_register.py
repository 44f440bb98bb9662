"""Register an offered package in this environment (the release workflow's first step).

Input: the offer, the EventBridge event's detail (``lambdas.release.offer.ReleaseOffer``). An offer that
is not valid, not for this environment, or of a package that was not promoted is refused with a
``ReleaseRefused`` naming why; nothing is registered.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from lambdas.release.offer import ReleaseOffer
from lambdas.release.wiring import services
from lambdas.release.workflow import ReleaseRefused, register
from lambdas.shared.aws_clients import throttling_as_retryable
from lambdas.shared.validation import describe_problems

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        offer = ReleaseOffer.model_validate(event)
    except ValidationError as error:
        raise ReleaseRefused(f"invalid release offer: {describe_problems(error)}") from None
    with throttling_as_retryable():
        state = register(offer, services())
    logger.info("registered", extra={"package": state.model_package_arn, "source": offer.model_package_arn})
    return state.dump()
