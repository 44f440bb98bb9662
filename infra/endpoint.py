"""A SageMaker real-time endpoint with a champion and a challenger slot, guardrails and autoscaling.

Who owns what: CloudFormation creates the endpoint with the *bootstrap* model from the config;
from then on the model versions it serves are runtime state owned by the rollout workflow,
which creates its own endpoint configs. So a later `cdk deploy` must never move the endpoint
back to the bootstrap model. Three things make that hold:

1. The Model, EndpointConfig and Endpoint properties depend only on the *bootstrap fields*
   (the endpoint entry less autoscaling and business metric, the blue/green policy, the
   rollback alarm names). Changing anything else (rollout steps, judge, gates, alarm
   thresholds, autoscaling, flags, notifications) leaves the three resources byte-identical,
   so CloudFormation does not call UpdateEndpoint. `tests/infra/test_endpoint.py` proves it.
2. A tripwire for the bootstrap fields: their fingerprint is an environment variable of the
   bootstrap Model, and the Model and EndpointConfig have fixed physical names. Any change
   to a bootstrap field changes the Model, which needs a replacement, and CloudFormation
   refuses to replace a custom-named resource. The Model is updated before the Endpoint
   (it depends on it), so the deploy fails loudly and rolls back with the endpoint
   untouched, instead of silently redeploying the bootstrap model over a promoted one (an
   UpdateEndpoint would otherwise follow from a changed DeploymentConfig alone). Bootstrap
   fields take effect at run time through the next rollout (README, "Model versions after
   the first deploy").
3. `RetainAllVariantProperties` and `RetainDeploymentConfig` keep the weights and instance
   counts the workflow set if CloudFormation ever does update the endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import ECR_IMAGE_PATTERN, Endpoint, Rollout
from infra.nag import acknowledge_wildcard_resources

VARIANT_SCALING_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
FINGERPRINT_VARIABLE = "MLROLLOUT_BOOTSTRAP_FINGERPRINT"
# Fields of an endpoint entry that CloudFormation may change freely: they shape no endpoint resource.
RUNTIME_ENDPOINT_FIELDS = frozenset({"autoscaling", "business_metric"})


EXECUTION_ROLE_SUFFIX = "-sagemaker"


def execution_role_name(endpoint_name: str) -> str:
    """The endpoint's SageMaker execution role (IAM allows 64 characters; endpoint names have 50 at most)."""
    return f"{endpoint_name}{EXECUTION_ROLE_SUFFIX}"


