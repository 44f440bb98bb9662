"""Where the rollout's last endpoint update stands: updating, in service with its config, or failed.

A SageMaker rollback (deployment guardrails, or a failed fleet) leaves the endpoint in service on its
old config; that is reported as ``failed`` with the reason, not as in service.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.endpoint_ops import DeploymentState, SilentRollbackDetected, classify_deployment
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.ledger import EntryKind, deployment_payload
from lambdas.rollout.state import DeploymentStatus, RolloutState

logger = Logger()

_STATUS = {
    DeploymentState.IN_PROGRESS: "updating",
    DeploymentState.RUNNING: "in_service",
    DeploymentState.ROLLED_BACK: "failed",
    DeploymentState.FAILED: "failed",
}


def check_deployment(state: RolloutState, services: RolloutServices) -> RolloutState:
    if state.deployment is None:
        raise ValueError(f"rollout {state.rollout_id} has no endpoint update to check")
    config = state.deployment.config_name
    description = services.sagemaker.describe_endpoint(EndpointName=state.request.endpoint_name)
    report = classify_deployment(description, config)
    reason = report.reason
    if report.state is DeploymentState.ROLLED_BACK:
        reason = str(SilentRollbackDetected(report))
    checked = DeploymentStatus(status=_STATUS[report.state], config_name=config, reason=reason)
    state = state.model_copy(update={"deployment": checked})
    if checked.status == "updating":
        return state
    logger.info(
        "endpoint update ended", extra={"config": config, "state": report.state.value, "reason": reason}
    )
    payload = deployment_payload("update_checked", config, state=report.state.value, reason=reason)
    return services.record(state, EntryKind.DEPLOYMENT, payload)
