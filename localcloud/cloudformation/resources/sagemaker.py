"""SageMaker models, endpoint configurations, endpoints and model package groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud.cloudformation.models import (
    DeployContext,
    DeployedResource,
    ResourceKind,
)
from localcloud.cloudformation.properties import (
    present_properties,
    same_names,
    tag_list,
)


def _create_model(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("ModelName"), max_length=63)
    request = {
        "ModelName": name,
        **present_properties(
            props,
            same_names(
                "ExecutionRoleArn",
                "PrimaryContainer",
                "Containers",
                "InferenceExecutionConfig",
                "VpcConfig",
                "EnableNetworkIsolation",
            ),
        ),
    }
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    arn = str(ctx.client("sagemaker").create_model(**request)["ModelArn"])
    return DeployedResource(logical_id, "AWS::SageMaker::Model", arn, name, {"ModelName": name})


def _create_endpoint_config(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("EndpointConfigName"), max_length=63)
    request = {
        "EndpointConfigName": name,
        **present_properties(
            props,
            same_names(
                "ProductionVariants",
                "DataCaptureConfig",
                "KmsKeyId",
                "AsyncInferenceConfig",
                "ShadowProductionVariants",
            ),
        ),
    }
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    arn = str(ctx.client("sagemaker").create_endpoint_config(**request)["EndpointConfigArn"])
    return DeployedResource(
        logical_id, "AWS::SageMaker::EndpointConfig", arn, name, {"EndpointConfigName": name}
    )


def _create_endpoint(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("EndpointName"), max_length=63)
    request = {
        "EndpointName": name,
        **present_properties(props, same_names("EndpointConfigName", "DeploymentConfig")),
    }
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    arn = str(ctx.client("sagemaker").create_endpoint(**request)["EndpointArn"])
    return DeployedResource(logical_id, "AWS::SageMaker::Endpoint", arn, name, {"EndpointName": name})


def _create_model_package_group(
    ctx: DeployContext, logical_id: str, props: dict[str, Any]
) -> DeployedResource:
    name = ctx.name(logical_id, props.get("ModelPackageGroupName"), max_length=63)
    request = {
        "ModelPackageGroupName": name,
        **present_properties(props, same_names("ModelPackageGroupDescription")),
    }
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    arn = str(ctx.client("sagemaker").create_model_package_group(**request)["ModelPackageGroupArn"])
    return DeployedResource(
        logical_id, "AWS::SageMaker::ModelPackageGroup", arn, name, {"ModelPackageGroupArn": arn}
    )


SAGEMAKER_KINDS: Mapping[str, ResourceKind] = {
    "AWS::SageMaker::Model": ResourceKind(
        _create_model,
        frozenset(
            {
                "ModelName",
                "ExecutionRoleArn",
                "PrimaryContainer",
                "Containers",
                "InferenceExecutionConfig",
                "VpcConfig",
                "EnableNetworkIsolation",
                "Tags",
            }
        ),
    ),
    "AWS::SageMaker::EndpointConfig": ResourceKind(
        _create_endpoint_config,
        frozenset(
            {
                "EndpointConfigName",
                "ProductionVariants",
                "DataCaptureConfig",
                "KmsKeyId",
                "AsyncInferenceConfig",
                "ShadowProductionVariants",
                "Tags",
            }
        ),
    ),
    "AWS::SageMaker::Endpoint": ResourceKind(
        _create_endpoint,
        frozenset({"EndpointName", "EndpointConfigName", "DeploymentConfig", "Tags"}),
        {
            "RetainAllVariantProperties": "applies to UpdateEndpoint only",
            "RetainDeploymentConfig": "applies to UpdateEndpoint only",
            "ExcludeRetainedVariantProperties": "applies to UpdateEndpoint only",
        },
    ),
    "AWS::SageMaker::ModelPackageGroup": ResourceKind(
        _create_model_package_group,
        frozenset({"ModelPackageGroupName", "ModelPackageGroupDescription", "Tags"}),
    ),
}
