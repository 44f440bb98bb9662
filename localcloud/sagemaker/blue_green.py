"""SageMaker's deployment guardrails on moto: a blue/green UpdateEndpoint that shifts traffic on a clock.

An UpdateEndpoint with `DeploymentConfig.BlueGreenUpdatePolicy` does not switch the endpoint at once:
the new config's fleet (green) takes traffic from the old one (blue) by its TrafficRoutingConfiguration
(CANARY, LINEAR, ALL_AT_ONCE), each shift baked for `WaitIntervalInSeconds`, the last one for
`TerminationWaitInSeconds` more, while the AutoRollbackConfiguration alarms are watched in moto's
CloudWatch. Meanwhile the endpoint is `Updating` on its old config, with the new one in
`PendingDeploymentSummary`, and InvokeEndpoint (`localcloud.sagemaker.runtime`) sends each request to the
green fleet with the share of the current stage. An alarm in ALARM, or the deployment outlasting
`MaximumExecutionTimeoutInSeconds`, rolls it back: the endpoint `InService` on its old config, the reason
in `FailureReason` and the policy in `LastDeploymentConfig`, which is all SageMaker reports of it.
What is and is not faithful: README.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig

Clock = Callable[[], float]
WHOLE = 100.0
ROUTING_TYPES = ("CANARY", "LINEAR", "ALL_AT_ONCE")


def describe(endpoint: FakeEndpoint, attribute: str, value: Any) -> None:
    """A field of DescribeEndpoint: moto shows every attribute of its endpoint under its CamelCase name
    (`pending_deployment_summary` as PendingDeploymentSummary) and leaves out the ones that are None."""
    setattr(endpoint, attribute, value)


@dataclass(frozen=True, slots=True)
class Stage:
    """The green fleet's share of the traffic, held for `bake_seconds` with the alarms watched."""

    green_percent: float
    bake_seconds: float


def traffic_stages(policy: Mapping[str, Any], green_instances: int) -> tuple[Stage, ...]:
    """The shifts of a BlueGreenUpdatePolicy, the last at 100 % baked `TerminationWaitInSeconds`.

    A size of type INSTANCE_COUNT is that share of the green fleet's instances.
    """
    routing = policy.get("TrafficRoutingConfiguration") or {}
    kind = str(routing.get("Type", ""))
    if kind not in ROUTING_TYPES:
        raise ValidationError(
            message=f"TrafficRoutingConfiguration.Type must be one of {', '.join(ROUTING_TYPES)}, "
            f"got {kind!r}."
        )
    wait = float(routing.get("WaitIntervalInSeconds", 0))
    termination = float(policy.get("TerminationWaitInSeconds", 0))
    if kind == "ALL_AT_ONCE":
        return (Stage(WHOLE, wait + termination),)
    size_key = "CanarySize" if kind == "CANARY" else "LinearStepSize"
    percent = _capacity_percent(routing.get(size_key), size_key, green_instances)
    if kind == "CANARY":
        return (Stage(percent, wait), Stage(WHOLE, termination))
    stages: list[Stage] = []
    share = percent
    while share < WHOLE:
        stages.append(Stage(share, wait))
        share += percent
    return (*stages, Stage(WHOLE, termination))


def _capacity_percent(size: Mapping[str, Any] | None, name: str, green_instances: int) -> float:
    if not size:
        raise ValidationError(message=f"TrafficRoutingConfiguration.{name} is required for this type.")
    value = float(size.get("Value", 0))
    kind = size.get("Type")
    if kind == "INSTANCE_COUNT":
        value = value / max(green_instances, 1) * WHOLE
    elif kind != "CAPACITY_PERCENT":
        raise ValidationError(
            message=f"{name}.Type must be INSTANCE_COUNT or CAPACITY_PERCENT, got {kind!r}."
        )
    if not 0 < value < WHOLE:
        raise ValidationError(
            message=f"{name} must be more than 0 and less than the whole fleet, got {value:g} %."
        )
    return value


