"""The `local` environment's synthesized stacks deployed through LocalStack's CloudFormation: every resource
LocalStack's free edition can create without Docker, created, the environment's stack first, then its
family's (which reads the environment's SSM parameters, as on AWS).

Left out, by type, and why (`LEFT_OUT`); a reference to a resource left out (`Ref`, `Fn::GetAtt`,
`${...}` in `Fn::Sub`, `DependsOn`) becomes a placeholder name or ARN, so what refers to it is still
created. The CDK bootstrap version (a rule reads `/cdk-bootstrap/...` in SSM) is put in LocalStack's
Parameter Store first; the Powertools layer's public parameter (`/aws/service/...`, which LocalStack
reserves) becomes a String parameter with a placeholder layer ARN.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from localcloud.cloudformation.template import load_stacks
from tests.functional.localstack import ACCOUNT, REGION
from tests.infra.conftest import shared_outdir

ENVIRONMENT_STACK, FAMILY_STACK = "MlRollout-local", "MlRollout-local-churn-classifier"
DEADLINE_SECONDS = 300
LEFT_OUT = {
    # Lambda runs only in Docker on LocalStack, and the code assets live in the CDK bootstrap bucket.
    "AWS::Lambda::Function": "Lambda runs only in Docker on LocalStack's free edition",
    "AWS::Lambda::Permission": "its function is left out",
    # LocalStack's DynamoDB is DynamoDB Local on a Java 21 that it downloads from GitHub at first use.
    "AWS::DynamoDB::Table": "LocalStack's DynamoDB needs a Java 21 it downloads at first use",
    # Not in LocalStack's free edition.
    "AWS::AppConfig::": "AppConfig is not in LocalStack's free edition",
    "AWS::SageMaker::": "SageMaker is not in LocalStack's free edition",
    "AWS::ApiGatewayV2::": "API Gateway v2 (HTTP APIs) is not in LocalStack's free edition",
    "AWS::ApplicationAutoScaling::": "its scalable target is a SageMaker variant",
    # CDK's own record, not a resource.
    "AWS::CDK::Metadata": "CDK's analytics record",
}


def left_out(resource_type: str) -> str | None:
    return next((why for prefix, why in LEFT_OUT.items() if resource_type.startswith(prefix)), None)


def placeholder(logical_id: str, resource_type: str, attribute: str | None = None) -> str:
    if resource_type == "AWS::Lambda::Function":
        # A function's ARN as a state machine's Task states name it (its parser reads the ARN's shape).
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:left-out-{logical_id}"[:140]
    if attribute == "Arn":
        service = resource_type.split("::")[1].lower()
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:left-out/{logical_id}"
    return f"left-out-{logical_id}".lower()[:63]


def without_left_out(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The template with the left-out resources removed and every reference to them replaced; the logical
    ids left out, with the reason."""
    resources = body["Resources"]
    gone = {lid: why for lid, r in resources.items() if (why := left_out(r["Type"]))}
    types = {lid: r["Type"] for lid, r in resources.items()}
    replaced = _replacer(gone, types)
    kept = {
        lid: _without_dependencies_on(replaced(r), gone) for lid, r in resources.items() if lid not in gone
    }
    outputs = {name: replaced(output) for name, output in body.get("Outputs", {}).items()}
    parameters = {name: _public_parameter_replaced(p) for name, p in body.get("Parameters", {}).items()}
    return {**body, "Resources": kept, "Outputs": outputs, "Parameters": parameters}, gone


def _public_parameter_replaced(parameter: dict[str, Any]) -> dict[str, Any]:
    if str(parameter.get("Default", "")).startswith("/aws/service/"):
        layer = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:left-out-powertools:1"
        return {"Type": "String", "Default": layer}
    return parameter


def _without_dependencies_on(resource: dict[str, Any], gone: Mapping[str, str]) -> dict[str, Any]:
    depends = resource.get("DependsOn")
    if depends is None:
        return resource
    remaining = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in gone]
    trimmed = {k: v for k, v in resource.items() if k != "DependsOn"}
    return {**trimmed, "DependsOn": remaining} if remaining else trimmed


def _replacer(gone: Mapping[str, str], types: Mapping[str, str]) -> Any:
    """A function replacing every reference to a resource in `gone` with its placeholder."""

    def replaced(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in gone:
                return placeholder(value["Ref"], types[value["Ref"]])
            if set(value) == {"Fn::GetAtt"}:
                target, attribute = (
                    value["Fn::GetAtt"]
                    if isinstance(value["Fn::GetAtt"], list)
                    else value["Fn::GetAtt"].split(".", 1)
                )
                if target in gone:
                    return placeholder(target, types[target], attribute)
            if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
                text = value["Fn::Sub"]
                for logical_id in gone:
                    text = text.replace(
                        f"${{{logical_id}.Arn}}", placeholder(logical_id, types[logical_id], "Arn")
                    )
                    text = text.replace(f"${{{logical_id}}}", placeholder(logical_id, types[logical_id]))
                return {"Fn::Sub": text}
            return {key: replaced(item) for key, item in value.items()}
        if isinstance(value, list):
            return [replaced(item) for item in value]
        return value

    return replaced


def client(service: str, endpoint: str) -> Any:
    session: Any = boto3.Session()
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def deploy(endpoint: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The stack created from `body` (through S3: the templates are over CreateStack's 51,200 bytes)."""
    s3, cloudformation = client("s3", endpoint), client("cloudformation", endpoint)
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key=f"{name}.json", Body=json.dumps(body).encode())
    cloudformation.create_stack(
        StackName=name, TemplateURL=f"{endpoint}/templates/{name}.json", Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return dict(stack)
        assert time.monotonic() < deadline, f"{name} still {stack['StackStatus']} after {DEADLINE_SECONDS} s"
        time.sleep(1)


def test_the_local_stacks_non_lambda_resources_deploy_through_localstack_cloudformation(
    tmp_path_factory: pytest.TempPathFactory, localstack_endpoint: str
) -> None:
    templates = load_stacks(shared_outdir(tmp_path_factory, "local"))
    cloudformation, ssm = client("cloudformation", localstack_endpoint), client("ssm", localstack_endpoint)
    # The environment's stack writes what the family's reads; the bootstrap version and the Powertools
    # layer are public or bootstrap parameters on AWS.
    ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String", Overwrite=True)
    for stack_name in (ENVIRONMENT_STACK, FAMILY_STACK):
        body, gone = without_left_out(templates[stack_name].body)
        stack = deploy(localstack_endpoint, stack_name, body)
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
        failed = [
            f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason')}"
            for e in events
            if e["ResourceStatus"].endswith("FAILED")
        ]
        reasons = "\n".join(reason[:600] for reason in failed)
        assert stack["StackStatus"] == "CREATE_COMPLETE", f"{stack_name} {stack['StackStatus']}:\n{reasons}"
        created = {
            r["LogicalResourceId"]: r["ResourceStatus"]
            for r in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        }
        assert set(created) == set(body["Resources"]), sorted(set(body["Resources"]) ^ set(created))
        assert set(created.values()) == {"CREATE_COMPLETE"}
        # What was left out is only what LEFT_OUT names.
        assert all(left_out(templates[stack_name].body["Resources"][lid]["Type"]) for lid in gone)
