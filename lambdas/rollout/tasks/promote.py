"""Promote: the candidate's model becomes the champion, the outcome is recorded, the package is Approved.

Two calls: the first sends the endpoint its resting config with the candidate as the champion (for
blue_green that config is already running: nothing is sent, and the second part follows at once); the
state machine waits for that update and checks it, and a second call, seeing the promote config in
service, records the outcome and approves the package with the ledger's summary. A promotion update
that fails goes to the rollback path instead: nothing was approved yet.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.endpoint_ops import (
    approve_package,
    config_name_for,
    create_endpoint_config,
    read_live_config,
    resting_config_request,
    update_endpoint,
    update_endpoint_request,
)
from lambdas.rollout.aws.wiring import RolloutServices, busy_as_retryable
from lambdas.rollout.ledger import EntryKind, outcome_payload, summarize
from lambdas.rollout.payloads import OutcomeStatus, RolloutOutcome
from lambdas.rollout.state import DeploymentStatus, RolloutState

logger = Logger()


def promote(state: RolloutState, services: RolloutServices) -> RolloutState:
    """Send the endpoint its resting config with the candidate as champion; once that update has ended
    in service (the state machine waits and checks, then calls again), record and approve."""
    if state.challenger_model is None:
        raise ValueError(f"rollout {state.rollout_id} has no deployed candidate to promote")
    services.hold_lock(state)
    request = state.request
    name = config_name_for(request.endpoint_name, state.rollout_id, "promote")
    deployment = state.deployment
    if deployment is None or deployment.config_name != name or deployment.status != "in_service":
        live = read_live_config(services.sagemaker, request.endpoint_name)
        resting = resting_config_request(name, live, request.variants, champion_model=state.challenger_model)
        config = create_endpoint_config(services.sagemaker, resting)
        with busy_as_retryable(request.endpoint_name):
            sent = update_endpoint(services.sagemaker, update_endpoint_request(request.endpoint_name, config))
        if sent or live.name != config:
            logger.info("promotion update sent", extra={"model": state.challenger_model, "config": config})
            return state.model_copy(
                update={"deployment": DeploymentStatus(status="updating", config_name=config)}
            )
        # blue_green: SageMaker's guardrails already run this config; nothing to wait for.
    return _record_promotion(state, services, name)


def _record_promotion(state: RolloutState, services: RolloutServices, config: str) -> RolloutState:
    request = state.request
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
    return state.model_copy(
        update={
            "deployment": DeploymentStatus(status="in_service", config_name=config),
            "outcome": OutcomeStatus.PROMOTED,
        }
    )
