"""SageMaker operations of a rollout: models, endpoint configs, updates, weights, and the registry.

The endpoint's shape follows ``infra/endpoint.py``: a ``champion`` production variant that keeps its
name for good, and a challenger slot beside it (a production variant at weight 0, or a shadow variant
on a shadow endpoint). The rollout creates its own endpoint configs:

* gate       -- (shadow and blue_green) the live champion unchanged plus the candidate in the challenger
                slot at weight 0, where the pre-traffic gates ask it: SageMaker routes no TargetVariant
                to a shadow variant, and blue/green shifts traffic as soon as it deploys;
* deploy     -- the live champion unchanged (model, instances, weight 100) plus the candidate in the
                challenger slot at weight 0, or as the shadow variant (it sees a copy of every request);
* promote    -- the candidate's model becomes the ``champion`` variant's model at weight 100;
* roll back  -- the live champion's model alone serves, the candidate is gone.

After promote and roll back the endpoint is in its resting shape, the one CloudFormation bootstrapped:
the challenger slot idles at weight 0 on the champion's own model, so autoscaling targets, alarms and
the router's catalog keep a variant to refer to (``keep_idle_slot=False`` drops the slot instead).
Every new config carries over the live config's data capture and KMS key.

Requests are built by pure functions (``*_request``) and sent by small functions that take the client.
Config names derive from the rollout id and model names from the package, so a retried step finds what
an earlier try created, and an update the endpoint already runs is not sent again. SageMaker can roll
an update back silently (its deployment guardrails, or a failed fleet), so after every update the
endpoint's running config is compared with the one that was set (``wait_for_deployment`` then
``ensure_running``). Weights are whole percentages (``WEIGHT_WHOLE``); SageMaker reads them as relative.

Not checkable on moto (it has no UpdateEndpoint and drops ShadowProductionVariants): the requests are
validated offline against botocore's SageMaker API model in ``tests/unit/test_rollout_endpoint_ops.py``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError

from lambdas.rollout.payloads import WEIGHT_WHOLE, BlueGreenPolicy, VariantNames, package_group_of
from lambdas.rollout.traffic import DesiredWeight, validate_weights
from lambdas.shared.endpoint_config import (
    LiveConfig,
    UnexpectedEndpointShape,
    read_live_config,
)

__all__ = [
    "ConfigPurpose",
    "DeploymentFailed",
    "DeploymentReport",
    "DeploymentState",
    "DeploymentTimedOut",
    "EndpointOpsError",
    "LiveConfig",
    "PackageNotInFamily",
    "SageMakerControl",
    "SilentRollbackDetected",
    "UnexpectedEndpointShape",
    "approve_package",
    "blue_green_deployment_config",
    "challenger_config_request",
    "classify_deployment",
    "config_name_for",
    "create_endpoint_config",
    "create_model_from_package",
    "ensure_running",
    "model_name_for",
    "read_live_config",
    "reject_package",
    "resting_config_request",
    "return_package_for_approval",
    "set_weights",
    "update_endpoint",
    "update_endpoint_request",
    "wait_for_deployment",
]

ConfigPurpose = Literal["gate", "deploy", "promote", "rollback"]
# Per-variant settings copied from the champion to the challenger slot (the model is set separately).
VARIANT_SETTINGS = (
    "InstanceType",
    "InitialInstanceCount",
    "ServerlessConfig",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
)
IN_PROGRESS_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
APPROVAL_DESCRIPTION_MAX = 1024


class SageMakerControl(Protocol):
    """The SageMaker control-plane calls of a rollout (boto3's `sagemaker` client has them)."""

    def describe_endpoint(self, *, EndpointName: str) -> Mapping[str, Any]: ...
    def describe_endpoint_config(self, *, EndpointConfigName: str) -> Mapping[str, Any]: ...
    def describe_model(self, *, ModelName: str) -> Mapping[str, Any]: ...
    def create_model(self, **request: Any) -> Mapping[str, Any]: ...
    def create_endpoint_config(self, **request: Any) -> Mapping[str, Any]: ...
    def update_endpoint(self, **request: Any) -> Mapping[str, Any]: ...
    def update_endpoint_weights_and_capacities(self, **request: Any) -> Mapping[str, Any]: ...
    def describe_model_package(self, *, ModelPackageName: str) -> Mapping[str, Any]: ...
    def update_model_package(self, **request: Any) -> Mapping[str, Any]: ...


class EndpointOpsError(Exception):
    """A SageMaker operation of the rollout did not end as intended."""


class SilentRollbackDetected(EndpointOpsError):
    """The endpoint is in service, but not with the config that was set."""

    def __init__(self, report: DeploymentReport) -> None:
        super().__init__(
            f"endpoint {report.endpoint_name} runs config {report.running_config}, not "
            f"{report.expected_config}: SageMaker rolled the update back ({report.reason})"
        )
        self.report = report


class DeploymentFailed(EndpointOpsError):
    """The endpoint ended an update failed or out of service."""


class DeploymentTimedOut(EndpointOpsError):
    """The endpoint was still updating after the last poll."""


class PackageNotInFamily(EndpointOpsError):
    """The model package belongs to another package group than the endpoint's family."""


# --- names ------------------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:10]


def _named(endpoint_name: str, tag: str, digest: str) -> str:
    # SageMaker names end at 63 characters: 42 + "-" + tag (<= 8) + "-" + 10.
    return f"{endpoint_name[:42].rstrip('-')}-{tag}-{digest}"


def model_name_for(endpoint_name: str, model_package_arn: str) -> str:
    """One model per endpoint and package: a retried deploy finds the model it created."""
    return _named(endpoint_name, "model", _digest(model_package_arn))


def config_name_for(endpoint_name: str, rollout_id: str, purpose: ConfigPurpose) -> str:
    """One config per rollout and purpose: a retried step finds the config it created."""
    return _named(endpoint_name, purpose, _digest(rollout_id, purpose))


# --- the live endpoint ------------------------------------------------------------------------------


# --- models -----------------------------------------------------------------------------------------


def create_model_from_package(
    client: SageMakerControl,
    *,
    model_name: str,
    model_package_arn: str,
    execution_role_arn: str,
    expected_group: str,
) -> str:
    """A model from a registered package (after checking its family); an existing one is reused."""
    registered = client.describe_model_package(ModelPackageName=model_package_arn)
    group = str(registered.get("ModelPackageGroupName") or package_group_of(model_package_arn) or "")
    if group != expected_group:
        raise PackageNotInFamily(
            f"model package {model_package_arn} is in group {group!r}, not the endpoint's {expected_group!r}"
        )
    request = {
        "ModelName": model_name,
        "ExecutionRoleArn": execution_role_arn,
        "Containers": [{"ModelPackageName": model_package_arn}],
    }
    _create_once(lambda: client.create_model(**request), lambda: client.describe_model(ModelName=model_name))
    return model_name


def _create_once(create: Callable[[], object], exists: Callable[[], object]) -> None:
    """Create, or accept that an earlier try of the same step created it already."""
    try:
        create()
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "already exist" not in message:
            raise
        exists()  # raises if it does not, after all


# --- endpoint configs -------------------------------------------------------------------------------


def _variant_like(
    template: Mapping[str, Any], *, name: str, model_name: str, weight: float, instances: int | None = None
) -> dict[str, Any]:
    variant = {key: template[key] for key in VARIANT_SETTINGS if key in template}
    if instances is not None and "InitialInstanceCount" in variant:
        variant["InitialInstanceCount"] = instances
    return variant | {"VariantName": name, "ModelName": model_name, "InitialVariantWeight": weight}


def _slot_instances(live: LiveConfig, slot: str) -> int | None:
    """The instances a challenger or shadow slot starts with: its own in the live config (the initial
    count), not the champion's, which autoscaling may have raised."""
    try:
        count = live.variant(slot).get("InitialInstanceCount")
    except UnexpectedEndpointShape:
        return None
    return int(count) if count else None


def challenger_config_request(
    config_name: str, live: LiveConfig, variants: VariantNames, *, challenger_model: str, shadow: bool
) -> dict[str, Any]:
    """The live champion unchanged at the whole weight, the candidate beside it at 0 or as the shadow."""
    champion = live.variant(variants.champion)
    # The champion keeps the instances it runs now (autoscaled); the candidate starts at the initial count.
    request: dict[str, Any] = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [
            _variant_like(
                champion,
                name=variants.champion,
                model_name=champion["ModelName"],
                weight=WEIGHT_WHOLE,
                instances=live.instance_count(variants.champion),
            )
        ],
        **live.carried,
    }
    if shadow:
        # A shadow variant's weight is relative to the production variant's: the whole = every request.
        request["ShadowProductionVariants"] = [
            _variant_like(
                champion,
                name=variants.shadow,
                model_name=challenger_model,
                weight=WEIGHT_WHOLE,
                instances=_slot_instances(live, variants.shadow),
            )
        ]
    else:
        request["ProductionVariants"].append(
            _variant_like(
                champion,
                name=variants.challenger,
                model_name=challenger_model,
                weight=0.0,
                instances=_slot_instances(live, variants.challenger),
            )
        )
    return request


