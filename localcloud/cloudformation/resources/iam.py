"""IAM roles and their inline policies (stored, not enforced)."""

from __future__ import annotations

import json
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


def _create_role(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    iam = ctx.client("iam")
    name = ctx.name(logical_id, props.get("RoleName"))
    request: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
        **present_properties(
            props,
            same_names("Description", "Path", "MaxSessionDuration")
            | {"PermissionsBoundary": "PermissionsBoundary"},
        ),
    }
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    role = iam.create_role(**request)["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    for policy_arn in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    attributes = {"Arn": str(role["Arn"]), "RoleId": str(role["RoleId"])}
    return DeployedResource(logical_id, "AWS::IAM::Role", name, name, attributes)


def _put_role_policies(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = str(props["PolicyName"])
    document = json.dumps(props["PolicyDocument"])
    for role in props.get("Roles", []):
        ctx.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=document)
    return DeployedResource(logical_id, "AWS::IAM::Policy", ctx.name(logical_id, None), name)


IAM_KINDS: Mapping[str, ResourceKind] = {
    "AWS::IAM::Role": ResourceKind(
        _create_role,
        frozenset(
            {
                "RoleName",
                "AssumeRolePolicyDocument",
                "Description",
                "Path",
                "MaxSessionDuration",
                "PermissionsBoundary",
                "Policies",
                "ManagedPolicyArns",
                "Tags",
            }
        ),
    ),
    "AWS::IAM::Policy": ResourceKind(
        _put_role_policies, frozenset({"PolicyName", "PolicyDocument", "Roles"})
    ),
}
