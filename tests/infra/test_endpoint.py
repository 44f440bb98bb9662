"""The endpoint: variants, guardrails, autoscaling, and why a later deploy never reverts a promoted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Match

from infra.config import ENVIRONMENTS_DIR
from lambdas.rollout.aws.endpoint_ops import challenger_config_request, resting_config_request
from lambdas.rollout.payloads import VariantNames
from lambdas.shared.endpoint_config import LiveConfig
from tests.infra.conftest import Synthesized, synthesize

ENDPOINT_TYPES = ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint")


def test_endpoint_config_has_champion_at_full_weight_and_an_empty_challenger_slot(dev: Synthesized) -> None:
    endpoint = dev.config.endpoints[0]
    dev.template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "EndpointConfigName": "mlrollout-dev-churn-bootstrap",
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": "champion",
                        "InitialVariantWeight": 1,
                        "InstanceType": endpoint.instance_type,
                    }
                ),
                Match.object_like({"VariantName": "challenger", "InitialVariantWeight": 0}),
            ],
            "KmsKeyId": Match.any_value(),
        },
    )


def test_data_capture_writes_encrypted_to_the_artifact_bucket(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "DataCaptureConfig": Match.object_like(
                {
                    "EnableCapture": True,
                    "InitialSamplingPercentage": 20,
                    # The environment's artifact key, handed over to the family's stack in SSM.
                    "KmsKeyId": dev.platform_value("key"),
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                }
            )
        },
    )


def test_endpoint_has_blue_green_canary_with_auto_rollback_on_every_variant_alarm(dev: Synthesized) -> None:
    alarm_names = [
        f"mlrollout-dev-churn-{variant}-{kind}"
        for variant in ("champion", "challenger")
        for kind in ("5xx", "4xx", "latency-p99", "business")
    ]
    dev.template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": "mlrollout-dev-churn",
            "RetainAllVariantProperties": True,
            "RetainDeploymentConfig": True,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                        "WaitIntervalInSeconds": 600,
                    },
                    "TerminationWaitInSeconds": 300,
                    "MaximumExecutionTimeoutInSeconds": 14400,
                },
                "AutoRollbackConfiguration": {
                    "Alarms": Match.array_with([{"AlarmName": name} for name in alarm_names])
                },
            },
        },
    )
    # Every rollback alarm named by the endpoint exists in the stack under that name.
    existing = {
        alarm["Properties"].get("AlarmName") for alarm in dev.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarm_names) <= existing


def test_both_production_variants_autoscale_on_invocations_per_instance(dev: Synthesized) -> None:
    for variant in ("champion", "challenger"):
        dev.template.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {
                "ResourceId": f"endpoint/mlrollout-dev-churn/variant/{variant}",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "MinCapacity": 1,
                "MaxCapacity": 4,
            },
        )
    dev.template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": 200,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                }
            )
        },
    )


def test_scalable_targets_wait_for_the_endpoint(dev: Synthesized) -> None:
    endpoint_id = next(iter(dev.of_type("AWS::SageMaker::Endpoint")))
    for target in dev.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values():
        assert endpoint_id in target.get("DependsOn", [])


def test_execution_role_reads_only_model_artifacts_and_pulls_only_its_repository(dev: Synthesized) -> None:
    statements = [
        statement
        for policy in dev.of_type("AWS::IAM::Policy").values()
        if "ExecutionRole" in str(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    def granting(action: str) -> dict[str, Any]:
        matching: list[dict[str, Any]] = [
            statement for statement in statements if action in statement["Action"]
        ]
        assert len(matching) == 1
        return matching[0]

    assert "repository/mlrollout-inference" in str(granting("ecr:BatchGetImage")["Resource"])
    assert "models/*" in str(granting("s3:GetObject")["Resource"])
    assert "s3:*" not in str(statements)
    assert granting("cloudwatch:PutMetricData")["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}
    }


# --- A later `cdk deploy` never reverts a promoted model -------------------------------------------------


def _endpoint_resources(synthesized: Synthesized) -> dict[str, Any]:
    return {key: value for key, value in synthesized.resources.items() if value["Type"] in ENDPOINT_TYPES}


def _synth_with(tmp_path: Path, changes: dict[str, Any]) -> Synthesized:
    document: dict[str, Any] = yaml.safe_load((ENVIRONMENTS_DIR / "dev.yaml").read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(document))
    # dev releases into prod (its `release:`): the chain's next file is read at synth.
    (tmp_path / "prod.yaml").write_text((ENVIRONMENTS_DIR / "prod.yaml").read_text())
    return synthesize(tmp_path, config_dir=tmp_path)


@pytest.fixture(scope="module")
def runtime_changes_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Everything a platform team tunes day to day, changed at once."""
    return _synth_with(
        tmp_path_factory.mktemp("runtime-changes"),
        {
            "rollout.traffic_steps": [1, 10, 100],
            "rollout.bake_minutes": 45,
            "rollout.strategy": "linear",
            "rollout.gates.psi_max": 0.1,
            "alarms.error_5xx_rate_percent": 0.2,
            "alarms.model_latency_p99_ms": 120,
            "endpoints.0.autoscaling": {"min_capacity": 2, "max_capacity": 9},
            "endpoints.0.business_metric.threshold": 0.07,
            "notifications.emails": ["someone-else@example.com"],
            "flag_deployment.final_bake_minutes": 9,
        },
    )