@dataclass
class GuardedUpdate:
    """One blue/green deployment in progress on an endpoint."""

    endpoint: FakeEndpoint
    account_id: str
    region: str
    config: FakeEndpointConfig
    deployment_config: dict[str, Any]
    started: float
    stages: tuple[Stage, ...]
    timeout_seconds: float
    alarms: tuple[str, ...]
    clock: Clock
    on_complete: Callable[[FakeEndpoint, FakeEndpointConfig], None]
    ended: str | None = None  # "completed" or "rolled_back"
    history: list[tuple[float, float]] = field(default_factory=list)  # (elapsed, green percent) shifts

    def green_percent(self, elapsed: float) -> float:
        passed = 0.0
        for stage in self.stages:
            passed += stage.bake_seconds
            if elapsed < passed:
                return stage.green_percent
        return WHOLE

    @property
    def total_seconds(self) -> float:
        return sum(stage.bake_seconds for stage in self.stages)

    def advance(self) -> None:
        """Where the deployment stands now: shifted, completed, or rolled back by an alarm or the timeout."""
        if self.ended is not None:
            return
        elapsed = self.clock() - self.started
        tripped = self._alarms_in_alarm()
        if tripped:
            names = ", ".join(tripped)
            self._roll_back(f"Rolled back to the previous endpoint configuration: alarm(s) {names} in ALARM.")
            return
        if elapsed >= self.total_seconds:
            self.ended = "completed"
            self.on_complete(self.endpoint, self.config)
            describe(self.endpoint, "pending_deployment_summary", None)
            describe(self.endpoint, "last_deployment_config", self.deployment_config)
            return
        if elapsed >= self.timeout_seconds:
            self._roll_back(
                "Rolled back to the previous endpoint configuration: the deployment exceeded "
                f"MaximumExecutionTimeoutInSeconds ({self.timeout_seconds:g})."
            )
            return
        share = self.green_percent(elapsed)
        if not self.history or self.history[-1][1] != share:
            self.history.append((elapsed, share))
        describe(self.endpoint, "pending_deployment_summary", self._pending(share))

    def _alarms_in_alarm(self) -> list[str]:
        alarms = cloudwatch_backends[self.account_id][self.region].alarms
        return [name for name in self.alarms if name in alarms and alarms[name].state_value == "ALARM"]

    def _roll_back(self, reason: str) -> None:
        self.ended = "rolled_back"
        endpoint = self.endpoint
        endpoint.endpoint_status = "InService"
        describe(endpoint, "pending_deployment_summary", None)
        describe(endpoint, "failure_reason", reason)
        describe(endpoint, "last_deployment_config", self.deployment_config)

    def _pending(self, share: float) -> dict[str, Any]:
        started = datetime.fromtimestamp(self.started, UTC)
        status = "Baking" if self.history and self.history[-1][1] == share else "ActivatingTraffic"
        variants = []
        for variant in self.config.production_variants:
            weight = float(variant.get("InitialVariantWeight", 1.0))
            count = int(variant.get("InitialInstanceCount") or 1)
            variants.append(
                {
                    "VariantName": variant["VariantName"],
                    "CurrentWeight": weight,
                    "DesiredWeight": weight,
                    "CurrentInstanceCount": count,
                    "DesiredInstanceCount": count,
                    "VariantStatus": [
                        {
                            "Status": status,
                            "StatusMessage": f"the new fleet serves {share:g} % of the traffic",
                            "StartTime": started,
                        }
                    ],
                }
            )
        return {
            "EndpointConfigName": self.config.endpoint_config_name,
            "ProductionVariants": variants,
            "StartTime": started,
        }


@dataclass(frozen=True, slots=True)
class GreenFleet:
    """What InvokeEndpoint needs during a blue/green deployment: the new config and its share."""

    config: FakeEndpointConfig
    percent: float


class BlueGreenDeployments:
    """The blue/green deployments of one `emulate_update_endpoint` context, advanced on its clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._updates: dict[tuple[str, str, str], GuardedUpdate] = {}
        self.finished: list[GuardedUpdate] = []

    def start(
        self,
        endpoint: FakeEndpoint,
        config: FakeEndpointConfig,
        deployment_config: Mapping[str, Any],
        *,
        account_id: str,
        region: str,
        on_complete: Callable[[FakeEndpoint, FakeEndpointConfig], None],
    ) -> GuardedUpdate:
        policy = deployment_config["BlueGreenUpdatePolicy"]
        instances = sum(int(v.get("InitialInstanceCount") or 1) for v in config.production_variants)
        alarms = (deployment_config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        update = GuardedUpdate(
            endpoint=endpoint,
            account_id=account_id,
            region=region,
            config=config,
            deployment_config=dict(deployment_config),
            started=self.clock(),
            stages=traffic_stages(policy, instances),
            timeout_seconds=float(policy.get("MaximumExecutionTimeoutInSeconds", 14400)),
            alarms=tuple(str(alarm["AlarmName"]) for alarm in alarms),
            clock=self.clock,
            on_complete=on_complete,
        )
        with self._lock:
            endpoint.endpoint_status = "Updating"
            describe(endpoint, "failure_reason", None)
            self._updates[(account_id, region, endpoint.endpoint_name)] = update
            update.advance()
            self._settle(account_id, region, endpoint.endpoint_name)
        return update

    def in_progress(self, account_id: str, region: str, endpoint_name: str) -> GuardedUpdate | None:
        with self._lock:
            self.advance(account_id, region, endpoint_name)
            return self._updates.get((account_id, region, endpoint_name))

    def green_fleet(self, account_id: str, region: str, endpoint_name: str) -> GreenFleet | None:
        update = self.in_progress(account_id, region, endpoint_name)
        if update is None:
            return None
        return GreenFleet(update.config, update.green_percent(self.clock() - update.started))

    def advance(self, account_id: str, region: str, endpoint_name: str) -> None:
        with self._lock:
            update = self._updates.get((account_id, region, endpoint_name))
            if update is not None:
                update.advance()
                self._settle(account_id, region, endpoint_name)

    def advance_all(self) -> None:
        with self._lock:
            for key in list(self._updates):
                self.advance(*key)

    def _settle(self, account_id: str, region: str, endpoint_name: str) -> None:
        key = (account_id, region, endpoint_name)
        update = self._updates[key]
        if update.ended is not None:
            del self._updates[key]
            self.finished.append(update)

    def outcomes(self, endpoint_name: str) -> Sequence[str | None]:
        with self._lock:
            return [u.ended for u in self.finished if u.endpoint.endpoint_name == endpoint_name]


# The deployments of the open `emulate_update_endpoint` context, for the runtime's routing (one local
# cloud per process, as `localcloud.cloud` says): empty, or the one open.
_active: list[BlueGreenDeployments] = []


def activate(deployments: BlueGreenDeployments | None) -> None:
    _active.clear()
    if deployments is not None:
        _active.append(deployments)


def green_fleet(account_id: str, region: str, endpoint_name: str) -> GreenFleet | None:
    """The green fleet of a blue/green deployment in progress on the endpoint, if any."""
    return _active[0].green_fleet(account_id, region, endpoint_name) if _active else None
