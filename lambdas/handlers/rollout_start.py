"""Start a rollout: the workflow's input becomes the state; the lock is taken, the start recorded.

Input: an EventBridge "SageMaker Model Package State Change" event, or a direct request
``{"endpoint": ..., "model_package_arn": ..., optional overrides}``; either with ``execution_id`` added
by the state machine. Any failure here
changes nothing (or only takes this execution's own lock), so the state machine ends the execution
without the rollback path.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.rollout.aws.endpoint_ops import read_live_config
from lambdas.rollout.aws.wiring import RolloutServices, services
from lambdas.rollout.ledger import EntryKind, deployment_payload
from lambdas.rollout.payloads import STEPPED_STRATEGIES, Strategy, parse_rollout_request
from lambdas.rollout.settings import RolloutEndpoint
from lambdas.rollout.state import RolloutState
from lambdas.shared.aws_clients import throttling_as_retryable
from lambdas.shared.validation import describe_problems

logger = Logger()
tracer = Tracer()
metrics = Metrics()

PACKAGE_EVENT = "SageMaker Model Package State Change"
FINISHED_OUTCOMES = frozenset({"promoted", "rolled_back", "failed"})


class InvalidWorkflowInput(ValueError):
    """The execution's input is neither a package event nor a rollout request."""


class UnknownEndpoint(ValueError):
    """No endpoint of this environment matches the input."""


class PackageNotRollable(ValueError):
    """The package is not approved, or has been rolled out already."""


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    ModelPackageArn: str
    ModelPackageGroupName: str
    ModelApprovalStatus: str


class PackageEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    detail: PackageDetail
    execution_id: str = Field(min_length=1)


class DirectRequest(_Input):
    endpoint: str = Field(min_length=1)
    model_package_arn: str = Field(min_length=1)
    execution_id: str = Field(min_length=1)
    strategy: Strategy | None = None
    traffic_steps: list[Any] | None = None
    bake_minutes: int | None = None
    max_bakes_per_step: int | None = None
    sample_budget: int | None = None

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude={"endpoint", "model_package_arn", "execution_id"}, exclude_none=True)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with throttling_as_retryable():
        state = start(parse_input(event), services())
    metrics.add_metric(name="RolloutStarted", unit=MetricUnit.Count, value=1)
    logger.info("rollout started", extra={"endpoint": state.endpoint, "rollout_id": state.rollout_id})
    return state.dump()


def parse_input(event: Any) -> PackageEvent | DirectRequest:
    is_event = isinstance(event, dict) and "detail-type" in event
    try:
        if is_event:
            return PackageEvent.model_validate(event)
        return DirectRequest.model_validate(event)
    except ValidationError as error:
        what = "package event" if is_event else "rollout request"
        problems = describe_problems(error)
        raise InvalidWorkflowInput(f"invalid {what}: {problems}") from None


def start(given: PackageEvent | DirectRequest, services: RolloutServices) -> RolloutState:
    name, endpoint, package_arn, overrides = _resolve(given, services)
    state = _initial_state(given.execution_id, name, endpoint, package_arn, overrides)
    _check_not_rolled_out(services, package_arn)
    lease = services.lock.acquire(state.request.endpoint_name, state.rollout_id)
    live = read_live_config(services.sagemaker, state.request.endpoint_name)
    # The champion before the rollout: what a rollback restores, whatever the endpoint runs by then.
    champion_model = str(live.variant(state.request.variants.champion)["ModelName"])
    state = state.model_copy(update={"started_at": lease.acquired_at, "champion_model": champion_model})
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


def _resolve(
    given: PackageEvent | DirectRequest, services: RolloutServices
) -> tuple[str, RolloutEndpoint, str, dict[str, Any]]:
    endpoints = services.settings.endpoints
    if isinstance(given, DirectRequest):
        if given.endpoint not in endpoints:
            raise UnknownEndpoint(
                f"unknown endpoint {given.endpoint!r}; this environment has {sorted(endpoints)}"
            )
        return given.endpoint, endpoints[given.endpoint], given.model_package_arn, given.overrides()
    detail = given.detail
    if detail.ModelApprovalStatus != "Approved":
        raise PackageNotRollable(
            f"package {detail.ModelPackageArn} is {detail.ModelApprovalStatus}, not Approved"
        )
    matches = [name for name, e in endpoints.items() if e.model_package_group == detail.ModelPackageGroupName]
    if len(matches) != 1:
        raise UnknownEndpoint(
            f"package group {detail.ModelPackageGroupName!r} serves {len(matches)} endpoints here "
            f"({matches}); a package event starts a rollout only for exactly one"
        )
    return matches[0], endpoints[matches[0]], detail.ModelPackageArn, {}


def _initial_state(
    execution_id: str, name: str, endpoint: RolloutEndpoint, package_arn: str, overrides: dict[str, Any]
) -> RolloutState:
    defaults = endpoint.rollout
    raw: dict[str, Any] = {
        "endpoint": name,
        "endpoint_name": endpoint.endpoint_name,
        "model_package_arn": package_arn,
        "model_package_group": endpoint.model_package_group,
        "strategy": defaults.strategy,
        "bake_minutes": defaults.bake_minutes,
        "max_bakes_per_step": defaults.max_bakes_per_step,
        "variants": endpoint.variants.model_dump(),
        "blue_green": defaults.blue_green.model_dump()
        | {"rollback_alarm_names": endpoint.rollback_alarm_names},
    } | overrides
    # The configured steps belong to the configured strategy; another strategy takes its own default.
    if raw["strategy"] == defaults.strategy and defaults.strategy in STEPPED_STRATEGIES | {Strategy.AB_TEST}:
        raw.setdefault("traffic_steps", list(defaults.traffic_steps))
    request = parse_rollout_request(raw)
    return RolloutState(
        rollout_id=execution_id,
        endpoint=name,
        request=request,
        started_at=0,
        bake_seconds=request.bake_minutes * 60,
        execution_role_arn=endpoint.execution_role_arn,
        business_metric=endpoint.business_metric,
        judge=defaults.judge,
        gate_settings=defaults.gates,
    )


def _check_not_rolled_out(services: RolloutServices, package_arn: str) -> None:
    # Promotion approves the package again: that event must not start a second rollout of it.
    package = services.sagemaker.describe_model_package(ModelPackageName=package_arn)
    outcome = (package.get("CustomerMetadataProperties") or {}).get("rollout.outcome")
    if outcome in FINISHED_OUTCOMES:
        raise PackageNotRollable(f"package {package_arn} was rolled out already (outcome: {outcome})")
