"""DynamoDB tables, created as CloudFormation would."""

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


def _create_table(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    dynamodb = ctx.client("dynamodb")
    name = ctx.name(logical_id, props.get("TableName"), max_length=255)
    request: dict[str, Any] = {
        "TableName": name,
        **present_properties(
            props,
            same_names(
                "KeySchema",
                "AttributeDefinitions",
                "BillingMode",
                "ProvisionedThroughput",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "TableClass",
                "DeletionProtectionEnabled",
            ),
        ),
    }
    if "SSESpecification" in props:
        sse = props["SSESpecification"]
        request["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled", False)),
            **present_properties(sse, {"SSEType": "SSEType", "KMSMasterKeyId": "KMSMasterKeyId"}),
        }
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    described = dynamodb.create_table(**request)["TableDescription"]
    if "TimeToLiveSpecification" in props:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in props:
        recovery = props["PointInTimeRecoverySpecification"]
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(recovery.get("PointInTimeRecoveryEnabled", False))
            },
        )
    attributes = {"Arn": str(described["TableArn"])}
    if "LatestStreamArn" in described:
        attributes["StreamArn"] = str(described["LatestStreamArn"])
    return DeployedResource(logical_id, "AWS::DynamoDB::Table", name, name, attributes)


DYNAMODB_KINDS: Mapping[str, ResourceKind] = {
    "AWS::DynamoDB::Table": ResourceKind(
        _create_table,
        frozenset(
            {
                "TableName",
                "KeySchema",
                "AttributeDefinitions",
                "BillingMode",
                "ProvisionedThroughput",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "TableClass",
                "DeletionProtectionEnabled",
                "SSESpecification",
                "StreamSpecification",
                "TimeToLiveSpecification",
                "PointInTimeRecoverySpecification",
                "Tags",
            }
        ),
        {"ContributorInsightsSpecification": "CloudWatch Contributor Insights is not emulated"},
    ),
}