def resting_config_request(
    config_name: str,
    live: LiveConfig,
    variants: VariantNames,
    *,
    champion_model: str,
    keep_idle_slot: bool = True,
    shadow_slot: bool | None = None,
) -> dict[str, Any]:
    """`champion_model` alone serves, as the champion variant; the challenger slot idles on it or is gone.

    Promotion passes the candidate's model, a rollback the live champion's. The idle slot is a shadow
    variant when `shadow_slot` says so, or (None) when the live config has one: a shadow endpoint rolled
    back from its gate config, which has no shadow, passes True.
    """
    champion = live.variant(variants.champion)
    # Whichever model serves as champion takes the champion's traffic: it keeps the instances the
    # champion runs now (autoscaled), not the config's initial count; the idle slot keeps the initial.
    request: dict[str, Any] = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [
            _variant_like(
                champion,
                name=variants.champion,
                model_name=champion_model,
                weight=WEIGHT_WHOLE,
                instances=live.instance_count(variants.champion),
            )
        ],
        **live.carried,
    }
    if not keep_idle_slot:
        return request
    if shadow_slot if shadow_slot is not None else bool(live.shadow_variants):
        request["ShadowProductionVariants"] = [
            _variant_like(
                champion,
                name=variants.shadow,
                model_name=champion_model,
                weight=WEIGHT_WHOLE,
                instances=_slot_instances(live, variants.shadow),
            )
        ]
    else:
        request["ProductionVariants"].append(
            _variant_like(
                champion,
                name=variants.challenger,
                model_name=champion_model,
                weight=0.0,
                instances=_slot_instances(live, variants.challenger),
            )
        )
    return request


