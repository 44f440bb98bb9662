"""Read a cloud assembly (`cdk.out`): its stack templates, their code assets, and the intrinsic functions.

Only what running the templates locally needs: `Ref` (resources, parameters, pseudo parameters),
`Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split` and `Fn::ImportValue`. Anything else
fails loudly with the function's name, so a template that needs more is noticed instead of half-resolved.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.account import AwsEnvironment

STACK_ARTIFACT = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT = "cdk:asset-manifest"
ASSET_PATH_METADATA = "aws:asset:path"
# Resolved by CloudFormation from Parameter Store at deploy time: only a deployment can read them.
SSM_PARAMETER_TYPE_PREFIX = "AWS::SSM::Parameter::Value"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """The template asks for something this reader cannot give: the message names it."""


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its name, its template, and the assembly directory its assets live in."""

    name: str
    body: Mapping[str, Any]
    assembly_dir: Path
    # The file assets of the assembly: the S3 object key each is published to -> its path in the assembly.
    assets: Mapping[str, str] = field(default_factory=dict)
    # The names of the stacks the manifest says this one depends on (deployed before it).
    dependencies: tuple[str, ...] = ()

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.body.get("Resources", {})
        return resources

    @property
    def outputs(self) -> Mapping[str, Mapping[str, Any]]:
        outputs: Mapping[str, Mapping[str, Any]] = self.body.get("Outputs", {})
        return outputs

    @property
    def parameters(self) -> Mapping[str, Mapping[str, Any]]:
        parameters: Mapping[str, Mapping[str, Any]] = self.body.get("Parameters", {})
        return parameters

    def resources_of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return {key: value for key, value in self.resources.items() if value.get("Type") == resource_type}

    def asset_dir(self, logical_id: str) -> Path:
        """The unpacked code asset of a resource: the `aws:asset:path` metadata when CDK wrote it (the CLI
        asks for it), else the asset published under the resource's `Code.S3Key`."""
        resource = self.resources[logical_id]
        metadata_path = resource.get("Metadata", {}).get(ASSET_PATH_METADATA)
        object_key = resource.get("Properties", {}).get("Code", {}).get("S3Key")
        relative: str | None = metadata_path if isinstance(metadata_path, str) else None
        if relative is None and isinstance(object_key, str):
            relative = self.assets.get(object_key)
        if relative is None:
            raise TemplateError(
                f"{self.name}/{logical_id} has neither '{ASSET_PATH_METADATA}' nor a known Code.S3Key"
            )
        path = self.assembly_dir / relative
        if not path.is_dir():
            raise TemplateError(
                f"{self.name}/{logical_id}: asset {relative} is not a directory in {path.parent}"
            )
        return path


def load_stacks(assembly_dir: Path) -> dict[str, StackTemplate]:
    """Every stack of a cloud assembly, by stack name, as `manifest.json` lists them, with the stacks each
    depends on (the manifest's `dependencies` that are stacks: asset manifests and the like are not)."""
    artifacts = json.loads((assembly_dir / "manifest.json").read_text()).get("artifacts", {})
    assets = _file_assets(assembly_dir, artifacts)
    names = {
        artifact_id: artifact.get("displayName", artifact_id)
        for artifact_id, artifact in artifacts.items()
        if artifact.get("type") == STACK_ARTIFACT
    }
    stacks: dict[str, StackTemplate] = {}
    for artifact_id, name in names.items():
        artifact = artifacts[artifact_id]
        body = json.loads((assembly_dir / artifact["properties"]["templateFile"]).read_text())
        dependencies = tuple(names[d] for d in artifact.get("dependencies", []) if d in names)
        stacks[name] = StackTemplate(
            name=name, body=body, assembly_dir=assembly_dir, assets=assets, dependencies=dependencies
        )
    return stacks


def _file_assets(assembly_dir: Path, artifacts: Mapping[str, Any]) -> dict[str, str]:
    """Object key -> source path of every file asset the assembly's asset manifests list."""
    assets: dict[str, str] = {}
    for artifact in artifacts.values():
        if artifact.get("type") != ASSET_MANIFEST_ARTIFACT:
            continue
        manifest = json.loads((assembly_dir / artifact["properties"]["file"]).read_text())
        for asset in manifest.get("files", {}).values():
            for destination in asset.get("destinations", {}).values():
                assets[destination["objectKey"]] = asset["source"]["path"]
    return assets


