"""SNS topics, subscriptions and topic policies."""

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
    tag_list,
)

_TOPIC_ATTRIBUTES = same_names("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")


_SUBSCRIPTION_ATTRIBUTES = same_names(
    "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy"
)


def _create_topic(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    sns = ctx.client("sns")
    name = ctx.name(logical_id, props.get("TopicName"), max_length=256)
    attributes = {
        key: attribute_text(value) for key, value in present_properties(props, _TOPIC_ATTRIBUTES).items()
    }
    request: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    arn = str(sns.create_topic(**request)["TopicArn"])
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return DeployedResource(logical_id, "AWS::SNS::Topic", arn, name, {"TopicArn": arn, "TopicName": name})


def _subscribe(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    attributes = {
        key: attribute_text(value)
        for key, value in present_properties(props, _SUBSCRIPTION_ATTRIBUTES).items()
    }
    request = {
        "TopicArn": props["TopicArn"],
        "Protocol": props["Protocol"],
        "Attributes": attributes,
        "ReturnSubscriptionArn": True,
        **present_properties(props, {"Endpoint": "Endpoint"}),
    }
    arn = str(ctx.client("sns").subscribe(**request)["SubscriptionArn"])
    return DeployedResource(logical_id, "AWS::SNS::Subscription", arn, arn, {"Arn": arn})


def _put_topic_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    policy = json.dumps(props["PolicyDocument"])
    for topic_arn in props["Topics"]:
        ctx.client("sns").set_topic_attributes(
            TopicArn=topic_arn, AttributeName="Policy", AttributeValue=policy
        )
    name = ctx.name(logical_id, None)
    return DeployedResource(logical_id, "AWS::SNS::TopicPolicy", name, name)


SNS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::SNS::Topic": ResourceKind(
        _create_topic, frozenset(_TOPIC_ATTRIBUTES) | {"TopicName", "Subscription", "Tags"}
    ),
    "AWS::SNS::Subscription": ResourceKind(
        _subscribe,
        frozenset(_SUBSCRIPTION_ATTRIBUTES) | {"TopicArn", "Protocol", "Endpoint"},
        {"Region": "the topic is in the deployment's region"},
    ),
    "AWS::SNS::TopicPolicy": ResourceKind(_put_topic_policy, frozenset({"PolicyDocument", "Topics"})),
}
