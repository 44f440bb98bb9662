"""Deploy a synthesized stack (`cdk.out`) into moto: every resource CloudFormation would create, through the
services' own APIs (boto3), in CloudFormation's order.

moto's CloudFormation is not used: the state machines it creates are invisible to moto's Step Functions
executor, and it lacks many of the stack's types. Instead `deploy_stack` reads the template and does
what CloudFormation does ("Resource dependencies", "DependsOn attribute"):

* **Order.** A resource is created after every resource it names in `DependsOn`, `Ref`, `Fn::GetAtt`
  or `Fn::Sub`; the order is a topological sort of that graph (the template's order among equals). A
  cycle is refused with the resources on it (`DependencyCycleError`), as CloudFormation refuses a
  "Circular dependency between resources".
* **Values.** Each resource's properties are resolved (`localcloud.template.Resolver`) when it is
  created, with the physical ids and attributes of the resources created before it: `Ref` and
  `Fn::GetAtt` give what CloudFormation documents for the type (a queue's `Ref` is its URL, a KMS key's
  its key id, a SageMaker model's its ARN, an AppConfig application's its id, ...), read from moto's
  responses, so ids moto generates (KMS keys, AppConfig) flow into the resources that name them.
* **Names.** The template's name property when it sets one, else `<stack>-<logical id>`
  (`local_physical_name`; CloudFormation would append a random suffix), lower-cased for buckets, whose
  names S3 requires in lower case.
* **Request shapes.** CloudFormation's property names are translated to the API's where they differ:
  tables' `SSESpecification`/`StreamSpecification`/`TimeToLiveSpecification`/
  `PointInTimeRecoverySpecification`, buckets' encryption, lifecycle and logging, queue and topic
  attributes, state machines' logging and tracing, the tag shapes of each service. A property this
  module does not translate is an error naming it (`UnsupportedPropertyError`) unless the type's table
  lists it as not applied locally, with the reason. Alarm properties, rule targets (`Input`,
  `InputPath`, `InputTransformer`, `RoleArn`, `RetryPolicy`, `DeadLetterConfig`) and SageMaker
  properties are already the API's shapes.
* **Types.** `RESOURCE_KINDS` lists the types created; `NOT_CREATED` the types deliberately not created,
  each with its reason. Any other type is an error naming it (`UnsupportedResourceTypeError`), so a new
  CDK construct is noticed instead of silently missing. Template `Conditions` are refused likewise;
  `Rules` (CDK's bootstrap-version check) and `Outputs` are not evaluated.

What differs from AWS, by type:

* Lambda functions are created through `localcloud.moto_lambda.create_functions` and registered with the
  `LambdaRunner` that runs their handler; layers, architecture, X-Ray tracing and the template's log
  group are not applied (logs go to `/aws/lambda/<name>`), as the README of `localcloud` explains.
* State machines get `state_machine_definition`'s definition, optionally rewritten by
  `definition_transform` (tests shorten Wait states). The execution role is recorded, not assumed.
* The SageMaker endpoint is created from its config at once and is `InService` in moto; its model's
  `ModelDataUrl` may name an artifact that does not exist yet: it is not read, where SageMaker would
  fail the endpoint's creation on a missing artifact. Deployment guardrails (`DeploymentConfig`) are
  stored, not run; `RetainAllVariantProperties`/`RetainDeploymentConfig` only matter to UpdateEndpoint.
* IAM roles, inline and attached policies, resource policies (bucket, queue, topic, Lambda permissions)
  and key policies are stored in moto and not enforced, except that moto evaluates a bucket policy's
  ``aws:SecureTransport``: the TLS-only deny statements are left out of the stored bucket policies,
  since the local cloud's endpoint is plain HTTP on loopback. S3 access logging is applied after every
  resource, because moto (unlike S3) refuses it until the target bucket's policy lets the logging
  service write, and that policy names the logged bucket. An email subscription is created pending
  confirmation, as SNS leaves it, and no mail is sent.
* AppConfig: moto has applications, configuration profiles and hosted configuration versions. Its
  environments, deployment strategies, deployments and extension associations come from
  `localcloud.appconfig`: without it `AppConfigUnavailableError` names it, or, with
  `require_appconfig=False`, those resources are skipped (`DeployedStack.skipped`, with the reason); a
  `Ref` to one resolves to its local name, an `Fn::GetAtt` of one is an error.
* Composite alarms need PutCompositeAlarm, which moto lacks: open `localcloud.alarm_evaluation`'s
  `emulate_alarm_apis` (`LocalCloud` does). Alarms are stored; evaluating them is `AlarmEvaluator`'s.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from localcloud.lambda_runner import FunctionSpec, LambdaRunner, functions_from_template
from localcloud.moto_lambda import create_functions
from localcloud.template import (
    Resolver,
    StackTemplate,
    TemplateError,
    local_physical_name,
    local_resolver,
    state_machine_definition,
)

# (logical id, definition) -> the definition to create the state machine with.
DefinitionTransform = Callable[[str, str], str]
FunctionTransform = Callable[[FunctionSpec], FunctionSpec]

# Types not created locally, each with the reason. Anything else outside `RESOURCE_KINDS` is an error.
NOT_CREATED: Mapping[str, str] = {
    "AWS::ApiGatewayV2::Api": "the HTTP API is not emulated: tests invoke the serving handlers directly "
    "with API Gateway's events",
    "AWS::ApiGatewayV2::Stage": "part of the HTTP API, which is not emulated",
    "AWS::ApiGatewayV2::Route": "part of the HTTP API, which is not emulated",
    "AWS::ApiGatewayV2::Integration": "part of the HTTP API, which is not emulated",
    "AWS::ApplicationAutoScaling::ScalableTarget": "instance counts are not emulated: moto's endpoints "
    "keep their configured instance count",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "instance counts are not emulated",
    "AWS::CDK::Metadata": "CDK's usage report to AWS, no resource",
}


class DeployError(ValueError):
    """The stack cannot be deployed locally: the message names the resource and the problem."""


class UnsupportedResourceTypeError(DeployError):
    """A resource type neither created locally nor listed in `NOT_CREATED`."""


class UnsupportedPropertyError(DeployError):
    """A property of a created type that this module neither translates nor lists as not applied."""


class DependencyCycleError(DeployError):
    """The resources depend on each other in a cycle (CloudFormation refuses such a template too)."""


class AppConfigUnavailableError(DeployError):
    """moto lacks an AppConfig API the stack needs and `localcloud.appconfig` is not open."""


class AlarmApisUnavailableError(DeployError):
    """moto lacks PutCompositeAlarm and `localcloud.alarm_evaluation.emulate_alarm_apis` is not open."""


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
    knows every physical id (resolve anything of the template with it)."""

    template: StackTemplate
    resolver: Resolver
    resources: Mapping[str, DeployedResource]
    not_created: Mapping[str, str]
    skipped: Mapping[str, str]
    order: Sequence[str]

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


