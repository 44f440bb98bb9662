"""KMS keys and aliases."""

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
    tag_list,
)


def _create_key(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    kms = ctx.client("kms")
    request = present_properties(
        props,
        {
            "Description": "Description",
            "KeyUsage": "KeyUsage",
            "KeySpec": "KeySpec",
            "MultiRegion": "MultiRegion",
        },
    )
    if "KeyPolicy" in props:
        request["Policy"] = json.dumps(props["KeyPolicy"])
    if props.get("Tags"):
        request["Tags"] = [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in tag_list(props)]
    metadata = kms.create_key(**request)["KeyMetadata"]
    key_id = str(metadata["KeyId"])
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key_id)
    if props.get("Enabled") is False:
        kms.disable_key(KeyId=key_id)
    attributes = {"Arn": str(metadata["Arn"]), "KeyId": key_id}
    return DeployedResource(logical_id, "AWS::KMS::Key", key_id, key_id, attributes)


def _create_alias(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = str(props["AliasName"])
    ctx.client("kms").create_alias(AliasName=name, TargetKeyId=str(props["TargetKeyId"]))
    return DeployedResource(logical_id, "AWS::KMS::Alias", name, name)


KMS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::KMS::Key": ResourceKind(
        _create_key,
        frozenset(
            {
                "Description",
                "KeyUsage",
                "KeySpec",
                "MultiRegion",
                "KeyPolicy",
                "EnableKeyRotation",
                "Enabled",
                "Tags",
            }
        ),
        {"PendingWindowInDays": "only applies when the key is deleted"},
    ),
    "AWS::KMS::Alias": ResourceKind(_create_alias, frozenset({"AliasName", "TargetKeyId"})),
}
