"""AppConfig's resources: moto's own (applications, profiles, versions) and the emulation's (the rest)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from localcloud.cloudformation.models import (
    AppConfigUnavailableError,
    Creator,
    DeployContext,
    DeployedResource,
    ResourceKind,
    SkippedResource,
    unimplemented,
)
from localcloud.cloudformation.properties import (
    present_properties,
    same_names,
    tag_map,
)


def _appconfig(
    ctx: DeployContext, logical_id: str, operation: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        response: dict[str, Any] = getattr(ctx.client("appconfig"), operation)(**request)
    except (ClientError, NotImplementedError) as error:
        if not unimplemented(error):
            raise
        reason = f"moto has no AppConfig {operation} and localcloud.appconfig.routing is not open"
        if not ctx.require_appconfig:
            raise SkippedResource(reason) from error
        raise AppConfigUnavailableError(
            f"{ctx.template.name}/{logical_id}: {reason}; open localcloud.appconfig's emulation while "
            "deploying, or deploy with require_appconfig=False to skip what it provides"
        ) from error
    return response


def _appconfig_resource(
    resource_type: str, operation: str, mapping: Mapping[str, str], id_key: str
) -> Creator:
    """A creator for an AppConfig type whose properties are its operation's parameters (`mapping`), and
    whose `Ref` is the `id_key` of the answer."""

    def create(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
        request = present_properties(props, mapping)
        if props.get("Tags"):
            request["Tags"] = tag_map(props)
        if "Content" in request and isinstance(request["Content"], str):
            request["Content"] = request["Content"].encode()
        response = _appconfig(ctx, logical_id, operation, request)
        ref = str(response[id_key])
        attributes = {id_key: ref}
        if "Arn" in response:
            attributes["Arn"] = str(response["Arn"])
        name = str(props.get("Name", ref))
        return DeployedResource(logical_id, resource_type, ref, name, attributes)

    return create


_APPCONFIG_OPERATIONS: dict[str, tuple[str, dict[str, str], str]] = {
    "AWS::AppConfig::Application": ("create_application", same_names("Name", "Description"), "Id"),
    "AWS::AppConfig::Environment": (
        "create_environment",
        same_names("ApplicationId", "Name", "Description", "Monitors"),
        "Id",
    ),
    "AWS::AppConfig::DeploymentStrategy": (
        "create_deployment_strategy",
        same_names(
            "Name",
            "Description",
            "DeploymentDurationInMinutes",
            "FinalBakeTimeInMinutes",
            "GrowthFactor",
            "GrowthType",
            "ReplicateTo",
        ),
        "Id",
    ),
    "AWS::AppConfig::ConfigurationProfile": (
        "create_configuration_profile",
        same_names(
            "ApplicationId",
            "Name",
            "Description",
            "LocationUri",
            "RetrievalRoleArn",
            "Validators",
            "Type",
            "KmsKeyIdentifier",
        ),
        "Id",
    ),
    "AWS::AppConfig::HostedConfigurationVersion": (
        "create_hosted_configuration_version",
        same_names(
            "ApplicationId",
            "ConfigurationProfileId",
            "Description",
            "Content",
            "ContentType",
            "LatestVersionNumber",
            "VersionLabel",
        ),
        "VersionNumber",
    ),
    "AWS::AppConfig::Deployment": (
        "start_deployment",
        same_names(
            "ApplicationId",
            "EnvironmentId",
            "DeploymentStrategyId",
            "ConfigurationProfileId",
            "ConfigurationVersion",
            "Description",
            "KmsKeyIdentifier",
            "DynamicExtensionParameters",
        ),
        "DeploymentNumber",
    ),
    "AWS::AppConfig::ExtensionAssociation": (
        "create_extension_association",
        same_names("ExtensionIdentifier", "ResourceIdentifier", "ExtensionVersionNumber", "Parameters"),
        "Id",
    ),
}


# Ids CloudFormation's `Fn::GetAtt` gives for AppConfig types, by the answer's key.
_APPCONFIG_ATTRIBUTE_NAMES = {
    "AWS::AppConfig::Application": "ApplicationId",
    "AWS::AppConfig::Environment": "EnvironmentId",
    "AWS::AppConfig::ConfigurationProfile": "ConfigurationProfileId",
}


def _appconfig_kind(resource_type: str) -> ResourceKind:
    operation, mapping, id_key = _APPCONFIG_OPERATIONS[resource_type]
    base = _appconfig_resource(resource_type, operation, mapping, id_key)
    attribute = _APPCONFIG_ATTRIBUTE_NAMES.get(resource_type)

    def create(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
        created = base(ctx, logical_id, props)
        if attribute is None:
            return created
        return dataclasses.replace(created, attributes={**created.attributes, attribute: created.ref})

    return ResourceKind(create, frozenset(mapping) | {"Tags"})


APPCONFIG_KINDS: Mapping[str, ResourceKind] = {
    resource_type: _appconfig_kind(resource_type) for resource_type in _APPCONFIG_OPERATIONS
}
