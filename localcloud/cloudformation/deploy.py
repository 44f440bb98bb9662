"""Deploy a synthesized stack (`cdk.out`) into moto: every resource CloudFormation would create, through
the services' own APIs, in CloudFormation's order. What differs from AWS: README.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from localcloud.account import AwsEnvironment
from localcloud.awslambda.runner import LambdaRunner
from localcloud.cloudformation.crossstack import stack_outputs, with_stack_inputs
from localcloud.cloudformation.models import (
    DefinitionTransform,
    DeployContext,
    DeployedResource,
    DeployedStack,
    DeployError,
    FunctionTransform,
    ResourceKind,
    SkippedResource,
    UnsupportedPropertyError,
    UnsupportedResourceTypeError,
)
from localcloud.cloudformation.ordering import creation_order, stack_order
from localcloud.cloudformation.resources.appconfig import APPCONFIG_KINDS
from localcloud.cloudformation.resources.awslambda import LAMBDA_KINDS
from localcloud.cloudformation.resources.cloudwatch import CLOUDWATCH_KINDS
from localcloud.cloudformation.resources.dynamodb import DYNAMODB_KINDS
from localcloud.cloudformation.resources.events import EVENTS_KINDS
from localcloud.cloudformation.resources.iam import IAM_KINDS
from localcloud.cloudformation.resources.kms import KMS_KINDS
from localcloud.cloudformation.resources.logs import LOGS_KINDS
from localcloud.cloudformation.resources.s3 import S3_KINDS
from localcloud.cloudformation.resources.sagemaker import SAGEMAKER_KINDS
from localcloud.cloudformation.resources.sns import SNS_KINDS
from localcloud.cloudformation.resources.sqs import SQS_KINDS
from localcloud.cloudformation.resources.ssm import SSM_KINDS
from localcloud.cloudformation.resources.stepfunctions import STEPFUNCTIONS_KINDS
from localcloud.cloudformation.template import (
    Resolver,
    StackTemplate,
    TemplateError,
    local_resolver,
)

# Types not created locally, each with the reason. Anything else outside `RESOURCE_KINDS` is an error.
NOT_CREATED: Mapping[str, str] = {
    "AWS::ApiGatewayV2::Api": "served from the template by localcloud.apigateway's gap filler, not "
    "created in moto",
    "AWS::ApiGatewayV2::Stage": "part of the HTTP API, served from the template by localcloud.apigateway",
    "AWS::ApiGatewayV2::Route": "part of the HTTP API, served from the template by localcloud.apigateway",
    "AWS::ApiGatewayV2::Integration": "part of the HTTP API, served from the template by "
    "localcloud.apigateway",
    "AWS::ApplicationAutoScaling::ScalableTarget": "instance counts are not emulated: moto's endpoints "
    "keep their configured instance count",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "instance counts are not emulated",
    "AWS::CDK::Metadata": "CDK's usage report to AWS, no resource",
}


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
    exports: Mapping[str, str] | None = None,
) -> DeployedStack:
    """Creates every resource of `template` that `RESOURCE_KINDS` knows, in dependency order.

    Calls go through boto3 (`session`, default a new one; `endpoint_url`, default boto3's, which honours
    `AWS_ENDPOINT_URL`): under moto's in-process mock, or to moto's server. `resolver` supplies the
    environment and parameter values (default `local_resolver(template)`). Functions are registered with
    `runner` (after `function_transform`, e.g. an accelerated clock's `on`) and created with their
    template role, or `functions_role_arn` when given. The template is checked completely (types,
    properties, conditions, dependencies) before anything is created, and so are its inputs: the
    SSM-typed parameters it uses are read from the cloud's Parameter Store (`MissingSsmParameterError`)
    unless `resolver` has their values, and its `Fn::ImportValue`s are looked up in `exports`, the
    exports of the stacks deployed before (`UnknownExportError`). The Outputs are resolved at the end.
    """
    resolver = resolver or local_resolver(template)
    check_template(template)
    order = creation_order(template)
    session = session or boto3.Session()
    deployment = DeployContext(
        template=template,
        resolver=resolver,
        runner=runner,
        session=session,
        endpoint_url=endpoint_url,
        functions_role_arn=functions_role_arn,
        function_transform=function_transform,
        definition_transform=definition_transform,
        require_appconfig=require_appconfig,
    )
    applied = _applied_properties(template)
    used: dict[str, Any] = {**applied, **{f"Outputs/{k}": v for k, v in template.outputs.items()}}
    deployment.resolver = with_stack_inputs(
        resolver,
        used,
        ssm=deployment.client("ssm"),
        exports=resolver.imports if exports is None else exports,
    )
    created: dict[str, DeployedResource] = {}
    not_created: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for logical_id in order:
        resource_type = str(template.resources[logical_id]["Type"])
        if resource_type in NOT_CREATED:
            not_created[logical_id] = NOT_CREATED[resource_type]
            continue
        kind = RESOURCE_KINDS[resource_type]
        where = f"{template.name}/{logical_id} ({resource_type})"
        try:
            properties = deployment.resolver.resolve(applied[logical_id])
            deployed = kind.create(deployment, logical_id, properties)
        except SkippedResource as reason:
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
    outputs = stack_outputs(deployment.resolver, created)
    return DeployedStack(
        template=template,
        resolver=deployment.resolver,
        resources=created,
        not_created=not_created,
        skipped=skipped,
        order=tuple(order),
        outputs=outputs.values,
        exports=outputs.exports,
        outputs_not_evaluated=outputs.not_evaluated,
    )


def deploy_stacks(
    stacks: Mapping[str, StackTemplate],
    names: Iterable[str] | None = None,
    *,
    runner: LambdaRunner,
    environment: AwsEnvironment | None = None,
    parameters: Mapping[str, str] | None = None,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    functions_role_arn: str | None = None,
    function_transform: FunctionTransform | None = None,
    definition_transform: DefinitionTransform | None = None,
    require_appconfig: bool = True,
) -> dict[str, DeployedStack]:
    """Deploys the stacks `names` (default every stack of `stacks`, as `load_stacks` reads them) and the
    stacks they depend on, each after its dependencies (`stack_order`), with `deploy_stack`.

    Each stack's `Fn::ImportValue`s see the exports of the stacks deployed before it. `parameters` go to
    every stack that declares a parameter of that name. Returns the deployed stacks in deployment order.
    """
    session = session or boto3.Session()
    deployed: dict[str, DeployedStack] = {}
    exports: dict[str, str] = {}
    for name in stack_order(stacks, names):
        template = stacks[name]
        deployed[name] = deploy_stack(
            template,
            local_resolver(template, environment, parameters=parameters),
            runner=runner,
            session=session,
            endpoint_url=endpoint_url,
            functions_role_arn=functions_role_arn,
            function_transform=function_transform,
            definition_transform=definition_transform,
            require_appconfig=require_appconfig,
            exports=exports,
        )
        exports.update(deployed[name].exports)
    return deployed


def _applied_properties(template: StackTemplate) -> dict[str, dict[str, Any]]:
    """The properties a deployment resolves, by logical id: those of every type created, except the
    ones its kind does not apply."""
    applied: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template.resources.items():
        kind = RESOURCE_KINDS.get(str(resource.get("Type")))
        if kind is not None:
            properties = resource.get("Properties", {}).items()
            applied[logical_id] = {key: value for key, value in properties if key not in kind.not_applied}
    return applied


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
            f"{template.name}: resource types not known to localcloud.cloudformation: {listed}. "
            "Create them in RESOURCE_KINDS or list them, with the reason, in NOT_CREATED"
        )
    if unknown_properties:
        raise UnsupportedPropertyError(
            f"{template.name}: properties not deployed locally: {'; '.join(unknown_properties)}. "
            "Translate them in localcloud/cloudformation/ or list them, with the reason, as not applied"
        )
    if problems:
        raise DeployError(f"{template.name}: " + "; ".join(problems))


RESOURCE_KINDS: Mapping[str, ResourceKind] = {
    **DYNAMODB_KINDS,
    **S3_KINDS,
    **KMS_KINDS,
    **SNS_KINDS,
    **SQS_KINDS,
    **IAM_KINDS,
    **LOGS_KINDS,
    **LAMBDA_KINDS,
    **STEPFUNCTIONS_KINDS,
    **EVENTS_KINDS,
    **CLOUDWATCH_KINDS,
    **SAGEMAKER_KINDS,
    **APPCONFIG_KINDS,
    **SSM_KINDS,
}
