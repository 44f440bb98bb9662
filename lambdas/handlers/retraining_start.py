"""Start a retraining: the execution's input becomes the state and the family's lock is taken.

Input: ``{"model_family": ..., "trigger": {"kind": ..., "detail": {...}}}`` with ``execution_id`` added
by the state machine. Another run holding the family is no failure: the state says ``lock.taken`` false
and the state machine ends at "Already retraining". A bad input or an unknown family changes nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.wiring import services
from lambdas.retraining.state import parse_input
from lambdas.retraining.tasks.start import start
from lambdas.shared.aws_clients import throttling_as_retryable

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with throttling_as_retryable():
        state = start(parse_input(event), services())
    if state.lock.taken:
        metrics.add_metric(name="RetrainingStarted", unit=MetricUnit.Count, value=1)
    logger.info(
        "retraining started" if state.lock.taken else "another run is retraining this family",
        extra={"model_family": state.model_family, "run_id": state.run_id, "holder": state.lock.holder},
    )
    return state.dump()
