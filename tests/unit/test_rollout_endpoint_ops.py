"""SageMaker requests of a rollout, built offline and checked against botocore's model of the API.

moto has no UpdateEndpoint (and so no DeploymentConfig) and drops ShadowProductionVariants, so these
requests are checked here: exact content, and validity against the SageMaker API's own input shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from lambdas.rollout.aws.endpoint_ops import (
    DeploymentFailed,
    DeploymentState,
    DeploymentTimedOut,
    LiveConfig,
    SilentRollbackDetected,
    UnexpectedEndpointShape,
    blue_green_deployment_config,
    challenger_config_request,
    classify_deployment,
    config_name_for,
    create_endpoint_config,
    ensure_running,
    model_name_for,
    resting_config_request,
    set_weights,
    update_endpoint,
    update_endpoint_request,
    wait_for_deployment,
)
from lambdas.rollout.payloads import BlueGreenPolicy, VariantNames
from lambdas.rollout.traffic import DesiredWeight, InvalidWeights

ENDPOINT = "mlrollout-dev-churn"
VARIANTS = VariantNames()
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 20,
    "DestinationS3Uri": "s3://artifacts/data-capture/churn",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
}


def assert_valid(operation: str, request: Mapping[str, Any]) -> None:
    """The request fits the SageMaker API's input shape (names, types, required members, ranges)."""
    shape = SAGEMAKER.operation_model(operation).input_shape
    assert shape is not None
    report = ParamValidator().validate(dict(request), shape)
    assert not report.has_errors(), report.generate_report()


def production_variant(name: str, model: str, weight: float) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model,
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": weight,
    }


LIVE = LiveConfig(
    name=f"{ENDPOINT}-bootstrap",
    production_variants=(
        production_variant("champion", "churn-v1", 1.0),
        production_variant("challenger", "churn-v1", 0.0),
    ),
    shadow_variants=(),
    carried={"DataCaptureConfig": CAPTURE, "KmsKeyId": KMS},
)


# --- names ------------------------------------------------------------------------------------------


def test_names_are_valid_sagemaker_names_and_stable_per_rollout() -> None:
    long_endpoint = "mlrollout-" + "e" * 16 + "-" + "n" * 24
    names = [
        config_name_for(
            long_endpoint, "arn:aws:states:us-east-1:123456789012:execution:sm:run-1", "rollback"
        ),
        model_name_for(long_endpoint, "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/12"),
    ]
    for name in names:
        assert len(name) <= 63
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name)
    assert config_name_for(ENDPOINT, "run-1", "deploy") == config_name_for(ENDPOINT, "run-1", "deploy")
    assert config_name_for(ENDPOINT, "run-1", "deploy") != config_name_for(ENDPOINT, "run-2", "deploy")
    assert config_name_for(ENDPOINT, "run-1", "deploy") != config_name_for(ENDPOINT, "run-1", "promote")


# --- endpoint configs ---------------------------------------------------------------------------------


def test_challenger_config_keeps_the_champion_and_adds_the_candidate_at_weight_zero() -> None:
    request = challenger_config_request(
        "cfg-deploy", LIVE, VARIANTS, challenger_model="churn-v2", shadow=False
    )
    assert request == {
        "EndpointConfigName": "cfg-deploy",
        "ProductionVariants": [
            production_variant("champion", "churn-v1", 100),
            production_variant("challenger", "churn-v2", 0.0),
        ],
        "DataCaptureConfig": CAPTURE,
        "KmsKeyId": KMS,
    }
    assert_valid("CreateEndpointConfig", request)


def test_shadow_config_mirrors_every_request_to_the_candidate() -> None:
    request = challenger_config_request(
        "cfg-deploy", LIVE, VARIANTS, challenger_model="churn-v2", shadow=True
    )
    assert request["ProductionVariants"] == [production_variant("champion", "churn-v1", 100)]
    assert request["ShadowProductionVariants"] == [production_variant("shadow", "churn-v2", 100)]
    assert_valid("CreateEndpointConfig", request)


