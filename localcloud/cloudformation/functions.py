"""A template's Lambda functions, as the runner runs them."""

from __future__ import annotations

from localcloud.awslambda.runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECONDS, FunctionSpec
from localcloud.cloudformation.template import Resolver, StackTemplate

FUNCTION_TYPE = "AWS::Lambda::Function"


def functions_from_template(template: StackTemplate, resolver: Resolver) -> list[FunctionSpec]:
    """Every `AWS::Lambda::Function` of a template; names and environment resolved by `resolver`.

    Layers are ignored: their imports come from this interpreter's site-packages.
    """
    specs = []
    for logical_id, resource in template.resources_of_type(FUNCTION_TYPE).items():
        properties = resource["Properties"]
        variables = properties.get("Environment", {}).get("Variables", {})
        specs.append(
            FunctionSpec(
                function_name=resolver.resolve({"Ref": logical_id}),
                handler=properties["Handler"],
                code_dir=template.asset_dir(logical_id),
                environment={key: str(value) for key, value in resolver.resolve(variables).items()},
                runtime=properties.get("Runtime", "python3.11"),
                timeout_seconds=int(properties.get("Timeout", DEFAULT_TIMEOUT_SECONDS)),
                memory_mb=int(properties.get("MemorySize", DEFAULT_MEMORY_MB)),
                logical_id=logical_id,
                region=resolver.environment.region,
                account_id=resolver.environment.account_id,
            )
        )
    return specs
