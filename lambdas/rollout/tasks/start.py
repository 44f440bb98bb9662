"""The start task's calls: the package checked, the guardrail alarms read (one in ALARM refuses the start,
before anything changes), the endpoint's lock taken, the start recorded."""

from __future__ import annotations

from lambdas.rollout.aws.endpoint_ops import LiveConfig, read_live_config
from lambdas.rollout.aws.guardrail_alarms import check_guardrail_alarms
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.guardrails import CostBasis
from lambdas.rollout.ledger import EntryKind, deployment_payload
from lambdas.rollout.settings import RolloutEndpoint
from lambdas.rollout.start import (
    FINISHED_OUTCOMES,
    DirectRequest,
    PackageEvent,
    PackageNotRollable,
    initial_state,
    planned_lease_seconds,
    resolve_target,
)
from lambdas.rollout.state import RolloutState

__all__ = ["start"]


def start(given: PackageEvent | DirectRequest, services: RolloutServices) -> RolloutState:
    name, endpoint, package_arn, overrides = resolve_target(given, services.settings.endpoints)
    state = initial_state(given.execution_id, name, endpoint, package_arn, overrides)
    _check_not_rolled_out(services, package_arn)
    guardrails = endpoint.rollout.guardrails.alarm_names
    if guardrails:
        check_guardrail_alarms(services.guardrail_alarms(), guardrails, endpoint=name)
    state = state.model_copy(update={"lease_seconds": planned_lease_seconds(state)})
    lease = services.lock.acquire(
        state.request.endpoint_name, state.rollout_id, lease_seconds=state.lease_seconds
    )
    live = read_live_config(services.sagemaker, state.request.endpoint_name)
    # The champion before the rollout: what a rollback restores, whatever the endpoint runs by then.
    champion_model = str(live.variant(state.request.variants.champion)["ModelName"])
    state = state.model_copy(
        update={
            "started_at": lease.acquired_at,
            "champion_model": champion_model,
            "cost_basis": _cost_basis(live, state, endpoint),
        }
    )
    payload = deployment_payload(
        "rollout_started",
        live.name,
        model_package_arn=package_arn,
        strategy=state.request.strategy.value,
        challenger_shares=list(state.request.challenger_shares),
        # The settings this rollout runs under, as evidence; an abort resumes the rollout from them.
        state=state.dump(),
    )
    return services.record(state, EntryKind.DEPLOYMENT, payload)


def _check_not_rolled_out(services: RolloutServices, package_arn: str) -> None:
    # Promotion approves the package again: that event must not start a second rollout of it.
    package = services.sagemaker.describe_model_package(ModelPackageName=package_arn)
    outcome = (package.get("CustomerMetadataProperties") or {}).get("rollout.outcome")
    if outcome in FINISHED_OUTCOMES:
        raise PackageNotRollable(f"package {package_arn} was rolled out already (outcome: {outcome})")


def _cost_basis(live: LiveConfig, state: RolloutState, endpoint: RolloutEndpoint) -> CostBasis | None:
    """The champion's instance type and count as the rollout starts (the challenger's slot copies the
    type); None for a serverless champion, which is billed per request, not per instance."""
    champion = live.variant(state.request.variants.champion)
    instance_type = champion.get("InstanceType")
    if not instance_type:
        return None
    count = live.instance_count(state.request.variants.champion) or champion.get("InitialInstanceCount") or 1
    return endpoint.cost_basis(str(instance_type), int(count))
