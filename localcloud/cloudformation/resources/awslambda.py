"""Lambda functions (registered with the runner) and their permissions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from localcloud.awslambda.invocations import create_functions
from localcloud.cloudformation.functions import functions_from_template
from localcloud.cloudformation.models import (
    DeployContext,
    DeployedResource,
    ResourceKind,
)
from localcloud.cloudformation.properties import (
    present_properties,
    same_names,
    tag_map,
)


def _create_function(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("FunctionName"))
    # `functions_from_template` names the function by its `Ref`: this one, before it exists.
    ctx.resolver = dataclasses.replace(
        ctx.resolver, physical_ids={**ctx.resolver.physical_ids, logical_id: name}
    )
    only_this = dataclasses.replace(
        ctx.template,
        body={**ctx.template.body, "Resources": {logical_id: ctx.template.resources[logical_id]}},
    )
    [spec] = functions_from_template(only_this, ctx.resolver)
    if ctx.function_transform is not None:
        spec = ctx.function_transform(spec)
    ctx.runner.register(spec)
    lambda_client = ctx.client("lambda")
    role_arn = ctx.functions_role_arn or str(props["Role"])
    arn = create_functions(lambda_client, [spec], role_arn=role_arn)[spec.function_name]
    if "Description" in props:
        lambda_client.update_function_configuration(FunctionName=name, Description=props["Description"])
    if props.get("Tags"):
        lambda_client.tag_resource(Resource=arn, Tags=tag_map(props))
    return DeployedResource(logical_id, "AWS::Lambda::Function", name, name, {"Arn": arn})


def _add_permission(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    request = {
        "StatementId": logical_id,
        **present_properties(
            props,
            same_names(
                "FunctionName",
                "Action",
                "Principal",
                "SourceArn",
                "SourceAccount",
                "EventSourceToken",
                "PrincipalOrgID",
                "FunctionUrlAuthType",
            ),
        ),
    }
    ctx.client("lambda").add_permission(**request)
    return DeployedResource(logical_id, "AWS::Lambda::Permission", logical_id, logical_id)


_FUNCTION_NOT_APPLIED = {
    "Architectures": "the handler runs on this machine's interpreter",
    "Layers": "layers are not emulated: their imports come from this venv (localcloud/README.md)",
    "TracingConfig": "X-Ray is not emulated",
    "LoggingConfig": "moto writes a function's logs to /aws/lambda/<name>",
    "ReservedConcurrentExecutions": "concurrency limits are not enforced",
    "DeadLetterConfig": "asynchronous invocations are not retried locally, so none fails over to a queue",
}


LAMBDA_KINDS: Mapping[str, ResourceKind] = {
    "AWS::Lambda::Function": ResourceKind(
        _create_function,
        frozenset(
            {"FunctionName", "Code", "Handler", "Runtime", "Timeout", "MemorySize", "Environment", "Role"}
            | {"Description", "Tags"}
        ),
        _FUNCTION_NOT_APPLIED,
    ),
    "AWS::Lambda::Permission": ResourceKind(
        _add_permission,
        frozenset(
            {
                "FunctionName",
                "Action",
                "Principal",
                "SourceArn",
                "SourceAccount",
                "EventSourceToken",
                "PrincipalOrgID",
                "FunctionUrlAuthType",
            }
        ),
    ),
}
