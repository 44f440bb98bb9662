"""An app of several stacks deployed into moto (`deploy_stacks`, `LocalCloud`): the platform stack writes an
SSM parameter and exports values, the stack that depends on it reads both; in the wrong order, the
deployment names what is missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.awslambda.runner import LambdaRunner
from localcloud.cloud import LocalCloud, LocalCloudError
from localcloud.cloudformation.deploy import deploy_stack, deploy_stacks
from localcloud.cloudformation.models import (
    DependencyCycleError,
    DeployError,
    MissingSsmParameterError,
    UnknownExportError,
)
from localcloud.cloudformation.template import StackTemplate, load_stacks, local_physical_name, local_resolver

BUCKET_PARAMETER = "/mlrollout/platform/bucket-name"
# What `ssm.StringParameter.value_for_string_parameter` synthesizes, and CDK's bootstrap check (read by
# the template's Rules only, which are not evaluated: a cloud without the bootstrap stack deploys).
BUCKET_NAME = "SsmParameterValuemlrolloutplatformbucketnameParameter"
BOOTSTRAP = {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/hnb659fds/version"}
TOPIC_EXPORT = "Platform:ExportsOutputRefTopic"
ROLE_EXPORT = "Platform:ExportsOutputFnGetAttFunctionRoleArn"
ASSUME_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
HANDLER = """import os


def handler(event, context):
    return {"stack": os.environ["STACK"], "topic": os.environ.get("TOPIC_ARN", "")}
"""


def function(stack: str, role_arn: Any, topic_arn: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": "handler.handler",
            "Runtime": "python3.12",
            "Code": {"S3Key": "fn.zip"},
            "Role": role_arn,
            "Environment": {"Variables": {"STACK": stack, "TOPIC_ARN": topic_arn}},
        },
        "Metadata": {"aws:asset:path": "asset.fn"},
    }


def state_machine(role_arn: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "DefinitionString": json.dumps(
                {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
            ),
            "RoleArn": role_arn,
        },
    }


PLATFORM: dict[str, Any] = {
    "Parameters": {"BootstrapVersion": BOOTSTRAP},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "FunctionRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": ASSUME_LAMBDA}},
        "BucketNameParameter": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": BUCKET_PARAMETER, "Type": "String", "Value": {"Ref": "Bucket"}},
        },
        "PlatformFunction": function("platform", {"Fn::GetAtt": ["FunctionRole", "Arn"]}, {"Ref": "Topic"}),
        "PlatformMachine": state_machine({"Fn::GetAtt": ["FunctionRole", "Arn"]}),
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "api", "ProtocolType": "HTTP"}},
    },
    "Outputs": {
        "ExportsOutputRefTopic": {"Value": {"Ref": "Topic"}, "Export": {"Name": TOPIC_EXPORT}},
        "ExportsOutputFnGetAttFunctionRoleArn": {
            "Value": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Export": {"Name": ROLE_EXPORT},
        },
        "ApiUrl": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
    },
}
CHURN: dict[str, Any] = {
    "Parameters": {
        BUCKET_NAME: {"Type": "AWS::SSM::Parameter::Value<String>", "Default": BUCKET_PARAMETER},
        "BootstrapVersion": BOOTSTRAP,
    },
    "Resources": {
        "Events": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::Join": ["-", [{"Ref": BUCKET_NAME}, "events"]]}},
        },
        "TopicArnParameter": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Type": "String",
                # The import's argument is itself an intrinsic.
                "Value": {"Fn::ImportValue": {"Fn::Join": [":", ["Platform", "ExportsOutputRefTopic"]]}},
            },
        },
        "ChurnFunction": function(
            "churn", {"Fn::ImportValue": ROLE_EXPORT}, {"Fn::ImportValue": TOPIC_EXPORT}
        ),
        "ChurnMachine": state_machine({"Fn::ImportValue": ROLE_EXPORT}),
    },
}
UNRELATED: dict[str, Any] = {"Resources": {"Lonely": {"Type": "AWS::SQS::Queue", "Properties": {}}}}


def write_assembly(outdir: Path, stacks: dict[str, tuple[dict[str, Any], list[str]]]) -> Path:
    """A cloud assembly as `cdk synth` writes it: each stack's template and asset manifest, and the
    manifest listing the stacks with their dependencies (other stacks and the stack's asset manifest)."""
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "asset.fn").mkdir(exist_ok=True)
    (outdir / "asset.fn" / "handler.py").write_text(HANDLER)
    artifacts: dict[str, Any] = {}
    for name, (body, needs) in stacks.items():
        (outdir / f"{name}.template.json").write_text(json.dumps(body))
        (outdir / f"{name}.assets.json").write_text(json.dumps({"version": "36.0.0", "files": {}}))
        artifacts[f"{name}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{name}.assets.json"},
        }
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/unknown-region",
            "properties": {"templateFile": f"{name}.template.json"},
            "dependencies": [*needs, f"{name}.assets"],
            "displayName": name,
        }
    (outdir / "manifest.json").write_text(json.dumps({"version": "36.0.0", "artifacts": artifacts}))
    return outdir


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Listed dependent first: the order comes from the dependencies, not from the manifest.
    return write_assembly(
        tmp_path_factory.mktemp("stacks") / "cdk.out",
        {"Churn": (CHURN, ["Platform"]), "Unrelated": (UNRELATED, []), "Platform": (PLATFORM, [])},
    )


