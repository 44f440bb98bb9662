"""EventBridge rules and their targets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localcloud.cloudformation.models import (
    DeployContext,
    DeployedResource,
    DeployError,
    ResourceKind,
    UnsupportedPropertyError,
)
from localcloud.cloudformation.properties import (
    present_properties,
    same_names,
    tag_list,
)

_TARGET_KEYS = frozenset(
    {
        "Id",
        "Arn",
        "RoleArn",
        "Input",
        "InputPath",
        "InputTransformer",
        "RetryPolicy",
        "DeadLetterConfig",
        "SqsParameters",
        "HttpParameters",
        "SageMakerPipelineParameters",
    }
)


def _put_rule(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    events = ctx.client("events")
    name = ctx.name(logical_id, props.get("Name"))
    request: dict[str, Any] = {
        "Name": name,
        **present_properties(
            props, same_names("ScheduleExpression", "State", "Description", "RoleArn", "EventBusName")
        ),
    }
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    if props.get("Tags"):
        request["Tags"] = tag_list(props)
    arn = str(events.put_rule(**request)["RuleArn"])
    targets = props.get("Targets", [])
    for target in targets:
        unknown = sorted(set(target) - _TARGET_KEYS)
        if unknown:
            raise UnsupportedPropertyError(f"{logical_id}: target keys {unknown} are not deployed locally")
    if targets:
        bus = present_properties(props, {"EventBusName": "EventBusName"})
        failed = events.put_targets(Rule=name, Targets=targets, **bus).get("FailedEntries", [])
        if failed:
            raise DeployError(f"{ctx.template.name}/{logical_id}: targets refused: {failed}")
    return DeployedResource(logical_id, "AWS::Events::Rule", name, name, {"Arn": arn})


EVENTS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::Events::Rule": ResourceKind(
        _put_rule,
        frozenset(
            {"Name", "EventPattern", "ScheduleExpression", "State", "Description", "RoleArn", "EventBusName"}
            | {"Targets", "Tags"}
        ),
    ),
}
