"""Deploy the candidate: a model from its package, an endpoint config beside the champion, UpdateEndpoint.

Before the gates (``gates`` not yet in the state) every strategy deploys the candidate in the challenger
slot at weight 0, where the gates send it the golden inputs with TargetVariant and no user reaches it.
For canary / linear / ab_test that is the deploy config itself (set_traffic then gives it traffic). After
gates that passed, the state machine calls again for the two strategies that deploy otherwise:
shadow, the candidate as the shadow variant (SageMaker routes no TargetVariant to a shadow); blue_green,
the candidate as the champion's model, shifted by SageMaker's guardrails (the promote config, so
promotion has nothing left to update).
The output's ``deployment.status`` is ``updating``: rollout_check_deployment follows it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.endpoint_ops import (
    ConfigPurpose,
    blue_green_deployment_config,
    challenger_config_request,
    config_name_for,
    create_endpoint_config,
    create_model_from_package,
    model_name_for,
    read_live_config,
    resting_config_request,
    update_endpoint,
    update_endpoint_request,
)
from lambdas.rollout.aws.wiring import RolloutServices, busy_as_retryable
from lambdas.rollout.ledger import EntryKind, deployment_payload
from lambdas.rollout.payloads import Strategy
from lambdas.rollout.state import DeploymentStatus, RolloutState

logger = Logger()


# The strategies whose own deployment follows the gates' config: the candidate is asked before it.
DEPLOYED_AFTER_THE_GATES = frozenset({Strategy.SHADOW, Strategy.BLUE_GREEN})


def deploy(state: RolloutState, services: RolloutServices) -> RolloutState:
    request = state.request
    if state.gates is not None and not (state.gates.passed and request.strategy in DEPLOYED_AFTER_THE_GATES):
        raise ValueError(
            f"rollout {state.rollout_id} ({request.strategy.value}) has nothing to deploy after its gates "
            f"(passed: {state.gates.passed})"
        )
    services.hold_lock(state)
    model = create_model_from_package(
        services.sagemaker,
        model_name=model_name_for(request.endpoint_name, request.model_package_arn),
        model_package_arn=request.model_package_arn,
        execution_role_arn=state.execution_role_arn,
        expected_group=request.model_package_group,
    )
    config_request, deployment_config = _config_for(state, services, model)
    config = create_endpoint_config(services.sagemaker, config_request)
    with busy_as_retryable(request.endpoint_name):
        update_endpoint(
            services.sagemaker, update_endpoint_request(request.endpoint_name, config, deployment_config)
        )
    logger.info("challenger deployed", extra={"model": model, "config": config})
    state = state.model_copy(
        update={
            "challenger_model": model,
            "deployment": DeploymentStatus(status="updating", config_name=config),
        }
    )
    action = "deploy_challenger" if state.gates is None else "deploy_for_strategy"
    payload = deployment_payload(action, config, model=model, strategy=request.strategy.value)
    return services.record(state, EntryKind.DEPLOYMENT, payload)


def _config_for(
    state: RolloutState, services: RolloutServices, model: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    request = state.request
    live = read_live_config(services.sagemaker, request.endpoint_name)
    if state.gates is None:
        purpose: ConfigPurpose = "gate" if request.strategy in DEPLOYED_AFTER_THE_GATES else "deploy"
        name = config_name_for(request.endpoint_name, state.rollout_id, purpose)
        return challenger_config_request(
            name, live, request.variants, challenger_model=model, shadow=False
        ), None
    if request.strategy is Strategy.BLUE_GREEN:
        name = config_name_for(request.endpoint_name, state.rollout_id, "promote")
        resting = resting_config_request(name, live, request.variants, champion_model=model)
        return resting, blue_green_deployment_config(request.blue_green)
    name = config_name_for(request.endpoint_name, state.rollout_id, "deploy")
    return challenger_config_request(name, live, request.variants, challenger_model=model, shadow=True), None
