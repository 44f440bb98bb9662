"""What a local deployment makes and uses: its errors, the deployed resources and stack, the context."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from localcloud.awslambda.runner import FunctionSpec, LambdaRunner
from localcloud.cloudformation.template import (
    Resolver,
    StackTemplate,
    local_physical_name,
    merged_template,
)

# (logical id, definition) -> the definition to create the state machine with.
DefinitionTransform = Callable[[str, str], str]


FunctionTransform = Callable[[FunctionSpec], FunctionSpec]


class DeployError(ValueError):
    """The stack cannot be deployed locally: the message names the resource and the problem."""


class UnsupportedResourceTypeError(DeployError):
    """A resource type neither created locally nor listed in `NOT_CREATED`."""


class UnsupportedPropertyError(DeployError):
    """A property of a created type that this module neither translates nor lists as not applied."""


class DependencyCycleError(DeployError):
    """The resources depend on each other in a cycle (CloudFormation refuses such a template too)."""


class MissingSsmParameterError(DeployError):
    """A template parameter reads a Parameter Store parameter that the cloud does not have (yet)."""


class UnknownExportError(DeployError):
    """`Fn::ImportValue` names an export that no stack deployed before exports."""


class AppConfigUnavailableError(DeployError):
    """moto lacks an AppConfig API the stack needs and `localcloud.appconfig.routing` is not open."""


class AlarmApisUnavailableError(DeployError):
    """moto lacks PutCompositeAlarm and `localcloud.cloudwatch`'s `emulate_alarm_apis` is not open."""


@dataclass(frozen=True)
class DeployedResource:
    """One created resource: what `Ref` gives, its name, and what `Fn::GetAtt` gives."""

    logical_id: str
    resource_type: str
    ref: str
    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        if "Arn" not in self.attributes:
            raise KeyError(f"{self.logical_id} ({self.resource_type}) has no Arn attribute")
        return self.attributes["Arn"]


@dataclass(frozen=True)
class DeployedStack:
    """A deployed stack: its resources by logical id, the ones not created (with why), the resolver that
    knows every physical id (resolve anything of the template with it), its Outputs' values and exports
    (export name -> value), and the outputs not evaluated because they name a resource not created."""

    template: StackTemplate
    resolver: Resolver
    resources: Mapping[str, DeployedResource]
    not_created: Mapping[str, str]
    skipped: Mapping[str, str]
    order: Sequence[str]
    outputs: Mapping[str, str] = field(default_factory=dict)
    exports: Mapping[str, str] = field(default_factory=dict)
    outputs_not_evaluated: Mapping[str, str] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, DeployedResource]:
        return {key: r for key, r in self.resources.items() if r.resource_type == resource_type}

    def names(self, resource_type: str) -> dict[str, str]:
        """Logical id -> name of every created resource of a type."""
        return {key: r.name for key, r in self.of_type(resource_type).items()}

    def only(self, resource_type: str) -> DeployedResource:
        """The one created resource of a type; an error when there are none or several."""
        found = list(self.of_type(resource_type).values())
        if len(found) != 1:
            raise LookupError(f"{self.template.name} has {len(found)} created {resource_type}, not one")
        return found[0]

    def physical_id(self, logical_id: str) -> str:
        return str(self.resolver.resolve({"Ref": logical_id}))

    def state_machine_of(self, construct: str) -> str:
        """The ARN of the one state machine whose logical id starts with the construct's id."""
        found = [
            resource.ref
            for logical_id, resource in self.of_type("AWS::StepFunctions::StateMachine").items()
            if logical_id.startswith(construct)
        ]
        if len(found) != 1:
            raise LookupError(f"{self.template.name} has {len(found)} state machines of {construct}, not one")
        return found[0]

    @property
    def state_machine_arn(self) -> str:
        """The rollout workflow's state machine."""
        return self.state_machine_of("Rollout")

    @property
    def retraining_state_machine_arn(self) -> str:
        return self.state_machine_of("Retraining")

    @property
    def topic_arn(self) -> str:
        return self.only("AWS::SNS::Topic").ref

    @property
    def endpoint_name(self) -> str:
        return self.only("AWS::SageMaker::Endpoint").name

    @property
    def function_names(self) -> dict[str, str]:
        return self.names("AWS::Lambda::Function")

    @property
    def table_names(self) -> dict[str, str]:
        return self.names("AWS::DynamoDB::Table")

    @property
    def bucket_names(self) -> dict[str, str]:
        return self.names("AWS::S3::Bucket")

    @property
    def queue_urls(self) -> dict[str, str]:
        return {key: r.ref for key, r in self.of_type("AWS::SQS::Queue").items()}

    @property
    def rule_names(self) -> dict[str, str]:
        return self.names("AWS::Events::Rule")

    @property
    def alarm_names(self) -> dict[str, str]:
        return self.names("AWS::CloudWatch::Alarm")

    @property
    def composite_alarm_names(self) -> dict[str, str]:
        return self.names("AWS::CloudWatch::CompositeAlarm")

    @property
    def appconfig_ids(self) -> dict[str, str]:
        """Logical id -> id (`Ref`) of every created AppConfig resource."""
        return {key: r.ref for key, r in self.resources.items() if r.resource_type.startswith(APPCONFIG)}