@pytest.fixture
def runner() -> Iterator[LambdaRunner]:
    with LambdaRunner([]) as runner:
        yield runner


def client(service: str) -> Any:
    session: Any = boto3.Session(region_name="us-east-1")
    return session.client(service)


def test_the_manifest_gives_each_stack_the_stacks_it_depends_on(assembly: Path) -> None:
    stacks = load_stacks(assembly)
    assert {name: template.dependencies for name, template in stacks.items()} == {
        "Churn": ("Platform",),
        "Unrelated": (),
        "Platform": (),
    }


@mock_aws
def test_a_stack_reads_the_parameter_and_the_exports_of_the_stack_it_depends_on(
    assembly: Path, runner: LambdaRunner
) -> None:
    deployed = deploy_stacks(load_stacks(assembly), ["Churn"], runner=runner)

    assert list(deployed) == ["Platform", "Churn"]
    platform, churn = deployed["Platform"], deployed["Churn"]
    bucket = platform.bucket_names["Bucket"]
    assert client("ssm").get_parameter(Name=BUCKET_PARAMETER)["Parameter"]["Value"] == bucket
    assert churn.resolver.parameters[BUCKET_NAME] == bucket
    assert client("sqs").get_queue_url(QueueName=f"{bucket}-events")["QueueUrl"] == churn.queue_urls["Events"]
    assert platform.exports == {
        TOPIC_EXPORT: platform.topic_arn,
        ROLE_EXPORT: platform.resources["FunctionRole"].arn,
    }
    assert platform.outputs["ExportsOutputRefTopic"] == platform.topic_arn
    assert "Api" in platform.outputs_not_evaluated["ApiUrl"] and "ApiUrl" not in platform.outputs
    topic_parameter = churn.resources["TopicArnParameter"].name
    assert topic_parameter == local_physical_name("Churn", "TopicArnParameter")
    assert client("ssm").get_parameter(Name=topic_parameter)["Parameter"]["Value"] == platform.topic_arn
    churn_function = client("lambda").get_function_configuration(
        FunctionName=churn.function_names["ChurnFunction"]
    )
    assert churn_function["Role"] == platform.resources["FunctionRole"].arn
    assert churn_function["Environment"]["Variables"]["TOPIC_ARN"] == platform.topic_arn
    # Only the parameters the stack uses are read: the bootstrap version (Rules only) is not.
    assert "BootstrapVersion" not in churn.resolver.parameters
    assert client("sqs").list_queues()["QueueUrls"] == [churn.queue_urls["Events"]]  # not Unrelated


@mock_aws
def test_the_dependent_stack_deployed_first_names_the_ssm_parameter_it_lacks(
    assembly: Path, runner: LambdaRunner
) -> None:
    with pytest.raises(MissingSsmParameterError) as refused:
        deploy_stack(load_stacks(assembly)["Churn"], runner=runner)
    message = str(refused.value)
    assert message.startswith(f"Churn: parameter {BUCKET_NAME} reads the SSM parameter {BUCKET_PARAMETER}")
    assert "deploy the stack that writes it first" in message
    assert client("sqs").list_queues().get("QueueUrls", []) == []  # refused before creating anything


@mock_aws
def test_an_unknown_export_is_refused_naming_it_and_the_resource_that_imports_it(
    assembly: Path, runner: LambdaRunner
) -> None:
    churn = load_stacks(assembly)["Churn"]
    resolver = local_resolver(churn, parameters={BUCKET_NAME: "given-bucket"})
    with pytest.raises(UnknownExportError) as refused:
        deploy_stack(churn, resolver, runner=runner, exports={"Other:Export": "x"})
    assert str(refused.value).startswith(
        f"Churn/TopicArnParameter: Fn::ImportValue {TOPIC_EXPORT}: no stack deployed before Churn exports it"
    )
    assert "['Other:Export']" in str(refused.value)
    assert client("ssm").describe_parameters()["Parameters"] == []