def test_promotion_config_runs_the_candidate_as_the_champion_with_an_idle_slot() -> None:
    request = resting_config_request("cfg-promote", LIVE, VARIANTS, champion_model="churn-v2")
    assert request["ProductionVariants"] == [
        production_variant("champion", "churn-v2", 100),
        production_variant("challenger", "churn-v2", 0.0),
    ]
    assert request["KmsKeyId"] == KMS
    assert_valid("CreateEndpointConfig", request)


def test_rollback_config_without_idle_slot_has_only_the_champion() -> None:
    request = resting_config_request(
        "cfg-rollback", LIVE, VARIANTS, champion_model="churn-v1", keep_idle_slot=False
    )
    assert request["ProductionVariants"] == [production_variant("champion", "churn-v1", 100)]
    assert "ShadowProductionVariants" not in request


def test_resting_config_of_a_shadow_endpoint_keeps_its_shadow_slot() -> None:
    shadow_live = LiveConfig(
        name="cfg",
        production_variants=(production_variant("champion", "churn-v1", 1.0),),
        shadow_variants=(production_variant("shadow", "churn-v2", 1.0),),
        carried={},
    )
    request = resting_config_request("cfg-rollback", shadow_live, VARIANTS, champion_model="churn-v1")
    assert request["ShadowProductionVariants"] == [production_variant("shadow", "churn-v1", 100)]


def test_a_shadow_endpoint_rolled_back_from_its_gate_config_gets_its_shadow_slot_back() -> None:
    # The gate config of a shadow endpoint: the candidate at weight 0 in the challenger slot, no shadow.
    gate_config = LiveConfig(
        name="cfg-gate",
        production_variants=(
            production_variant("champion", "churn-v1", 1.0),
            production_variant("challenger", "churn-v2", 0.0),
        ),
        shadow_variants=(),
        carried={},
    )
    request = resting_config_request(
        "cfg-rollback", gate_config, VARIANTS, champion_model="churn-v1", shadow_slot=True
    )
    assert request["ProductionVariants"] == [production_variant("champion", "churn-v1", 100)]
    [shadow] = request["ShadowProductionVariants"]
    assert (shadow["VariantName"], shadow["ModelName"]) == ("shadow", "churn-v1")
    assert_valid("CreateEndpointConfig", request)


def test_a_live_config_without_the_champion_variant_is_refused() -> None:
    odd = LiveConfig(
        name="cfg",
        production_variants=(production_variant("blue", "m", 1.0),),
        shadow_variants=(),
        carried={},
    )
    with pytest.raises(UnexpectedEndpointShape, match="no variant 'champion'"):
        challenger_config_request("c", odd, VARIANTS, challenger_model="m2", shadow=False)


@dataclass
class FakeSageMaker:
    """Records every call; describe_endpoint answers from a script of descriptions."""

    descriptions: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    create_error: ClientError | None = None

    def describe_endpoint(self, *, EndpointName: str) -> Mapping[str, Any]:
        self.calls.append(("describe_endpoint", {"EndpointName": EndpointName}))
        return self.descriptions.pop(0) if len(self.descriptions) > 1 else self.descriptions[0]

    def describe_endpoint_config(self, *, EndpointConfigName: str) -> Mapping[str, Any]:
        self.calls.append(("describe_endpoint_config", {"EndpointConfigName": EndpointConfigName}))
        return {"EndpointConfigName": EndpointConfigName}

    def create_endpoint_config(self, **request: Any) -> Mapping[str, Any]:
        self.calls.append(("create_endpoint_config", request))
        if self.create_error:
            raise self.create_error
        return {}

    def update_endpoint(self, **request: Any) -> Mapping[str, Any]:
        self.calls.append(("update_endpoint", request))
        return {}

    def update_endpoint_weights_and_capacities(self, **request: Any) -> Mapping[str, Any]:
        self.calls.append(("update_endpoint_weights_and_capacities", request))
        return {}

    def describe_model(self, *, ModelName: str) -> Mapping[str, Any]:
        raise AssertionError("not called by these tests")

    def create_model(self, **request: Any) -> Mapping[str, Any]:
        raise AssertionError("not called by these tests")

    def describe_model_package(self, *, ModelPackageName: str) -> Mapping[str, Any]:
        raise AssertionError("not called by these tests")

    def update_model_package(self, **request: Any) -> Mapping[str, Any]:
        raise AssertionError("not called by these tests")