class _Skipped(Exception):
    """An optional resource was not created: the message says why."""


@dataclass
class _Deployment:
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


Creator = Callable[[_Deployment, str, dict[str, Any]], DeployedResource]


@dataclass(frozen=True)
class ResourceKind:
    """How one type is created: the creator, the properties it applies, the ones it does not (and why)."""

    create: Creator
    properties: frozenset[str]
    not_applied: Mapping[str, str] = field(default_factory=dict)


def deploy_stack(
    template: StackTemplate,
    resolver: Resolver | None = None,
    *,
    runner: LambdaRunner,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    functions_role_arn: str | None = None,
    function_transform: FunctionTransform | None = None,
    definition_transform: DefinitionTransform | None = None,
    require_appconfig: bool = True,
) -> DeployedStack:
    """Creates every resource of `template` that `RESOURCE_KINDS` knows, in dependency order.

    Calls go through boto3 (`session`, default a new one; `endpoint_url`, default boto3's, which honours
    `AWS_ENDPOINT_URL`): under moto's in-process mock, or to moto's server. `resolver` supplies the
    environment and parameter values (default `local_resolver(template)`). Functions are registered with
    `runner` (after `function_transform`, e.g. an accelerated clock's `on`) and created with their
    template role, or `functions_role_arn` when given. The template is checked completely (types,
    properties, conditions, dependencies) before anything is created.
    """
    resolver = resolver or local_resolver(template)
    check_template(template)
    order = creation_order(template)
    deployment = _Deployment(
        template=template,
        resolver=resolver,
        runner=runner,
        session=session or boto3.Session(),
        endpoint_url=endpoint_url,
        functions_role_arn=functions_role_arn,
        function_transform=function_transform,
        definition_transform=definition_transform,
        require_appconfig=require_appconfig,
    )
    created: dict[str, DeployedResource] = {}
    not_created: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for logical_id in order:
        resource = template.resources[logical_id]
        resource_type = str(resource["Type"])
        if resource_type in NOT_CREATED:
            not_created[logical_id] = NOT_CREATED[resource_type]
            continue
        kind = RESOURCE_KINDS[resource_type]
        applied = {
            key: value for key, value in resource.get("Properties", {}).items() if key not in kind.not_applied
        }
        where = f"{template.name}/{logical_id} ({resource_type})"
        try:
            properties = deployment.resolver.resolve(applied)
            deployed = kind.create(deployment, logical_id, properties)
        except _Skipped as reason:
            skipped[logical_id] = str(reason)
            continue
        except TemplateError as error:
            raise DeployError(f"{where}: {error}") from error
        except ClientError as error:
            raise DeployError(f"{where}: {error}") from error
        deployment.record(deployed)
        created[logical_id] = deployed
    for step in deployment.deferred:
        step()
    return DeployedStack(
        template=template,
        resolver=deployment.resolver,
        resources=created,
        not_created=not_created,
        skipped=skipped,
        order=tuple(order),
    )


# --- checking and ordering ----------------------------------------------------------------------------