@mock_aws
def test_a_parameter_value_given_wins_over_parameter_store(assembly: Path, runner: LambdaRunner) -> None:
    stacks = load_stacks(assembly)
    platform = deploy_stack(stacks["Platform"], runner=runner)
    churn = deploy_stack(
        stacks["Churn"],
        local_resolver(stacks["Churn"], parameters={BUCKET_NAME: "given-bucket"}),
        runner=runner,
        exports=platform.exports,
    )
    assert (
        client("sqs").get_queue_url(QueueName="given-bucket-events")["QueueUrl"] == churn.queue_urls["Events"]
    )


def tiny(name: str, resources: dict[str, Any], outputs: dict[str, Any], tmp_path: Path) -> StackTemplate:
    return StackTemplate(name=name, body={"Resources": resources, "Outputs": outputs}, assembly_dir=tmp_path)


@mock_aws
def test_an_export_name_is_exported_once(tmp_path: Path, runner: LambdaRunner) -> None:
    queue = {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}
    output = {"Url": {"Value": {"Ref": "Queue"}, "Export": {"Name": "Shared"}}}
    stacks = {name: tiny(name, queue, output, tmp_path) for name in ("First", "Second")}
    with pytest.raises(DeployError, match=r"^Second: output Url: export 'Shared' is already exported"):
        deploy_stacks(stacks, runner=runner)


@mock_aws
def test_an_exported_output_of_a_resource_not_created_is_refused(
    tmp_path: Path, runner: LambdaRunner
) -> None:
    api = {"Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {}}}
    output = {"Url": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}, "Export": {"Name": "ApiUrl"}}}
    with pytest.raises(DeployError, match=r"^Lone: output Url is exported but names resources not created"):
        deploy_stack(tiny("Lone", api, output, tmp_path), runner=runner)


# --- the local cloud ---------------------------------------------------------------------------------


def test_the_local_cloud_deploys_the_named_stack_after_the_ones_it_depends_on(assembly: Path) -> None:
    transformed: list[str] = []

    def transform(logical_id: str, definition: str) -> str:
        transformed.append(logical_id)
        return definition

    with LocalCloud(assembly, "Churn", definition_transform=transform) as cloud:
        assert list(cloud.templates) == list(cloud.stacks) == ["Platform", "Churn"]
        # The named stack with the stacks deployed around it, seen as one.
        assert set(cloud.stack.resources) == {
            *cloud.stacks["Platform"].resources,
            *cloud.stacks["Churn"].resources,
        }
        assert cloud.template.name == "Churn"
        assert cloud.resolver.template.name == "Churn"
        assert transformed == ["PlatformMachine", "ChurnMachine"]
        lambda_client = client("lambda")
        topic = cloud.stacks["Platform"].topic_arn
        for stack, logical_id in (("platform", "PlatformFunction"), ("churn", "ChurnFunction")):
            name = cloud.stacks[stack.title()].function_names[logical_id]
            assert cloud.runner.function(name).logical_id == logical_id
            answer = lambda_client.invoke(FunctionName=name, Payload=b"{}")
            assert json.loads(answer["Payload"].read()) == {"stack": stack, "topic": topic}
        assert len(client("sqs").list_queues()["QueueUrls"]) == 1  # Churn's: Unrelated is not deployed


def test_the_local_cloud_deploys_every_stack_without_a_name(assembly: Path) -> None:
    cloud = LocalCloud(assembly, None)
    assert list(cloud.templates) == ["Unrelated", "Platform", "Churn"]
    with cloud:
        assert list(cloud.stacks) == ["Unrelated", "Platform", "Churn"]
        assert cloud.stacks["Unrelated"].queue_urls["Lonely"]
        with pytest.raises(LocalCloudError, match=r"deploys every stack"):
            cloud.stack  # noqa: B018


def test_a_dependency_cycle_between_stacks_is_refused_naming_them(tmp_path: Path) -> None:
    queue = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
    cyclic = write_assembly(
        tmp_path / "cdk.out", {"A": (queue, ["B"]), "B": (queue, ["A"]), "C": (queue, [])}
    )
    with pytest.raises(DependencyCycleError, match=r"circular dependency between stacks: A -> B -> A"):
        LocalCloud(cyclic, None)
    with pytest.raises(DependencyCycleError, match=r"A -> B -> A"):
        LocalCloud(cyclic, "A")