def client_error(message: str, code: str = "ValidationException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateEndpointConfig")


def test_a_config_created_by_an_earlier_try_is_reused() -> None:
    fake = FakeSageMaker(create_error=client_error("Cannot create already existing endpoint configuration"))
    assert create_endpoint_config(fake, {"EndpointConfigName": "cfg"}) == "cfg"
    assert [name for name, _ in fake.calls] == ["create_endpoint_config", "describe_endpoint_config"]


def test_other_config_errors_are_raised() -> None:
    fake = FakeSageMaker(create_error=client_error("Could not find model"))
    with pytest.raises(ClientError, match="Could not find model"):
        create_endpoint_config(fake, {"EndpointConfigName": "cfg"})


# --- blue/green -------------------------------------------------------------------------------------


def test_blue_green_canary_request_carries_the_policy_and_the_rollback_alarms() -> None:
    policy = BlueGreenPolicy(
        traffic_routing="CANARY",
        step_percent=10,
        wait_interval_seconds=600,
        termination_wait_seconds=300,
        maximum_execution_timeout_seconds=14400,
        rollback_alarm_names=("mlrollout-dev-churn-unhealthy",),
    )
    request = update_endpoint_request(ENDPOINT, "cfg-deploy", blue_green_deployment_config(policy))
    fake = FakeSageMaker(descriptions=[described("InService", "cfg-bootstrap")])
    assert update_endpoint(fake, request) is True
    assert fake.calls[1:] == [
        (
            "update_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointConfigName": "cfg-deploy",
                "RetainAllVariantProperties": False,
                "RetainDeploymentConfig": False,
                "DeploymentConfig": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "WaitIntervalInSeconds": 600,
                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                        },
                        "TerminationWaitInSeconds": 300,
                        "MaximumExecutionTimeoutInSeconds": 14400,
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "mlrollout-dev-churn-unhealthy"}]},
                },
            },
        )
    ]
    assert_valid("UpdateEndpoint", request)


def test_blue_green_linear_request_steps_linearly() -> None:
    policy = BlueGreenPolicy(traffic_routing="LINEAR", step_percent=25, rollback_alarm_names=("a", "b"))
    config = blue_green_deployment_config(policy)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 600,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}, {"AlarmName": "b"}]}
    assert_valid("UpdateEndpoint", update_endpoint_request(ENDPOINT, "cfg", config))


def test_all_at_once_without_alarms_has_no_step_and_no_auto_rollback() -> None:
    config = blue_green_deployment_config(BlueGreenPolicy(traffic_routing="ALL_AT_ONCE"))
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 600,
    }
    assert "AutoRollbackConfiguration" not in config
    assert_valid("UpdateEndpoint", update_endpoint_request(ENDPOINT, "cfg", config))


def test_plain_update_sets_no_deployment_config_and_retains_none() -> None:
    request = update_endpoint_request(ENDPOINT, "cfg-rollback")
    assert "DeploymentConfig" not in request
    assert request["RetainDeploymentConfig"] is False
    assert_valid("UpdateEndpoint", request)


# --- weights ----------------------------------------------------------------------------------------


def test_weights_are_set_for_champion_and_challenger() -> None:
    fake = FakeSageMaker()
    set_weights(fake, ENDPOINT, [DesiredWeight("champion", 95.0), DesiredWeight("challenger", 5.0)], VARIANTS)
    _, request = fake.calls[0]
    assert request["DesiredWeightsAndCapacities"] == [
        {"VariantName": "champion", "DesiredWeight": 95.0},
        {"VariantName": "challenger", "DesiredWeight": 5.0},
    ]
    assert_valid("UpdateEndpointWeightsAndCapacities", request)