def create_endpoint_config(client: SageMakerControl, request: Mapping[str, Any]) -> str:
    name = str(request["EndpointConfigName"])
    _create_once(
        lambda: client.create_endpoint_config(**request),
        lambda: client.describe_endpoint_config(EndpointConfigName=name),
    )
    return name


# --- updates and deployment guardrails --------------------------------------------------------------


def blue_green_deployment_config(policy: BlueGreenPolicy) -> dict[str, Any]:
    """Deployment guardrails: blue/green traffic shifting, rolled back by SageMaker if an alarm fires."""
    routing: dict[str, Any] = {
        "Type": policy.traffic_routing,
        "WaitIntervalInSeconds": policy.wait_interval_seconds,
    }
    step = {"Type": "CAPACITY_PERCENT", "Value": policy.step_percent}
    if policy.traffic_routing == "CANARY":
        routing["CanarySize"] = step
    elif policy.traffic_routing == "LINEAR":
        routing["LinearStepSize"] = step
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": policy.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": policy.maximum_execution_timeout_seconds,
        }
    }
    if policy.rollback_alarm_names:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in policy.rollback_alarm_names]
        }
    return config


def update_endpoint_request(
    endpoint_name: str, config_name: str, deployment_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """UpdateEndpoint to a new config; the config's variant weights apply (none are retained).

    Without a deployment config SageMaker swaps the fleet all at once and watches no alarms: right for
    a rollback, whose alarms may be the very reason for it and would otherwise undo it.
    """
    request: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "EndpointConfigName": config_name,
        "RetainAllVariantProperties": False,
        "RetainDeploymentConfig": False,
    }
    if deployment_config is not None:
        request["DeploymentConfig"] = dict(deployment_config)
    return request