APPCONFIG = "AWS::AppConfig::"


class SkippedResource(Exception):
    """An optional resource was not created: the message says why."""


@dataclass
class DeployContext:
    template: StackTemplate
    resolver: Resolver
    runner: LambdaRunner
    session: boto3.Session
    endpoint_url: str | None
    functions_role_arn: str | None
    function_transform: FunctionTransform | None
    definition_transform: DefinitionTransform | None
    require_appconfig: bool
    deferred: list[Callable[[], None]] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.resolver.environment.region

    def client(self, service: str) -> Any:
        # Typed Any: the service name is a plain str, which the stubs' per-service overloads do not take.
        if service not in self._clients:
            session: Any = self.session
            self._clients[service] = session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def name(self, logical_id: str, declared: Any, *, max_length: int = 64, lower: bool = False) -> str:
        if isinstance(declared, str) and declared:
            return declared
        name = local_physical_name(self.template.name, logical_id)
        return (name.lower() if lower else name)[:max_length]

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        return self.resolver.environment.arn(service, resource, regional=regional)

    def record(self, resource: DeployedResource) -> None:
        physical_ids = {**self.resolver.physical_ids, resource.logical_id: resource.ref}
        attributes = {key: dict(value) for key, value in self.resolver.attributes.items()}
        attributes[resource.logical_id] = dict(resource.attributes)
        self.resolver = dataclasses.replace(self.resolver, physical_ids=physical_ids, attributes=attributes)


Creator = Callable[[DeployContext, str, dict[str, Any]], DeployedResource]


@dataclass(frozen=True)
class ResourceKind:
    """How one type is created: the creator, the properties it applies, the ones it does not (and why)."""

    create: Creator
    properties: frozenset[str]
    not_applied: Mapping[str, str] = field(default_factory=dict)


def unimplemented(error: BaseException) -> bool:
    """moto's answer to an operation it lacks: NotImplementedError in-process for some protocols, an
    error coded "404" ("Not yet implemented") for REST ones, in-process and through its server."""
    if isinstance(error, NotImplementedError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        return code in {"404", "NotImplemented", "InvalidAction", "UnknownOperationException"}
    return False


def merged_stack(name: str, stacks: Sequence[DeployedStack]) -> DeployedStack:
    """Several deployed stacks of one app seen as one (an environment and its family stacks): their
    resources by logical id (distinct across the app's stacks), and a resolver that knows them all."""
    if len(stacks) == 1:
        return stacks[0]
    physical_ids: dict[str, str] = {}
    attributes: dict[str, Mapping[str, str]] = {}
    parameters: dict[str, str] = {}
    for stack in stacks:
        physical_ids.update(stack.resolver.physical_ids)
        attributes.update(stack.resolver.attributes)
        parameters.update(stack.resolver.parameters)
    first = stacks[0]
    template = merged_template(name, [stack.template for stack in stacks])
    resolver = dataclasses.replace(
        first.resolver,
        template=template,
        physical_ids=physical_ids,
        attributes=attributes,
        parameters=parameters,
    )
    return DeployedStack(
        template=template,
        resolver=resolver,
        resources={k: v for s in stacks for k, v in s.resources.items()},
        not_created={k: v for s in stacks for k, v in s.not_created.items()},
        skipped={k: v for s in stacks for k, v in s.skipped.items()},
        order=tuple(k for s in stacks for k in s.order),
        outputs={k: v for s in stacks for k, v in s.outputs.items()},
        exports={k: v for s in stacks for k, v in s.exports.items()},
        outputs_not_evaluated={k: v for s in stacks for k, v in s.outputs_not_evaluated.items()},
    )