def test_invalid_weights_are_refused_before_any_call() -> None:
    fake = FakeSageMaker()
    with pytest.raises(InvalidWeights):
        set_weights(fake, ENDPOINT, [DesiredWeight("champion", 95.0), DesiredWeight("blue", 5.0)], VARIANTS)
    assert fake.calls == []


# --- deployment outcome -------------------------------------------------------------------------------


def described(status: str, config: str, **extra: Any) -> dict[str, Any]:
    return {"EndpointName": ENDPOINT, "EndpointStatus": status, "EndpointConfigName": config, **extra}


@pytest.mark.parametrize(
    ("description", "state"),
    [
        (described("Updating", "old"), DeploymentState.IN_PROGRESS),
        (described("RollingBack", "new"), DeploymentState.IN_PROGRESS),
        (
            described("InService", "old", PendingDeploymentSummary={"EndpointConfigName": "new"}),
            DeploymentState.IN_PROGRESS,
        ),
        (described("InService", "new"), DeploymentState.RUNNING),
        (described("InService", "old"), DeploymentState.ROLLED_BACK),
        (described("Failed", "old", FailureReason="image not found"), DeploymentState.FAILED),
        (described("UpdateRollbackFailed", "old"), DeploymentState.FAILED),
    ],
)
def test_deployment_state_is_read_from_describe_endpoint(
    description: dict[str, Any], state: DeploymentState
) -> None:
    assert classify_deployment(description, "new").state is state


def test_a_guardrail_rollback_names_the_reason_and_the_alarms() -> None:
    description = described(
        "InService",
        "old",
        FailureReason="Alarm mlrollout-dev-churn-unhealthy went to ALARM during the deployment",
        LastDeploymentConfig={
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "mlrollout-dev-churn-unhealthy"}]}
        },
    )
    report = classify_deployment(description, "new")
    assert report.state is DeploymentState.ROLLED_BACK
    assert "went to ALARM" in report.reason
    assert "watching alarms mlrollout-dev-churn-unhealthy" in report.reason
    with pytest.raises(SilentRollbackDetected, match="runs config old, not new"):
        ensure_running(report)


def test_a_failed_update_is_reported_with_its_reason() -> None:
    with pytest.raises(DeploymentFailed, match="image not found"):
        ensure_running(
            classify_deployment(described("Failed", "old", FailureReason="image not found"), "new")
        )


def test_waiting_polls_with_the_injected_sleep_until_the_update_ends() -> None:
    fake = FakeSageMaker(
        descriptions=[
            described("Updating", "old"),
            described("Updating", "old"),
            described("InService", "new"),
        ]
    )
    slept: list[float] = []
    report = wait_for_deployment(fake, ENDPOINT, "new", sleep=slept.append, poll_seconds=15)
    assert report.state is DeploymentState.RUNNING
    assert slept == [15, 15]


def test_waiting_gives_up_after_the_last_poll() -> None:
    fake = FakeSageMaker(descriptions=[described("Updating", "old")])
    slept: list[float] = []
    with pytest.raises(DeploymentTimedOut, match="still Updating after 3 polls"):
        wait_for_deployment(fake, ENDPOINT, "new", sleep=slept.append, poll_seconds=1, max_polls=3)
    assert len(slept) == 2


@pytest.mark.parametrize(
    "description",
    [
        described("InService", "cfg-deploy"),
        described("Updating", "cfg-bootstrap", PendingDeploymentSummary={"EndpointConfigName": "cfg-deploy"}),
    ],
)
def test_an_update_already_made_by_an_earlier_try_is_not_sent_again(description: dict[str, Any]) -> None:
    fake = FakeSageMaker(descriptions=[description])
    assert update_endpoint(fake, update_endpoint_request(ENDPOINT, "cfg-deploy")) is False
    assert [name for name, _ in fake.calls] == ["describe_endpoint"]


def test_an_update_that_was_rolled_back_is_sent_again() -> None:
    fake = FakeSageMaker(descriptions=[described("InService", "cfg-bootstrap")])
    assert update_endpoint(fake, update_endpoint_request(ENDPOINT, "cfg-deploy")) is True
    assert [name for name, _ in fake.calls] == ["describe_endpoint", "update_endpoint"]
