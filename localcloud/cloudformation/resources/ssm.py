"""Systems Manager Parameter Store parameters."""

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
)

_PARAMETER_REQUEST = same_names("Type", "Value", "Description", "Tier", "DataType", "AllowedPattern")


def _put_parameter(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("Name"))
    request: dict[str, Any] = {"Name": name, **present_properties(props, _PARAMETER_REQUEST)}
    request["Value"] = str(request["Value"])
    if props.get("Tags"):
        # A parameter's Tags are a map in CloudFormation (type Json), a list of pairs in the API.
        request["Tags"] = [{"Key": str(key), "Value": str(value)} for key, value in props["Tags"].items()]
    ctx.client("ssm").put_parameter(**request)
    attributes = {"Type": str(props["Type"]), "Value": request["Value"]}
    return DeployedResource(logical_id, "AWS::SSM::Parameter", name, name, attributes)


SSM_KINDS: Mapping[str, ResourceKind] = {
    "AWS::SSM::Parameter": ResourceKind(_put_parameter, frozenset(_PARAMETER_REQUEST) | {"Name", "Tags"}),
}