def local_physical_name(stack_name: str, logical_id: str) -> str:
    """A deterministic stand-in for the name CloudFormation would generate (64 characters at most)."""
    return f"{stack_name}-{logical_id}"[:64]


@dataclass(frozen=True)
class Resolver:
    """Resolves intrinsic functions against one deployment of a template.

    `physical_ids` is what `Ref` returns for a resource; `attributes[logical_id][name]` what
    `Fn::GetAtt` returns; `parameters` overrides the template's parameter defaults; `imports` is what
    `Fn::ImportValue` finds: the exports of the stacks deployed before, by export name.
    """

    template: StackTemplate
    environment: AwsEnvironment = field(default_factory=AwsEnvironment)
    physical_ids: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    imports: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._intrinsic(key, argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _intrinsic(self, name: str, argument: Any) -> Any:
        functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::ImportValue": self._import_value,
        }
        if name not in functions:
            raise TemplateError(f"{self.template.name}: intrinsic function {name} is not supported locally")
        return functions[name](argument)

    def _ref(self, name: str) -> str:
        pseudo = self._pseudo_parameter(name)
        if pseudo is not None:
            return pseudo
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.parameters:
            return self._parameter_default(name)
        if name in self.physical_ids:
            return self.physical_ids[name]
        raise TemplateError(f"{self.template.name}: Ref {name} has no local value")

    def _pseudo_parameter(self, name: str) -> str | None:
        return {
            "AWS::AccountId": self.environment.account_id,
            "AWS::Region": self.environment.region,
            "AWS::Partition": self.environment.partition,
            "AWS::URLSuffix": self.environment.url_suffix,
            "AWS::StackName": self.template.name,
            "AWS::StackId": self.environment.arn("cloudformation", f"stack/{self.template.name}/local"),
        }.get(name)

    def _parameter_default(self, name: str) -> str:
        declaration = self.template.parameters[name]
        if str(declaration.get("Type", "")).startswith(SSM_PARAMETER_TYPE_PREFIX):
            raise TemplateError(
                f"{self.template.name}: parameter {name} is read from SSM "
                f"({declaration.get('Default')}) at deploy time; pass its value in `parameters`"
            )
        if "Default" not in declaration:
            raise TemplateError(f"{self.template.name}: parameter {name} has no default and no value")
        return str(declaration["Default"])

    def _get_att(self, argument: list[str] | str) -> str:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        try:
            return self.attributes[logical_id][self.resolve(attribute)]
        except KeyError:
            raise TemplateError(
                f"{self.template.name}: Fn::GetAtt {logical_id}.{attribute} has no local value"
            ) from None

    def _join(self, argument: list[Any]) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {key: str(self.resolve(value)) for key, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            if "." in name:
                return self._get_att(name)
            return self._ref(name)

        # `${!Literal}` stays as `${Literal}`, as CloudFormation writes it.
        return _SUB_VARIABLE.sub(substitute, text).replace("${!", "${")

    def _select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, argument: list[Any]) -> list[str]:
        delimiter, text = argument
        return str(self.resolve(text)).split(delimiter)

    def _import_value(self, argument: Any) -> str:
        name = str(self.resolve(argument))
        if name not in self.imports:
            raise TemplateError(
                f"{self.template.name}: Fn::ImportValue {name}: no stack deployed before it exports "
                f"{name!r} (exports: {sorted(self.imports)})"
            )
        return self.imports[name]


# The property that names a resource when the template sets it; without it CloudFormation makes one up.
_NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::SSM::Parameter": "Name",
}
# Types whose `Ref` is their ARN in CloudFormation, not their name.
_REF_IS_ARN = {
    "AWS::SNS::Topic": ("sns", "{}", True),
    "AWS::StepFunctions::StateMachine": ("states", "stateMachine:{}", True),
}
# The ARN of a resource from its name, for the types whose `Fn::GetAtt <id>.Arn` is resolved locally.
_ARN_RESOURCES = {
    "AWS::Lambda::Function": ("lambda", "function:{}", True),
    "AWS::IAM::Role": ("iam", "role/{}", False),
    "AWS::DynamoDB::Table": ("dynamodb", "table/{}", True),
    "AWS::StepFunctions::StateMachine": ("states", "stateMachine:{}", True),
    "AWS::SQS::Queue": ("sqs", "{}", True),
    "AWS::CloudWatch::Alarm": ("cloudwatch", "alarm:{}", True),
    "AWS::CloudWatch::CompositeAlarm": ("cloudwatch", "alarm:{}", True),
    "AWS::Events::Rule": ("events", "rule/{}", True),
}


