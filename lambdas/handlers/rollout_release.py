"""Release the endpoint's lock at the end of every path; releasing a lock already gone changes nothing.

The task is ``lambdas.rollout.tasks.release.release``; after a failed start,
``lambdas.rollout.tasks.release.not_started``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from lambdas.rollout.aws.wiring import run_task, services
from lambdas.rollout.tasks.release import NotStarted, not_started, release
from lambdas.shared.aws_clients import throttling_as_retryable
from lambdas.shared.validation import describe_problems

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "not_started" in event:
        # {"not_started": <the state the start's Catch left>}: told, then handed back unchanged.
        failed = event["not_started"]
        try:
            parsed = NotStarted.model_validate(failed)
        except ValidationError as error:
            raise ValueError(f"invalid not_started input: {describe_problems(error)}") from None
        with throttling_as_retryable():
            not_started(parsed, services())
        return dict(failed)
    return run_task(event, release)
