"""What a stack takes from the cloud it is deployed into and gives to the stacks deployed after it:
SSM-typed template parameters read from Parameter Store, `Fn::ImportValue`, Outputs and their exports."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from localcloud.cloudformation.models import DeployError, MissingSsmParameterError, UnknownExportError
from localcloud.cloudformation.ordering import references
from localcloud.cloudformation.template import (
    SSM_PARAMETER_TYPE_PREFIX,
    Resolver,
    StackTemplate,
    TemplateError,
)


def with_stack_inputs(
    resolver: Resolver,
    used: Mapping[str, Any],
    *,
    ssm: Any,
    exports: Mapping[str, str],
) -> Resolver:
    """`resolver` with the values a deployment reads before creating anything: the SSM-typed parameters
    that `used` (what the deployment resolves, by where it is) names, read through `ssm` unless given
    in `resolver.parameters`, and `exports` for `Fn::ImportValue`, each import checked."""
    template = resolver.template
    named = {name for value in used.values() for name in references(value)}
    values = dict(resolver.parameters)
    for name, declaration in template.parameters.items():
        if name in values or name not in named or not _reads_a_string(declaration):
            continue
        values[name] = _read_parameter(template, name, str(declaration.get("Default", "")), ssm)
    resolver = dataclasses.replace(resolver, parameters=values, imports=dict(exports))
    for where, argument in _imports(used):
        try:
            export = str(resolver.resolve(argument))
        except TemplateError as error:
            raise DeployError(f"{template.name}/{where}: Fn::ImportValue: {error}") from error
        if export not in exports:
            raise UnknownExportError(
                f"{template.name}/{where}: Fn::ImportValue {export}: no stack deployed before "
                f"{template.name} exports it; deploy the stack that exports it first "
                f"(exports so far: {sorted(exports)})"
            )
    return resolver


def _reads_a_string(declaration: Mapping[str, Any]) -> bool:
    # List types would make `Ref` a list, which `Resolver` does not model: those are passed explicitly.
    parameter_type = str(declaration.get("Type", ""))
    return parameter_type.startswith(SSM_PARAMETER_TYPE_PREFIX) and "List" not in parameter_type


def _read_parameter(template: StackTemplate, name: str, ssm_name: str, ssm: Any) -> str:
    try:
        return str(ssm.get_parameter(Name=ssm_name)["Parameter"]["Value"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise DeployError(f"{template.name}: parameter {name} ({ssm_name}): {error}") from error
        raise MissingSsmParameterError(
            f"{template.name}: parameter {name} reads the SSM parameter {ssm_name}, which this cloud "
            "does not have: deploy the stack that writes it first, or pass the value in `parameters`"
        ) from None


def _imports(used: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, argument) of every `Fn::ImportValue` in `used`."""

    def walk(value: Any) -> Iterator[Any]:
        if isinstance(value, list):
            for item in value:
                yield from walk(item)
        elif isinstance(value, dict):
            for key, argument in value.items():
                if key == "Fn::ImportValue":
                    yield argument
                else:
                    yield from walk(argument)

    for where, value in used.items():
        for argument in walk(value):
            yield where, argument


@dataclasses.dataclass(frozen=True)
class StackOutputs:
    """A deployed stack's Outputs: values, exports (export name -> value), and those not evaluated."""

    values: Mapping[str, str]
    exports: Mapping[str, str]
    not_evaluated: Mapping[str, str]


def stack_outputs(resolver: Resolver, created: Collection[str]) -> StackOutputs:
    """The template's Outputs resolved after the deployment (`resolver` knows every physical id). An
    output naming a resource that was not `created` is not evaluated (its local stand-in name would be a
    made-up value); if it is exported, that is an error. An export name already imported is too, as
    CloudFormation refuses a name another stack exports."""
    template = resolver.template
    values: dict[str, str] = {}
    exports: dict[str, str] = {}
    not_evaluated: dict[str, str] = {}
    for output_id, output in template.outputs.items():
        missing = sorted(
            name for name in references(output) if name in template.resources and name not in created
        )
        if missing:
            reason = f"names resources not created locally: {', '.join(missing)}"
            if "Export" in output:
                raise DeployError(f"{template.name}: output {output_id} is exported but {reason}")
            not_evaluated[output_id] = reason
            continue
        try:
            values[output_id] = str(resolver.resolve(output["Value"]))
            if "Export" not in output:
                continue
            export = str(resolver.resolve(output["Export"]["Name"]))
        except TemplateError as error:
            raise DeployError(f"{template.name}: output {output_id}: {error}") from error
        if export in resolver.imports or export in exports:
            raise DeployError(f"{template.name}: output {output_id}: export {export!r} is already exported")
        exports[export] = values[output_id]
    return StackOutputs(values=values, exports=exports, not_evaluated=not_evaluated)
