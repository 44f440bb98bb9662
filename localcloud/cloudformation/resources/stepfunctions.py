"""Step Functions state machines, created through the API so that moto's executor sees them."""

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
    tag_list,
)
from localcloud.cloudformation.template import (
    state_machine_definition,
)


def _create_state_machine(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("StateMachineName"), max_length=80)
    definition = state_machine_definition(ctx.resolver, logical_id)
    if ctx.definition_transform is not None:
        definition = ctx.definition_transform(logical_id, definition)
    request: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": props["RoleArn"],
        "type": props.get("StateMachineType", "STANDARD"),
    }
    if "LoggingConfiguration" in props:
        logging = props["LoggingConfiguration"]
        request["loggingConfiguration"] = {
            **present_properties(logging, {"Level": "level", "IncludeExecutionData": "includeExecutionData"}),
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for d in logging.get("Destinations", [])
            ],
        }
    if "TracingConfiguration" in props:
        request["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
    if props.get("Tags"):
        request["tags"] = [{"key": tag["Key"], "value": tag["Value"]} for tag in tag_list(props)]
    arn = str(ctx.client("stepfunctions").create_state_machine(**request)["stateMachineArn"])
    return DeployedResource(
        logical_id, "AWS::StepFunctions::StateMachine", arn, name, {"Arn": arn, "Name": name}
    )


STEPFUNCTIONS_KINDS: Mapping[str, ResourceKind] = {
    "AWS::StepFunctions::StateMachine": ResourceKind(
        _create_state_machine,
        frozenset(
            {
                "StateMachineName",
                "DefinitionString",
                "Definition",
                "DefinitionSubstitutions",
                "RoleArn",
                "StateMachineType",
                "LoggingConfiguration",
                "TracingConfiguration",
                "Tags",
            }
        ),
    ),
}
