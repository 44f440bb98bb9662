"""CloudWatch Logs log groups."""

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
    tag_map,
)


def _create_log_group(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    logs = ctx.client("logs")
    name = ctx.name(logical_id, props.get("LogGroupName"), max_length=512)
    request: dict[str, Any] = {"logGroupName": name, **present_properties(props, {"KmsKeyId": "kmsKeyId"})}
    if props.get("Tags"):
        request["tags"] = tag_map(props)
    logs.create_log_group(**request)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    arn = ctx.arn("logs", f"log-group:{name}:*")
    return DeployedResource(logical_id, "AWS::Logs::LogGroup", name, name, {"Arn": arn})


LOGS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::Logs::LogGroup": ResourceKind(
        _create_log_group,
        frozenset({"LogGroupName", "RetentionInDays", "KmsKeyId", "Tags"}),
        {"LogGroupClass": "moto has one class of log group"},
    ),
}