def update_endpoint(client: SageMakerControl, request: Mapping[str, Any]) -> bool:
    """UpdateEndpoint, unless the endpoint already runs or is moving to that config (a retried step).

    False when nothing was sent. An update of a rolled-back config is sent again: that is a new try.
    """
    description = client.describe_endpoint(EndpointName=str(request["EndpointName"]))
    target = request["EndpointConfigName"]
    pending = (description.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if target in (description.get("EndpointConfigName"), pending):
        return False
    client.update_endpoint(**request)
    return True


def set_weights(
    client: SageMakerControl, endpoint_name: str, weights: Sequence[DesiredWeight], variants: VariantNames
) -> None:
    """UpdateEndpointWeightsAndCapacities for champion and challenger (checked first: nothing half set)."""
    validate_weights(weights, variants)
    client.update_endpoint_weights_and_capacities(
        EndpointName=endpoint_name, DesiredWeightsAndCapacities=[weight.as_request() for weight in weights]
    )


class DeploymentState(StrEnum):
    IN_PROGRESS = "in_progress"
    RUNNING = "running"
    """In service with the config that was set."""
    ROLLED_BACK = "rolled_back"
    """In service with another config: guardrails (or a failed update) put the old one back."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeploymentReport:
    state: DeploymentState
    endpoint_name: str
    expected_config: str
    running_config: str
    status: str
    reason: str


def classify_deployment(description: Mapping[str, Any], expected_config: str) -> DeploymentReport:
    """Where an update stands, from DescribeEndpoint."""
    status = str(description.get("EndpointStatus", ""))
    running = str(description.get("EndpointConfigName", ""))
    pending = (description.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    common = {
        "endpoint_name": str(description.get("EndpointName", "")),
        "expected_config": expected_config,
        "running_config": running,
        "status": status,
    }
    failure = str(description.get("FailureReason") or "")
    if status in IN_PROGRESS_STATUSES or (
        status == "InService" and running != expected_config and pending == expected_config
    ):
        return DeploymentReport(DeploymentState.IN_PROGRESS, reason=failure, **common)
    if status != "InService":
        return DeploymentReport(
            DeploymentState.FAILED, reason=failure or f"endpoint status {status}", **common
        )
    if running == expected_config:
        return DeploymentReport(DeploymentState.RUNNING, reason="", **common)
    return DeploymentReport(
        DeploymentState.ROLLED_BACK, reason=_rollback_reason(description, failure), **common
    )


def _rollback_reason(description: Mapping[str, Any], failure: str) -> str:
    last_deployment = description.get("LastDeploymentConfig") or {}
    auto_rollback = last_deployment.get("AutoRollbackConfiguration") or {}
    alarms = [str(alarm.get("AlarmName")) for alarm in auto_rollback.get("Alarms", [])]
    watched = f"deployment guardrails watching alarms {', '.join(alarms)}" if alarms else "no alarms watched"
    return f"{failure or 'no failure reason given'}; {watched}"


def wait_for_deployment(
    client: SageMakerControl,
    endpoint_name: str,
    expected_config: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 30.0,
    max_polls: int = 120,
) -> DeploymentReport:
    """Poll DescribeEndpoint until the update has ended; DeploymentTimedOut after `max_polls`."""
    if max_polls < 1:
        raise ValueError(f"max_polls must be at least 1, got {max_polls}")
    report: DeploymentReport | None = None
    for poll in range(max_polls):
        report = classify_deployment(client.describe_endpoint(EndpointName=endpoint_name), expected_config)
        if report.state is not DeploymentState.IN_PROGRESS:
            return report
        if poll < max_polls - 1:
            sleep(poll_seconds)
    raise DeploymentTimedOut(
        f"endpoint {endpoint_name} still {report.status if report else 'unknown'} after {max_polls} polls "
        f"{poll_seconds:g} s apart"
    )


def ensure_running(report: DeploymentReport) -> None:
    """Accept only the config that was set, in service."""
    if report.state is DeploymentState.RUNNING:
        return
    if report.state is DeploymentState.ROLLED_BACK:
        raise SilentRollbackDetected(report)
    raise DeploymentFailed(
        f"endpoint {report.endpoint_name} update to {report.expected_config} ended "
        f"{report.status}: {report.reason}"
    )


# --- the model registry -----------------------------------------------------------------------------


def _merged_metadata(
    client: SageMakerControl, model_package_arn: str, summary: Mapping[str, str]
) -> dict[str, str]:
    # UpdateModelPackage adds keys on AWS; moto replaces the map. Sending the merge is right on both.
    current = client.describe_model_package(ModelPackageName=model_package_arn)
    return dict(current.get("CustomerMetadataProperties") or {}) | dict(summary)


def approve_package(
    client: SageMakerControl, model_package_arn: str, summary: Mapping[str, str], description: str
) -> None:
    """Approved, with the rollout's summary in the package's metadata."""
    client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription=description[:APPROVAL_DESCRIPTION_MAX],
        CustomerMetadataProperties=_merged_metadata(client, model_package_arn, summary),
    )


def reject_package(
    client: SageMakerControl, model_package_arn: str, summary: Mapping[str, str], reason: str
) -> None:
    """Rejected, with the reason as the approval description and the summary in the metadata."""
    client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelApprovalStatus="Rejected",
        ApprovalDescription=reason[:APPROVAL_DESCRIPTION_MAX],
        CustomerMetadataProperties=_merged_metadata(client, model_package_arn, summary),
    )


def return_package_for_approval(
    client: SageMakerControl, model_package_arn: str, summary: Mapping[str, str], reason: str
) -> None:
    """Pending a person's approval, with the reason as the approval description: nothing was shown wrong
    with the model, and approving it again (the plan changed) starts a new rollout."""
    client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelApprovalStatus="PendingManualApproval",
        ApprovalDescription=reason[:APPROVAL_DESCRIPTION_MAX],
        CustomerMetadataProperties=_merged_metadata(client, model_package_arn, summary),
    )