def check_template(template: StackTemplate) -> None:
    """Refuses, before anything is created, what this module cannot deploy: every problem named."""
    problems: list[str] = []
    if template.body.get("Conditions"):
        problems.append(f"Conditions {sorted(template.body['Conditions'])} are not evaluated locally")
    unknown_types: dict[str, list[str]] = {}
    unknown_properties: list[str] = []
    for logical_id, resource in template.resources.items():
        resource_type = str(resource.get("Type"))
        if "Condition" in resource:
            problems.append(f"{logical_id} has a Condition, which is not evaluated locally")
        if resource_type in NOT_CREATED:
            continue
        kind = RESOURCE_KINDS.get(resource_type)
        if kind is None:
            unknown_types.setdefault(resource_type, []).append(logical_id)
            continue
        unknown = sorted(set(resource.get("Properties", {})) - kind.properties - set(kind.not_applied))
        if unknown:
            unknown_properties.append(f"{logical_id} ({resource_type}): {', '.join(unknown)}")
    if unknown_types:
        listed = "; ".join(f"{t} ({', '.join(ids)})" for t, ids in sorted(unknown_types.items()))
        raise UnsupportedResourceTypeError(
            f"{template.name}: resource types not known to localcloud.deploy: {listed}. Create them in "
            "RESOURCE_KINDS or list them, with the reason, in NOT_CREATED"
        )
    if unknown_properties:
        raise UnsupportedPropertyError(
            f"{template.name}: properties not deployed locally: {'; '.join(unknown_properties)}. "
            "Translate them in localcloud/deploy.py or list them, with the reason, as not applied"
        )
    if problems:
        raise DeployError(f"{template.name}: " + "; ".join(problems))


def dependencies(template: StackTemplate) -> dict[str, set[str]]:
    """Logical id -> the resources it needs first: `DependsOn`, and every `Ref`, `Fn::GetAtt` and
    `Fn::Sub` variable that names a resource."""
    resources = template.resources
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        needed = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        for name in needed:
            if name not in resources:
                raise DeployError(f"{template.name}/{logical_id}: DependsOn {name}, which is not a resource")
        needed |= {name for name in _references(resource.get("Properties", {})) if name in resources}
        graph[logical_id] = needed
    return graph


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                yield argument
            elif key == "Fn::GetAtt":
                yield argument.split(".", 1)[0] if isinstance(argument, str) else str(argument[0])
            elif key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                defined = set(variables)
                for name in _SUB_VARIABLE.findall(str(text)):
                    if name not in defined:
                        yield name.split(".", 1)[0]
                yield from _references(variables)
            else:
                yield from _references(argument)


def creation_order(template: StackTemplate) -> list[str]:
    """Every resource after the ones it needs (`dependencies`), the template's order among equals."""
    graph = dependencies(template)
    order: list[str] = []
    done: set[str] = set()
    pending = list(template.resources)
    while pending:
        ready = [logical_id for logical_id in pending if graph[logical_id] <= done]
        if not ready:
            cycle = _a_cycle({key: graph[key] - done for key in pending})
            raise DependencyCycleError(
                f"{template.name}: circular dependency between resources: {' -> '.join(cycle)}"
            )
        for logical_id in ready:
            order.append(logical_id)
            done.add(logical_id)
        pending = [logical_id for logical_id in pending if logical_id not in done]
    return order


def _a_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One cycle of a graph in which every node waits on another (walk until a node repeats)."""
    path: list[str] = []
    node = min(graph)
    while node not in path:
        path.append(node)
        node = min(graph[node])
    return [*path[path.index(node) :], node]


# --- tags ---------------------------------------------------------------------------------------------


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    """CloudFormation's `Tags` ([{Key, Value}]) as the many APIs that take that shape."""
    return [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in properties.get("Tags", [])]


def _tag_map(properties: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in _tags(properties)}


