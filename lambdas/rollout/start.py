"""What starts a rollout: the workflow's input (a package event or a direct request) and the first state.

Pure domain code: pydantic and the standard library only; the calls are ``lambdas.rollout.tasks.start``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.rollout.payloads import STEPPED_STRATEGIES, Strategy, parse_rollout_request
from lambdas.rollout.settings import RolloutEndpoint
from lambdas.rollout.state import RolloutState
from lambdas.shared.validation import describe_problems

__all__ = [
    "FINISHED_OUTCOMES",
    "PACKAGE_EVENT",
    "DirectRequest",
    "InvalidWorkflowInput",
    "PackageDetail",
    "PackageEvent",
    "PackageNotRollable",
    "UnknownEndpoint",
    "initial_state",
    "parse_input",
    "planned_lease_seconds",
    "resolve_target",
]

PACKAGE_EVENT = "SageMaker Model Package State Change"
FINISHED_OUTCOMES = frozenset({"promoted", "rolled_back", "failed"})
# An endpoint update without guardrails (new instances, then the swap) takes minutes; an hour is ample.
UPDATE_ALLOWANCE_SECONDS = 3600
# Deploy, then promote or roll back, and a rollback that waits for the update it found running.
UPDATES_PER_ROLLOUT = 3
MIN_LEASE_SECONDS = 2 * 3600


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


def resolve_target(
    given: PackageEvent | DirectRequest, endpoints: Mapping[str, RolloutEndpoint]
) -> tuple[str, RolloutEndpoint, str, dict[str, Any]]:
    """The endpoint's name and settings, the package and the request's overrides."""
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


def initial_state(
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
        # The first Wait after a traffic step is a look, not a bake: harm is looked for after every window.
        bake_seconds=defaults.judge.look_seconds,
        execution_role_arn=endpoint.execution_role_arn,
        business_metric=endpoint.business_metric,
        judge=defaults.judge,
        gate_settings=defaults.gates,
        guardrails=defaults.guardrails,
        policy=defaults.policy,
        approval_before=defaults.approval_before,
        approval_timeout_seconds=defaults.policy.hold_timeout_minutes * 60,
    )


def planned_lease_seconds(state: RolloutState) -> int:
    """How long the rollout's lease lasts: the longest its plan can take (every step baked as often as
    the judge may ask, each endpoint update as long as its guardrails allow), so that it never expires
    under a rollout that is still running; every task renews it for as long again."""
    request = state.request
    bakes = len(request.challenger_shares) * request.max_bakes_per_step * request.bake_minutes * 60
    update = UPDATE_ALLOWANCE_SECONDS
    if request.strategy is Strategy.BLUE_GREEN:
        update = max(update, request.blue_green.maximum_execution_timeout_seconds)
    return max(MIN_LEASE_SECONDS, bakes + UPDATES_PER_ROLLOUT * update)