def bootstrap_fingerprint(
    endpoint_name: str, endpoint: Endpoint, rollout: Rollout, rollback_alarm_names: Sequence[str]
) -> str:
    """A stable digest of every setting the endpoint's CloudFormation resources are built from."""
    fields = {
        "endpoint_name": endpoint_name,
        "endpoint": endpoint.model_dump(mode="json", exclude=set(RUNTIME_ENDPOINT_FIELDS)),
        "blue_green": rollout.blue_green.model_dump(mode="json"),
        "rollback_alarm_names": sorted(rollback_alarm_names),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


class ModelEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        endpoint: Endpoint,
        rollout: Rollout,
        artifact_bucket: s3.IBucket,
        artifact_key: kms.IKey,
        rollback_alarm_names: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.bootstrap_name = f"{endpoint_name}-bootstrap"
        self.champion_variant = endpoint.variants.champion
        self.challenger_variant = (
            endpoint.variants.shadow if endpoint.shadow else endpoint.variants.challenger
        )
        self.data_capture_prefix = f"data-capture/{endpoint.name}/"

        self.execution_role = self._execution_role(endpoint, artifact_bucket, artifact_key)
        model = sagemaker.CfnModel(
            self,
            "BootstrapModel",
            model_name=self.bootstrap_name,
            execution_role_arn=self.execution_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=endpoint.initial_model.image_uri,
                model_data_url=endpoint.initial_model.model_data_url,
                environment={
                    FINGERPRINT_VARIABLE: bootstrap_fingerprint(
                        endpoint_name, endpoint, rollout, rollback_alarm_names
                    )
                },
            ),
        )
        # SageMaker checks the role's permissions when it creates the model: wait for its policy.
        model.node.add_dependency(self.execution_role.node.find_child("DefaultPolicy"))
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "BootstrapConfig",
            endpoint_config_name=self.bootstrap_name,
            kms_key_id=artifact_key.key_arn,
            **self._variants(endpoint, model.attr_model_name),  # type: ignore[arg-type]
            data_capture_config=self._data_capture(endpoint, artifact_bucket, artifact_key),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
            retain_all_variant_properties=True,
            retain_deployment_config=True,
            deployment_config=deployment_config(rollout, rollback_alarm_names),
        )
        self.scalable_targets = [
            self._autoscaling(endpoint, variant)
            for variant in (self.champion_variant, endpoint.variants.challenger)
            if not (endpoint.shadow and variant == endpoint.variants.challenger)
        ]

    def _variants(self, endpoint: Endpoint, model_name: str) -> dict[str, object]:
        def variant(name: str, weight: float) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=name,
                model_name=model_name,
                initial_variant_weight=weight,
                instance_type=endpoint.instance_type,
                initial_instance_count=endpoint.initial_instance_count,
            )

        champion = variant(endpoint.variants.champion, 1.0)
        if endpoint.shadow:
            # SageMaker shadow testing allows one production variant beside the shadow one.
            return {
                "production_variants": [champion],
                "shadow_production_variants": [variant(endpoint.variants.shadow, 1.0)],
            }
        # The challenger slot takes no traffic until a rollout gives it weight.
        return {"production_variants": [champion, variant(endpoint.variants.challenger, 0.0)]}

    def _data_capture(
        self, endpoint: Endpoint, bucket: s3.IBucket, key: kms.IKey
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        if not endpoint.data_capture.enabled:
            return None
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=endpoint.data_capture.sampling_percentage,
            destination_s3_uri=bucket.s3_url_for_object(self.data_capture_prefix.rstrip("/")),
            kms_key_id=key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                json_content_types=["application/json"], csv_content_types=["text/csv"]
            ),
        )

    def _execution_role(self, endpoint: Endpoint, bucket: s3.IBucket, key: kms.IKey) -> iam.Role:
        stack = Stack.of(self)
        image = re.match(ECR_IMAGE_PATTERN, endpoint.initial_model.image_uri)
        assert image is not None  # the config model validated the pattern
        repository_arn = (
            f"arn:{stack.partition}:ecr:{image['region']}:{image['account']}:repository/{image['repository']}"
        )
        bootstrap_artifact = endpoint.initial_model.model_data_url.removeprefix("s3://")
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role = iam.Role(
            self,
            "ExecutionRole",
            # Named, so the environment's functions (another stack) pass it by name, not by reference.
            role_name=execution_role_name(self.endpoint_name),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role of {self.endpoint_name}",
        )
        capture_objects = bucket.arn_for_objects(f"{self.data_capture_prefix}*")
        model_objects = bucket.arn_for_objects("models/*")
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{stack.partition}:s3:::{bootstrap_artifact}", model_objects],
            ),
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[capture_objects]),
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], resources=[key.key_arn]
            ),
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[repository_arn],
            ),
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group_arn],
            ),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        acknowledge_wildcard_resources(
            role, [model_objects], "SageMaker loads whichever model version a rollout deploys under models/."
        )
        acknowledge_wildcard_resources(
            role, [capture_objects], "Data capture writes one object per request batch under its own prefix."
        )
        acknowledge_wildcard_resources(
            role, [log_group_arn], "Log streams of this endpoint only; SageMaker names one per instance."
        )
        acknowledge_wildcard_resources(
            role,
            ["*"],
            "ecr:GetAuthorizationToken has no resource-level permission; PutMetricData is limited by a "
            "cloudwatch:namespace condition to the endpoint's own namespace.",
        )
        return role

    def _autoscaling(self, endpoint: Endpoint, variant: str) -> autoscaling.ScalableTarget:
        target = autoscaling.ScalableTarget(
            self,
            f"Scaling-{variant}",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{variant}",
            scalable_dimension=VARIANT_SCALING_DIMENSION,
            min_capacity=endpoint.autoscaling.min_capacity,
            max_capacity=endpoint.autoscaling.max_capacity,
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=endpoint.autoscaling.target_invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.seconds(endpoint.autoscaling.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(endpoint.autoscaling.scale_out_cooldown_seconds),
        )
        return target


def deployment_config(
    rollout: Rollout, rollback_alarm_names: Sequence[str]
) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """SageMaker deployment guardrails: blue/green traffic shifting with alarm-driven auto-rollback."""
    policy = rollout.blue_green
    step = sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=policy.step_percent)
    routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=policy.traffic_routing,
        wait_interval_in_seconds=policy.wait_interval_seconds,
        canary_size=step if policy.traffic_routing == "CANARY" else None,
        linear_step_size=step if policy.traffic_routing == "LINEAR" else None,
    )
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=policy.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=policy.maximum_execution_timeout_seconds,
        ),
        auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in rollback_alarm_names]
        ),
    )