def _present(properties: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The properties that are set, under the API's parameter names (CloudFormation name -> API name)."""
    return {api: properties[cfn] for cfn, api in mapping.items() if cfn in properties}


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


def _attribute_text(value: Any) -> str:
    """A queue or topic attribute value as the API takes it: strings, booleans in lower case, JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# --- DynamoDB -----------------------------------------------------------------------------------------


def _create_table(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    dynamodb = ctx.client("dynamodb")
    name = ctx.name(logical_id, props.get("TableName"), max_length=255)
    request: dict[str, Any] = {
        "TableName": name,
        **_present(
            props,
            _same(
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
            **_present(sse, {"SSEType": "SSEType", "KMSMasterKeyId": "KMSMasterKeyId"}),
        }
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
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


# --- S3 -----------------------------------------------------------------------------------------------

_LIFECYCLE_RULE_KEYS = {
    "Id",
    "Status",
    "Prefix",
    "ExpirationInDays",
    "ExpirationDate",
    "ExpiredObjectDeleteMarker",
    "NoncurrentVersionExpiration",
    "NoncurrentVersionExpirationInDays",
    "AbortIncompleteMultipartUpload",
    "Transitions",
    "NoncurrentVersionTransitions",
}


def _lifecycle_rule(logical_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(rule) - _LIFECYCLE_RULE_KEYS)
    if unknown:
        raise UnsupportedPropertyError(f"{logical_id}: lifecycle rule keys {unknown} are not translated")
    translated: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        translated["ID"] = rule["Id"]
    expiration = _present(
        rule,
        {
            "ExpirationInDays": "Days",
            "ExpirationDate": "Date",
            "ExpiredObjectDeleteMarker": "ExpiredObjectDeleteMarker",
        },
    )
    if expiration:
        translated["Expiration"] = expiration
    if "NoncurrentVersionExpiration" in rule:
        translated["NoncurrentVersionExpiration"] = dict(rule["NoncurrentVersionExpiration"])
    elif "NoncurrentVersionExpirationInDays" in rule:
        translated["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]
        }
    if "AbortIncompleteMultipartUpload" in rule:
        translated["AbortIncompleteMultipartUpload"] = dict(rule["AbortIncompleteMultipartUpload"])
    if "Transitions" in rule:
        translated["Transitions"] = [
            {
                "StorageClass": t["StorageClass"],
                **_present(t, {"TransitionInDays": "Days", "TransitionDate": "Date"}),
            }
            for t in rule["Transitions"]
        ]
    if "NoncurrentVersionTransitions" in rule:
        translated["NoncurrentVersionTransitions"] = [
            {"StorageClass": t["StorageClass"], "NoncurrentDays": t["TransitionInDays"]}
            for t in rule["NoncurrentVersionTransitions"]
        ]
    return translated


def _create_bucket(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    s3 = ctx.client("s3")
    name = ctx.name(logical_id, props.get("BucketName"), max_length=63, lower=True)
    if ctx.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ctx.region})
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    if "BucketEncryption" in props:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": dict(rule["ServerSideEncryptionByDefault"]),
                **_present(rule, {"BucketKeyEnabled": "BucketKeyEnabled"}),
            }
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "LifecycleConfiguration" in props:
        rules = [_lifecycle_rule(logical_id, rule) for rule in props["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
    if "NotificationConfiguration" in props:
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration=_notifications(logical_id, props["NotificationConfiguration"]),
        )
    if "LoggingConfiguration" in props:
        logging = props["LoggingConfiguration"]
        enabled = {
            "TargetBucket": logging["DestinationBucketName"],
            "TargetPrefix": logging.get("LogFilePrefix", ""),
        }
        # After every resource: moto checks the target's bucket policy, which names this bucket.
        ctx.deferred.append(
            lambda: s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={"LoggingEnabled": enabled})
        )
    attributes = {
        "Arn": f"arn:{ctx.resolver.environment.partition}:s3:::{name}",
        "DomainName": f"{name}.s3.{ctx.resolver.environment.url_suffix}",
        "RegionalDomainName": f"{name}.s3.{ctx.region}.{ctx.resolver.environment.url_suffix}",
    }
    return DeployedResource(logical_id, "AWS::S3::Bucket", name, name, attributes)


def _notifications(logical_id: str, notification: Mapping[str, Any]) -> dict[str, Any]:
    """Amazon EventBridge delivery (the only kind the stack uses): moto then puts "Object Created" and the
    other S3 events on the default bus, where the stack's rules match them."""
    others = sorted(set(notification) - {"EventBridgeConfiguration"})
    if others:
        raise UnsupportedPropertyError(
            f"{logical_id}: NotificationConfiguration.{', '.join(others)} is not translated; only "
            "EventBridgeConfiguration is"
        )
    enabled = notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled", False)
    return {"EventBridgeConfiguration": {}} if enabled else {}


def _denies_plain_http(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition", {}).get("Bool", {})
    return statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false"


def _put_bucket_policy(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    bucket = str(props["Bucket"])
    document = dict(props["PolicyDocument"])
    # moto evaluates aws:SecureTransport, and the local cloud's endpoint is plain HTTP on loopback: the
    # TLS-only statements would refuse every call. Every other statement is stored as the template has it.
    document["Statement"] = [s for s in document.get("Statement", []) if not _denies_plain_http(s)]
    ctx.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    return DeployedResource(logical_id, "AWS::S3::BucketPolicy", bucket, bucket)


# --- KMS ----------------------------------------------------------------------------------------------


def _create_key(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    kms = ctx.client("kms")
    request = _present(
        props,
        {
            "Description": "Description",
            "KeyUsage": "KeyUsage",
            "KeySpec": "KeySpec",
            "MultiRegion": "MultiRegion",
        },
    )
    if "KeyPolicy" in props:
        request["Policy"] = json.dumps(props["KeyPolicy"])
    if props.get("Tags"):
        request["Tags"] = [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in _tags(props)]
    metadata = kms.create_key(**request)["KeyMetadata"]
    key_id = str(metadata["KeyId"])
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key_id)
    if props.get("Enabled") is False:
        kms.disable_key(KeyId=key_id)
    attributes = {"Arn": str(metadata["Arn"]), "KeyId": key_id}
    return DeployedResource(logical_id, "AWS::KMS::Key", key_id, key_id, attributes)


def _create_alias(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = str(props["AliasName"])
    ctx.client("kms").create_alias(AliasName=name, TargetKeyId=str(props["TargetKeyId"]))
    return DeployedResource(logical_id, "AWS::KMS::Alias", name, name)


# --- SNS and SQS --------------------------------------------------------------------------------------

_TOPIC_ATTRIBUTES = _same("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
_SUBSCRIPTION_ATTRIBUTES = _same(
    "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy"
)


def _create_topic(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    sns = ctx.client("sns")
    name = ctx.name(logical_id, props.get("TopicName"), max_length=256)
    attributes = {key: _attribute_text(value) for key, value in _present(props, _TOPIC_ATTRIBUTES).items()}
    request: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = str(sns.create_topic(**request)["TopicArn"])
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return DeployedResource(logical_id, "AWS::SNS::Topic", arn, name, {"TopicArn": arn, "TopicName": name})


def _subscribe(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    attributes = {
        key: _attribute_text(value) for key, value in _present(props, _SUBSCRIPTION_ATTRIBUTES).items()
    }
    request = {
        "TopicArn": props["TopicArn"],
        "Protocol": props["Protocol"],
        "Attributes": attributes,
        "ReturnSubscriptionArn": True,
        **_present(props, {"Endpoint": "Endpoint"}),
    }
    arn = str(ctx.client("sns").subscribe(**request)["SubscriptionArn"])
    return DeployedResource(logical_id, "AWS::SNS::Subscription", arn, arn, {"Arn": arn})


def _put_topic_policy(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    policy = json.dumps(props["PolicyDocument"])
    for topic_arn in props["Topics"]:
        ctx.client("sns").set_topic_attributes(
            TopicArn=topic_arn, AttributeName="Policy", AttributeValue=policy
        )
    name = ctx.name(logical_id, None)
    return DeployedResource(logical_id, "AWS::SNS::TopicPolicy", name, name)


_QUEUE_ATTRIBUTES = _same(
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


def _create_queue(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    sqs = ctx.client("sqs")
    name = ctx.name(logical_id, props.get("QueueName"), max_length=80)
    attributes = {key: _attribute_text(value) for key, value in _present(props, _QUEUE_ATTRIBUTES).items()}
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = _tag_map(props)
    url = str(sqs.create_queue(**request)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return DeployedResource(
        logical_id, "AWS::SQS::Queue", url, name, {"Arn": str(arn), "QueueName": name, "QueueUrl": url}
    )


def _put_queue_policy(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    policy = json.dumps(props["PolicyDocument"])
    for queue_url in props["Queues"]:
        ctx.client("sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
    name = ctx.name(logical_id, None)
    return DeployedResource(logical_id, "AWS::SQS::QueuePolicy", name, name)


# --- IAM and logs -------------------------------------------------------------------------------------


def _create_role(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    iam = ctx.client("iam")
    name = ctx.name(logical_id, props.get("RoleName"))
    request: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
        **_present(
            props,
            _same("Description", "Path", "MaxSessionDuration")
            | {"PermissionsBoundary": "PermissionsBoundary"},
        ),
    }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    role = iam.create_role(**request)["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    for policy_arn in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    attributes = {"Arn": str(role["Arn"]), "RoleId": str(role["RoleId"])}
    return DeployedResource(logical_id, "AWS::IAM::Role", name, name, attributes)


def _put_role_policies(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = str(props["PolicyName"])
    document = json.dumps(props["PolicyDocument"])
    for role in props.get("Roles", []):
        ctx.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=document)
    return DeployedResource(logical_id, "AWS::IAM::Policy", ctx.name(logical_id, None), name)


def _create_log_group(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    logs = ctx.client("logs")
    name = ctx.name(logical_id, props.get("LogGroupName"), max_length=512)
    request: dict[str, Any] = {"logGroupName": name, **_present(props, {"KmsKeyId": "kmsKeyId"})}
    if props.get("Tags"):
        request["tags"] = _tag_map(props)
    logs.create_log_group(**request)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    arn = ctx.arn("logs", f"log-group:{name}:*")
    return DeployedResource(logical_id, "AWS::Logs::LogGroup", name, name, {"Arn": arn})


# --- Lambda and Step Functions ------------------------------------------------------------------------


def _create_function(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
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
        lambda_client.tag_resource(Resource=arn, Tags=_tag_map(props))
    return DeployedResource(logical_id, "AWS::Lambda::Function", name, name, {"Arn": arn})


def _add_permission(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    request = {
        "StatementId": logical_id,
        **_present(
            props,
            _same(
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


def _create_state_machine(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
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
            **_present(logging, {"Level": "level", "IncludeExecutionData": "includeExecutionData"}),
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for d in logging.get("Destinations", [])
            ],
        }
    if "TracingConfiguration" in props:
        request["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
    if props.get("Tags"):
        request["tags"] = [{"key": tag["Key"], "value": tag["Value"]} for tag in _tags(props)]
    arn = str(ctx.client("stepfunctions").create_state_machine(**request)["stateMachineArn"])
    return DeployedResource(
        logical_id, "AWS::StepFunctions::StateMachine", arn, name, {"Arn": arn, "Name": name}
    )


# --- EventBridge and CloudWatch -----------------------------------------------------------------------

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


def _put_rule(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    events = ctx.client("events")
    name = ctx.name(logical_id, props.get("Name"))
    request: dict[str, Any] = {
        "Name": name,
        **_present(props, _same("ScheduleExpression", "State", "Description", "RoleArn", "EventBusName")),
    }
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = str(events.put_rule(**request)["RuleArn"])
    targets = props.get("Targets", [])
    for target in targets:
        unknown = sorted(set(target) - _TARGET_KEYS)
        if unknown:
            raise UnsupportedPropertyError(f"{logical_id}: target keys {unknown} are not deployed locally")
    if targets:
        bus = _present(props, {"EventBusName": "EventBusName"})
        failed = events.put_targets(Rule=name, Targets=targets, **bus).get("FailedEntries", [])
        if failed:
            raise DeployError(f"{ctx.template.name}/{logical_id}: targets refused: {failed}")
    return DeployedResource(logical_id, "AWS::Events::Rule", name, name, {"Arn": arn})


_METRIC_ALARM_PROPERTIES = frozenset(
    {
        "AlarmName",
        "AlarmDescription",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "Unit",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ThresholdMetricId",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "Tags",
    }
)
_COMPOSITE_ALARM_PROPERTIES = frozenset(
    {
        "AlarmName",
        "AlarmRule",
        "AlarmDescription",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "ActionsSuppressor",
        "ActionsSuppressorWaitPeriod",
        "ActionsSuppressorExtensionPeriod",
        "Tags",
    }
)


def _put_metric_alarm(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    # The alarm's CloudFormation properties are PutMetricAlarm's parameters, `Metrics` included.
    name = ctx.name(logical_id, props.get("AlarmName"), max_length=255)
    ctx.client("cloudwatch").put_metric_alarm(**{**props, "AlarmName": name})
    arn = ctx.arn("cloudwatch", f"alarm:{name}")
    return DeployedResource(logical_id, "AWS::CloudWatch::Alarm", name, name, {"Arn": arn})


def _put_composite_alarm(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("AlarmName"), max_length=255)
    try:
        ctx.client("cloudwatch").put_composite_alarm(**{**props, "AlarmName": name})
    except (ClientError, NotImplementedError) as error:
        if not _unimplemented(error):
            raise
        raise AlarmApisUnavailableError(
            f"{ctx.template.name}/{logical_id}: moto has no PutCompositeAlarm; open "
            "localcloud.alarm_evaluation.emulate_alarm_apis() while deploying"
        ) from error
    arn = ctx.arn("cloudwatch", f"alarm:{name}")
    return DeployedResource(logical_id, "AWS::CloudWatch::CompositeAlarm", name, name, {"Arn": arn})


def _put_dashboard(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("DashboardName"), max_length=255)
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=str(props["DashboardBody"]))
    arn = ctx.arn("cloudwatch", f"dashboard/{name}", regional=False)
    return DeployedResource(logical_id, "AWS::CloudWatch::Dashboard", name, name, {"Arn": arn})


# --- SageMaker ----------------------------------------------------------------------------------------


def _create_model(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("ModelName"), max_length=63)
    request = {
        "ModelName": name,
        **_present(
            props,
            _same(
                "ExecutionRoleArn",
                "PrimaryContainer",
                "Containers",
                "InferenceExecutionConfig",
                "VpcConfig",
                "EnableNetworkIsolation",
            ),
        ),
    }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = str(ctx.client("sagemaker").create_model(**request)["ModelArn"])
    return DeployedResource(logical_id, "AWS::SageMaker::Model", arn, name, {"ModelName": name})


def _create_endpoint_config(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("EndpointConfigName"), max_length=63)
    request = {
        "EndpointConfigName": name,
        **_present(
            props,
            _same(
                "ProductionVariants",
                "DataCaptureConfig",
                "KmsKeyId",
                "AsyncInferenceConfig",
                "ShadowProductionVariants",
            ),
        ),
    }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = str(ctx.client("sagemaker").create_endpoint_config(**request)["EndpointConfigArn"])
    return DeployedResource(
        logical_id, "AWS::SageMaker::EndpointConfig", arn, name, {"EndpointConfigName": name}
    )


def _create_endpoint(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("EndpointName"), max_length=63)
    request = {
        "EndpointName": name,
        **_present(props, _same("EndpointConfigName", "DeploymentConfig")),
    }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = str(ctx.client("sagemaker").create_endpoint(**request)["EndpointArn"])
    return DeployedResource(logical_id, "AWS::SageMaker::Endpoint", arn, name, {"EndpointName": name})


def _create_model_package_group(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("ModelPackageGroupName"), max_length=63)
    request = {
        "ModelPackageGroupName": name,
        **_present(props, _same("ModelPackageGroupDescription")),
    }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    arn = str(ctx.client("sagemaker").create_model_package_group(**request)["ModelPackageGroupArn"])
    return DeployedResource(
        logical_id, "AWS::SageMaker::ModelPackageGroup", arn, name, {"ModelPackageGroupArn": arn}
    )


# --- AppConfig ----------------------------------------------------------------------------------------


def _unimplemented(error: BaseException) -> bool:
    """moto's answer to an operation it lacks: NotImplementedError in-process for some protocols, an
    error coded "404" ("Not yet implemented") for REST ones, in-process and through its server."""
    if isinstance(error, NotImplementedError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        return code in {"404", "NotImplemented", "InvalidAction", "UnknownOperationException"}
    return False


def _appconfig(
    ctx: _Deployment, logical_id: str, operation: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        response: dict[str, Any] = getattr(ctx.client("appconfig"), operation)(**request)
    except (ClientError, NotImplementedError) as error:
        if not _unimplemented(error):
            raise
        reason = f"moto has no AppConfig {operation} and localcloud.appconfig is not open"
        if not ctx.require_appconfig:
            raise _Skipped(reason) from error
        raise AppConfigUnavailableError(
            f"{ctx.template.name}/{logical_id}: {reason}; open localcloud.appconfig's emulation while "
            "deploying, or deploy with require_appconfig=False to skip what it provides"
        ) from error
    return response


def _appconfig_resource(
    resource_type: str, operation: str, mapping: Mapping[str, str], id_key: str
) -> Creator:
    """A creator for an AppConfig type whose properties are its operation's parameters (`mapping`), and
    whose `Ref` is the `id_key` of the answer."""

    def create(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
        request = _present(props, mapping)
        if props.get("Tags"):
            request["Tags"] = _tag_map(props)
        if "Content" in request and isinstance(request["Content"], str):
            request["Content"] = request["Content"].encode()
        response = _appconfig(ctx, logical_id, operation, request)
        ref = str(response[id_key])
        attributes = {id_key: ref}
        if "Arn" in response:
            attributes["Arn"] = str(response["Arn"])
        name = str(props.get("Name", ref))
        return DeployedResource(logical_id, resource_type, ref, name, attributes)

    return create


_APPCONFIG_KINDS: dict[str, tuple[str, dict[str, str], str]] = {
    "AWS::AppConfig::Application": ("create_application", _same("Name", "Description"), "Id"),
    "AWS::AppConfig::Environment": (
        "create_environment",
        _same("ApplicationId", "Name", "Description", "Monitors"),
        "Id",
    ),
    "AWS::AppConfig::DeploymentStrategy": (
        "create_deployment_strategy",
        _same(
            "Name",
            "Description",
            "DeploymentDurationInMinutes",
            "FinalBakeTimeInMinutes",
            "GrowthFactor",
            "GrowthType",
            "ReplicateTo",
        ),
        "Id",
    ),
    "AWS::AppConfig::ConfigurationProfile": (
        "create_configuration_profile",
        _same(
            "ApplicationId",
            "Name",
            "Description",
            "LocationUri",
            "RetrievalRoleArn",
            "Validators",
            "Type",
            "KmsKeyIdentifier",
        ),
        "Id",
    ),
    "AWS::AppConfig::HostedConfigurationVersion": (
        "create_hosted_configuration_version",
        _same(
            "ApplicationId",
            "ConfigurationProfileId",
            "Description",
            "Content",
            "ContentType",
            "LatestVersionNumber",
            "VersionLabel",
        ),
        "VersionNumber",
    ),
    "AWS::AppConfig::Deployment": (
        "start_deployment",
        _same(
            "ApplicationId",
            "EnvironmentId",
            "DeploymentStrategyId",
            "ConfigurationProfileId",
            "ConfigurationVersion",
            "Description",
            "KmsKeyIdentifier",
            "DynamicExtensionParameters",
        ),
        "DeploymentNumber",
    ),
    "AWS::AppConfig::ExtensionAssociation": (
        "create_extension_association",
        _same("ExtensionIdentifier", "ResourceIdentifier", "ExtensionVersionNumber", "Parameters"),
        "Id",
    ),
}

# Ids CloudFormation's `Fn::GetAtt` gives for AppConfig types, by the answer's key.
_APPCONFIG_ATTRIBUTE_NAMES = {
    "AWS::AppConfig::Application": "ApplicationId",
    "AWS::AppConfig::Environment": "EnvironmentId",
    "AWS::AppConfig::ConfigurationProfile": "ConfigurationProfileId",
}


def _appconfig_kind(resource_type: str) -> ResourceKind:
    operation, mapping, id_key = _APPCONFIG_KINDS[resource_type]
    base = _appconfig_resource(resource_type, operation, mapping, id_key)
    attribute = _APPCONFIG_ATTRIBUTE_NAMES.get(resource_type)

    def create(ctx: _Deployment, logical_id: str, props: dict[str, Any]) -> DeployedResource:
        created = base(ctx, logical_id, props)
        if attribute is None:
            return created
        return dataclasses.replace(created, attributes={**created.attributes, attribute: created.ref})

    return ResourceKind(create, frozenset(mapping) | {"Tags"})


# --- the table of types -------------------------------------------------------------------------------

_FUNCTION_NOT_APPLIED = {
    "Architectures": "the handler runs on this machine's interpreter",
    "Layers": "layers are not emulated: their imports come from this venv (localcloud/README.md)",
    "TracingConfig": "X-Ray is not emulated",
    "LoggingConfig": "moto writes a function's logs to /aws/lambda/<name>",
    "ReservedConcurrentExecutions": "concurrency limits are not enforced",
    "DeadLetterConfig": "asynchronous invocations are not retried locally, so none fails over to a queue",
}

RESOURCE_KINDS: Mapping[str, ResourceKind] = {
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
    "AWS::S3::Bucket": ResourceKind(
        _create_bucket,
        frozenset(
            {
                "BucketName",
                "BucketEncryption",
                "LifecycleConfiguration",
                "LoggingConfiguration",
                "NotificationConfiguration",
                "OwnershipControls",
                "PublicAccessBlockConfiguration",
                "VersioningConfiguration",
                "Tags",
            }
        ),
    ),
    "AWS::S3::BucketPolicy": ResourceKind(_put_bucket_policy, frozenset({"Bucket", "PolicyDocument"})),
    "AWS::KMS::Key": ResourceKind(
        _create_key,
        frozenset(
            {
                "Description",
                "KeyUsage",
                "KeySpec",
                "MultiRegion",
                "KeyPolicy",
                "EnableKeyRotation",
                "Enabled",
                "Tags",
            }
        ),
        {"PendingWindowInDays": "only applies when the key is deleted"},
    ),
    "AWS::KMS::Alias": ResourceKind(_create_alias, frozenset({"AliasName", "TargetKeyId"})),
    "AWS::SNS::Topic": ResourceKind(
        _create_topic, frozenset(_TOPIC_ATTRIBUTES) | {"TopicName", "Subscription", "Tags"}
    ),
    "AWS::SNS::Subscription": ResourceKind(
        _subscribe,
        frozenset(_SUBSCRIPTION_ATTRIBUTES) | {"TopicArn", "Protocol", "Endpoint"},
        {"Region": "the topic is in the deployment's region"},
    ),
    "AWS::SNS::TopicPolicy": ResourceKind(_put_topic_policy, frozenset({"PolicyDocument", "Topics"})),
    "AWS::SQS::Queue": ResourceKind(_create_queue, frozenset(_QUEUE_ATTRIBUTES) | {"QueueName", "Tags"}),
    "AWS::SQS::QueuePolicy": ResourceKind(_put_queue_policy, frozenset({"PolicyDocument", "Queues"})),
    "AWS::IAM::Role": ResourceKind(
        _create_role,
        frozenset(
            {
                "RoleName",
                "AssumeRolePolicyDocument",
                "Description",
                "Path",
                "MaxSessionDuration",
                "PermissionsBoundary",
                "Policies",
                "ManagedPolicyArns",
                "Tags",
            }
        ),
    ),
    "AWS::IAM::Policy": ResourceKind(
        _put_role_policies, frozenset({"PolicyName", "PolicyDocument", "Roles"})
    ),
    "AWS::Logs::LogGroup": ResourceKind(
        _create_log_group,
        frozenset({"LogGroupName", "RetentionInDays", "KmsKeyId", "Tags"}),
        {"LogGroupClass": "moto has one class of log group"},
    ),
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
    "AWS::Events::Rule": ResourceKind(
        _put_rule,
        frozenset(
            {"Name", "EventPattern", "ScheduleExpression", "State", "Description", "RoleArn", "EventBusName"}
            | {"Targets", "Tags"}
        ),
    ),
    "AWS::CloudWatch::Alarm": ResourceKind(_put_metric_alarm, _METRIC_ALARM_PROPERTIES),
    "AWS::CloudWatch::CompositeAlarm": ResourceKind(_put_composite_alarm, _COMPOSITE_ALARM_PROPERTIES),
    "AWS::CloudWatch::Dashboard": ResourceKind(
        _put_dashboard,
        frozenset({"DashboardName", "DashboardBody"}),
        {"Tags": "moto's CloudWatch TagResource knows alarms only"},
    ),
    "AWS::SageMaker::Model": ResourceKind(
        _create_model,
        frozenset(
            {
                "ModelName",
                "ExecutionRoleArn",
                "PrimaryContainer",
                "Containers",
                "InferenceExecutionConfig",
                "VpcConfig",
                "EnableNetworkIsolation",
                "Tags",
            }
        ),
    ),
    "AWS::SageMaker::EndpointConfig": ResourceKind(
        _create_endpoint_config,
        frozenset(
            {
                "EndpointConfigName",
                "ProductionVariants",
                "DataCaptureConfig",
                "KmsKeyId",
                "AsyncInferenceConfig",
                "ShadowProductionVariants",
                "Tags",
            }
        ),
    ),
    "AWS::SageMaker::Endpoint": ResourceKind(
        _create_endpoint,
        frozenset({"EndpointName", "EndpointConfigName", "DeploymentConfig", "Tags"}),
        {
            "RetainAllVariantProperties": "applies to UpdateEndpoint only",
            "RetainDeploymentConfig": "applies to UpdateEndpoint only",
            "ExcludeRetainedVariantProperties": "applies to UpdateEndpoint only",
        },
    ),
    "AWS::SageMaker::ModelPackageGroup": ResourceKind(
        _create_model_package_group,
        frozenset({"ModelPackageGroupName", "ModelPackageGroupDescription", "Tags"}),
    ),
    **{resource_type: _appconfig_kind(resource_type) for resource_type in _APPCONFIG_KINDS},
}