def local_resolver(
    template: StackTemplate,
    environment: AwsEnvironment | None = None,
    *,
    parameters: Mapping[str, str] | None = None,
) -> Resolver:
    """A resolver for a local deployment: every resource named as `local_physical_name` says (or as the
    template names it), the ARNs of functions, roles and tables built from those names, and the values
    of `parameters` that the template declares."""
    environment = environment or AwsEnvironment()
    physical_ids: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    for logical_id, resource in template.resources.items():
        resource_type = str(resource.get("Type"))
        declared = resource.get("Properties", {}).get(_NAME_PROPERTIES.get(resource_type, ""))
        name = declared if isinstance(declared, str) else local_physical_name(template.name, logical_id)
        physical_ids[logical_id] = name
        if resource_type in _REF_IS_ARN:
            service, pattern, regional = _REF_IS_ARN[resource_type]
            physical_ids[logical_id] = environment.arn(service, pattern.format(name), regional=regional)
        if resource_type in _ARN_RESOURCES:
            service, pattern, regional = _ARN_RESOURCES[resource_type]
            attributes[logical_id] = {
                "Arn": environment.arn(service, pattern.format(name), regional=regional)
            }
        if resource_type == "AWS::SQS::Queue":  # a queue's alarms name it by its QueueName
            attributes.setdefault(logical_id, {})["QueueName"] = name
    given = {name: value for name, value in (parameters or {}).items() if name in template.parameters}
    return Resolver(
        template=template,
        environment=environment,
        physical_ids=physical_ids,
        attributes=attributes,
        parameters=given,
    )


def state_machine_definition(resolver: Resolver, logical_id: str) -> str:
    """The Amazon States Language of an `AWS::StepFunctions::StateMachine`, ready for CreateStateMachine:
    `DefinitionString` (or `Definition`) resolved, then its `DefinitionSubstitutions` applied."""
    properties = resolver.template.resources[logical_id].get("Properties", {})
    if "DefinitionString" in properties:
        definition = str(resolver.resolve(properties["DefinitionString"]))
    elif "Definition" in properties:
        definition = json.dumps(resolver.resolve(properties["Definition"]))
    else:
        raise TemplateError(
            f"{resolver.template.name}/{logical_id}: only inline definitions are read locally"
        )
    for key, value in resolver.resolve(properties.get("DefinitionSubstitutions", {})).items():
        definition = definition.replace(f"${{{key}}}", str(value))
    return definition


def parameter_values(template: StackTemplate, resolver: Resolver, path: str = "/") -> dict[str, str]:
    """Name -> value of every `AWS::SSM::Parameter` of the template under `path`, resolved as a
    deployment would (a value naming a resource that only has an ARN once created cannot be)."""
    values: dict[str, str] = {}
    for logical_id in template.resources_of_type("AWS::SSM::Parameter"):
        properties = template.resources[logical_id].get("Properties", {})
        if not str(properties.get("Name", "")).startswith(path):
            continue
        name = (
            resolver.resolve(properties["Name"])
            if "Name" in properties
            else resolver.resolve({"Ref": logical_id})
        )
        values[str(name)] = str(resolver.resolve(properties["Value"]))
    return values


def merged_template(name: str, templates: Sequence[StackTemplate]) -> StackTemplate:
    """Several stacks of one app as one template named `name` (the app's logical ids are distinct across
    its stacks); the first template gives the assembly and assets."""
    if len(templates) == 1:
        return templates[0]
    body: dict[str, dict[str, Any]] = {"Resources": {}, "Parameters": {}, "Outputs": {}}
    for template in templates:
        for section, entries in body.items():
            entries.update(template.body.get(section, {}))
    return dataclasses.replace(templates[0], name=name, body=body, dependencies=())


def app_template(stacks: Mapping[str, StackTemplate], name: str) -> StackTemplate:
    """The stack `name` and the stacks that depend on it (an environment and its families' stacks) as one."""
    around = [name, *(other for other, t in stacks.items() if name in t.dependencies)]
    return merged_template(name, [stacks[member] for member in around])