def test_runtime_settings_leave_the_endpoint_resources_untouched(
    dev: Synthesized, runtime_changes_synth: Synthesized
) -> None:
    # Identical resources mean CloudFormation makes no UpdateEndpoint call: the promoted model stays.
    assert _endpoint_resources(runtime_changes_synth) == _endpoint_resources(dev)
    # ...while the changes did reach the resources they belong to.
    assert runtime_changes_synth.resources != dev.resources


@pytest.mark.parametrize(
    "changes",
    [
        {"endpoints.0.instance_type": "ml.c5.xlarge"},
        {"rollout.blue_green.traffic_routing": "LINEAR"},
        {
            "endpoints.0.initial_model.model_data_url": "s3://mlrollout-dev-bootstrap-models/churn/v9/model.tar.gz"
        },
    ],
    ids=["instance-type", "blue-green-policy", "initial-model"],
)
def test_bootstrap_change_forces_replacing_a_fixed_name_model_which_cloudformation_refuses(
    dev: Synthesized, tmp_path: Path, changes: dict[str, Any]
) -> None:
    changed = _synth_with(tmp_path, changes)

    def model(synthesized: Synthesized) -> dict[str, Any]:
        (only,) = synthesized.of_type("AWS::SageMaker::Model").values()
        properties: dict[str, Any] = only["Properties"]
        return properties

    before, after = model(dev), model(changed)
    # Every Model property requires replacement, and a fixed ModelName makes replacement fail the
    # deploy before the Endpoint (which depends on the Model) is touched.
    assert before["ModelName"] == after["ModelName"] == "mlrollout-dev-churn-bootstrap"
    assert before["PrimaryContainer"] != after["PrimaryContainer"]
    before_variables = before["PrimaryContainer"]["Environment"]
    after_variables = after["PrimaryContainer"]["Environment"]
    assert (
        before_variables["MLROLLOUT_BOOTSTRAP_FINGERPRINT"]
        != after_variables["MLROLLOUT_BOOTSTRAP_FINGERPRINT"]
    )
    endpoint_config = next(iter(changed.of_type("AWS::SageMaker::EndpointConfig").values()))
    assert endpoint_config["Properties"]["EndpointConfigName"] == "mlrollout-dev-churn-bootstrap"


def test_every_config_the_rollout_sends_keeps_a_scalable_target_for_each_variant_it_serves(
    dev: Synthesized,
) -> None:
    """SageMaker refuses an update that removes a variant registered with Application Auto Scaling, and a
    variant without a target never scales: the deploy, promote and rollback configs, built from the
    bootstrap config, serve exactly the variants the stack registers, with the instances they run now."""
    endpoint = dev.config.endpoints[0]
    [config] = dev.of_type("AWS::SageMaker::EndpointConfig").values()
    live = LiveConfig(
        name=config["Properties"]["EndpointConfigName"],
        production_variants=tuple(
            variant | {"ModelName": "bootstrap-model"}
            for variant in config["Properties"]["ProductionVariants"]
        ),
        shadow_variants=(),
        carried={},
        instance_counts={"champion": 6},  # autoscaling raised the champion
    )
    scaled = {
        target["Properties"]["ResourceId"].rsplit("/", 1)[-1]
        for target in dev.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values()
    }
    variants = VariantNames.model_validate(endpoint.variants.model_dump())
    requests = [
        challenger_config_request("deploy", live, variants, challenger_model="candidate", shadow=False),
        resting_config_request("promote", live, variants, champion_model="candidate"),
        resting_config_request("rollback", live, variants, champion_model="bootstrap-model"),
    ]
    assert scaled == {endpoint.variants.champion, endpoint.variants.challenger}
    for request in requests:
        served = {variant["VariantName"]: variant for variant in request["ProductionVariants"]}
        assert set(served) == scaled, request["EndpointConfigName"]
        assert "ShadowProductionVariants" not in request
        assert served[endpoint.variants.champion]["InitialInstanceCount"] == 6
        assert served[endpoint.variants.challenger]["InitialInstanceCount"] == endpoint.initial_instance_count
