"""SQS queues and queue policies."""

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
    attribute_text,
    present_properties,
    same_names,
    tag_map,
)

_QUEUE_ATTRIBUTES = same_names(
    "MessageRetentionPeriod",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


def _create_queue(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    sqs = ctx.client("sqs")
    name = ctx.name(logical_id, props.get("QueueName"), max_length=80)
    attributes = {
        key: attribute_text(value) for key, value in present_properties(props, _QUEUE_ATTRIBUTES).items()
    }
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = tag_map(props)
    url = str(sqs.create_queue(**request)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return DeployedResource(
        logical_id, "AWS::SQS::Queue", url, name, {"Arn": str(arn), "QueueName": name, "QueueUrl": url}
    )


def _put_queue_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    policy = json.dumps(props["PolicyDocument"])
    for queue_url in props["Queues"]:
        ctx.client("sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
    name = ctx.name(logical_id, None)
    return DeployedResource(logical_id, "AWS::SQS::QueuePolicy", name, name)


SQS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::SQS::Queue": ResourceKind(_create_queue, frozenset(_QUEUE_ATTRIBUTES) | {"QueueName", "Tags"}),
    "AWS::SQS::QueuePolicy": ResourceKind(_put_queue_policy, frozenset({"PolicyDocument", "Queues"})),
}
