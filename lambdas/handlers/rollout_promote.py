"""Promote: the candidate's model becomes the champion, the outcome is recorded, the package is Approved.

The endpoint gets its resting config with the candidate as the champion (for blue_green that config is
already running: nothing is sent again); the package's metadata gets the ledger's summary.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.aws.endpoint_ops import (
    approve_package,
    config_name_for,
    create_endpoint_config,
    read_live_config,
    resting_config_request,
    update_endpoint,
    update_endpoint_request,
)
from lambdas.rollout.aws.wiring import RolloutServices, busy_as_retryable, run_task
from lambdas.rollout.ledger import EntryKind, outcome_payload, summarize
from lambdas.rollout.models import OutcomeStatus, RolloutOutcome
from lambdas.rollout.state import DeploymentStatus, RolloutState

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = run_task(event, promote)
    metrics.add_metric(name="RolloutPromoted", unit=MetricUnit.Count, value=1)
    return state


def promote(state: RolloutState, services: RolloutServices) -> RolloutState:
    if state.challenger_model is None:
        raise ValueError(f"rollout {state.rollout_id} has no deployed candidate to promote")
    services.hold_lock(state)
    request = state.request
    live = read_live_config(services.sagemaker, request.endpoint_name)
    name = config_name_for(request.endpoint_name, state.rollout_id, "promote")
    resting = resting_config_request(name, live, request.variants, champion_model=state.challenger_model)
    config = create_endpoint_config(services.sagemaker, resting)
    with busy_as_retryable(request.endpoint_name):
        update_endpoint(services.sagemaker, update_endpoint_request(request.endpoint_name, config))
    reason = state.decision.reason if state.decision else "deployment guardrails passed"
    outcome = RolloutOutcome(
        status=OutcomeStatus.PROMOTED,
        endpoint_name=request.endpoint_name,
        model_package_arn=request.model_package_arn,
        reason=reason,
        steps=state.steps,
    )
    state = services.record(state, EntryKind.OUTCOME, outcome_payload(outcome))
    summary = summarize(services.ledger.entries(state.rollout_id))
    approve_package(
        services.sagemaker,
        request.model_package_arn,
        summary,
        f"promoted by rollout {state.rollout_id}: {reason}",
    )
    logger.info("promoted", extra={"model": state.challenger_model, "config": config, "reason": reason})
    return state.model_copy(update={"deployment": DeploymentStatus(status="updating", config_name=config)})
