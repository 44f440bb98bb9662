"""Give the challenger its share of the current step (canary, linear, ab_test) and start the step's clock.

shadow sets no weights (the shadow variant sees a copy of every request), it only starts the clock;
blue_green has no steps: SageMaker shifts its traffic.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.endpoint_ops import set_weights
from lambdas.rollout.aws.wiring import RolloutServices, busy_as_retryable
from lambdas.rollout.ledger import EntryKind, deployment_payload
from lambdas.rollout.payloads import Strategy
from lambdas.rollout.state import RolloutState
from lambdas.rollout.traffic import step_weights

logger = Logger()


def set_traffic(state: RolloutState, services: RolloutServices) -> RolloutState:
    request = state.request
    if request.strategy is Strategy.BLUE_GREEN:
        raise ValueError("blue_green takes no traffic steps: SageMaker's guardrails shift its traffic")
    deployment = state.deployment
    if deployment is None:
        raise ValueError(f"rollout {state.rollout_id} sets traffic before its challenger is deployed")
    services.hold_lock(state)
    share = 0
    if request.strategy is not Strategy.SHADOW:
        share = request.challenger_shares[state.step_index]
        weights = step_weights(share, request.variants)
        services.require_idle(request.endpoint_name)
        with busy_as_retryable(request.endpoint_name):
            set_weights(services.sagemaker, request.endpoint_name, weights, request.variants)
    logger.info("traffic step started", extra={"step": state.step_index, "challenger_percent": share})
    state = state.model_copy(update={"step_started_at": services.now(), "bakes_done": 0, "decision": None})
    payload = deployment_payload(
        "set_weights", deployment.config_name, step=state.step_index, challenger_percent=share
    )
    return services.record(state, EntryKind.DEPLOYMENT, payload)
