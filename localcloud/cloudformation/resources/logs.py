"""CloudWatch Logs log groups and their metric filters."""

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


# A metric transformation's keys as CloudFormation spells them -> as PutMetricFilter does.
_TRANSFORMATION_KEYS = {
    "MetricName": "metricName",
    "MetricNamespace": "metricNamespace",
    "MetricValue": "metricValue",
    "DefaultValue": "defaultValue",
    "Dimensions": "dimensions",
    "Unit": "unit",
}


def _create_metric_filter(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    logs = ctx.client("logs")
    name = ctx.name(logical_id, props.get("FilterName"), max_length=512)
    transformations = [
        {_TRANSFORMATION_KEYS[key]: value for key, value in transformation.items()}
        for transformation in props["MetricTransformations"]
    ]
    logs.put_metric_filter(
        logGroupName=str(props["LogGroupName"]),
        filterName=name,
        filterPattern=str(props["FilterPattern"]),
        metricTransformations=transformations,
    )
    return DeployedResource(logical_id, "AWS::Logs::MetricFilter", name, name, {})


LOGS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::Logs::MetricFilter": ResourceKind(
        _create_metric_filter,
        frozenset({"LogGroupName", "FilterName", "FilterPattern", "MetricTransformations"}),
    ),
    "AWS::Logs::LogGroup": ResourceKind(
        _create_log_group,
        frozenset({"LogGroupName", "RetentionInDays", "KmsKeyId", "Tags"}),
        {"LogGroupClass": "moto has one class of log group"},
    ),
}
