"""localcloud.cloudformation.template: reading a cloud assembly and resolving the intrinsics it uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from localcloud.account import AwsEnvironment
from localcloud.cloudformation.template import (
    Resolver,
    StackTemplate,
    TemplateError,
    load_stacks,
    local_physical_name,
    local_resolver,
    state_machine_definition,
)

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:111122223333:function:Stack-Validator"
TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "LayerArn": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/aws/service/powertools/x"},
        "Stage": {"Type": "String", "Default": "dev"},
        "Required": {"Type": "String"},
    },
    "Resources": {
        "Validator": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "lambdas.handlers.flag_validator.handler",
                "Code": {"S3Key": "other.zip"},
            },
            "Metadata": {"aws:asset:path": "asset.abc"},
        },
        # In-process synthesis writes no asset metadata: the asset manifest maps the S3 key to the asset.
        "Router": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Key": "abc.zip"}}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "inferences"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Joined": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "DefinitionString": {
                    "Fn::Join": ["", ['{"StartAt":"${First}","Comment":"', {"Ref": "AWS::Region"}, '"}']]
                },
                "DefinitionSubstitutions": {"First": {"Fn::GetAtt": ["Validator", "Arn"]}},
            },
        },
        "Inline": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"Definition": {"StartAt": "A", "Comment": {"Ref": "Stage"}}},
        },
        "Remote": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"DefinitionS3Location": {"Bucket": "b", "Key": "k"}},
        },
    },
}


def stack(assembly_dir: Path = Path("/nowhere")) -> StackTemplate:
    return StackTemplate(name="Stack", body=TEMPLATE, assembly_dir=assembly_dir)


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        template=stack(),
        environment=AwsEnvironment(account_id="111122223333", region="eu-west-1"),
        physical_ids={"Validator": "Stack-Validator", "Table": "inferences"},
        attributes={"Validator": {"Arn": FUNCTION_ARN}},
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS::AccountId", "111122223333"),
        ("AWS::Region", "eu-west-1"),
        ("AWS::Partition", "aws"),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("AWS::StackName", "Stack"),
        ("Table", "inferences"),
        ("Stage", "dev"),
    ],
)
def test_ref_resolves_pseudo_parameters_resources_and_parameter_defaults(
    resolver: Resolver, name: str, value: str
) -> None:
    assert resolver.resolve({"Ref": name}) == value


def test_a_parameter_value_passed_in_wins_over_the_default(resolver: Resolver) -> None:
    passed = Resolver(template=resolver.template, parameters={"Stage": "prod", "LayerArn": "arn:layer"})
    assert passed.resolve({"Ref": "Stage"}) == "prod"
    assert passed.resolve({"Ref": "LayerArn"}) == "arn:layer"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"Ref": "LayerArn"}, "read from SSM (/aws/service/powertools/x)"),
        ({"Ref": "Required"}, "Required has no default"),
        ({"Ref": "Missing"}, "Ref Missing has no local value"),
        ({"Fn::GetAtt": ["Table", "StreamArn"]}, "Fn::GetAtt Table.StreamArn"),
        (
            {"Fn::ImportValue": "shared"},
            "Fn::ImportValue shared: no stack deployed before it exports 'shared'",
        ),
        ({"Fn::Sub": "${Missing}"}, "Ref Missing"),
    ],
)
def test_what_cannot_be_resolved_locally_fails_naming_it(resolver: Resolver, value: Any, named: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(named)):
        resolver.resolve(value)


def test_import_value_gives_the_export_its_argument_names(resolver: Resolver) -> None:
    importing = Resolver(template=resolver.template, imports={"Platform:dev:Bucket": "bucket-1"})
    argument = {"Fn::Sub": "Platform:${Stage}:Bucket"}  # the argument may itself be an intrinsic
    assert importing.resolve({"Fn::Join": ["/", [{"Fn::ImportValue": argument}, "x"]]}) == "bucket-1/x"


def test_the_local_resolver_takes_the_given_values_of_declared_parameters_only() -> None:
    given = local_resolver(stack(), parameters={"Stage": "prod", "OtherStacks": "x"})
    assert given.parameters == {"Stage": "prod"}


def test_get_att_resolves_both_the_list_and_the_dotted_form(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::GetAtt": ["Validator", "Arn"]}) == FUNCTION_ARN
    assert resolver.resolve({"Fn::GetAtt": "Validator.Arn"}) == FUNCTION_ARN


def test_a_state_machine_definition_joined_around_a_function_arn_resolves_to_its_json(
    resolver: Resolver,
) -> None:
    # The shape CDK writes for a DefinitionString with a LambdaInvoke task.
    definition = {
        "Fn::Join": [
            "",
            [
                '{"StartAt":"Validate","States":{"Validate":{"Type":"Task","Resource":"arn:',
                {"Ref": "AWS::Partition"},
                ':states:::lambda:invoke","Parameters":{"FunctionName":"',
                {"Fn::GetAtt": ["Validator", "Arn"]},
                '","Payload.$":"$"},"End":true}}}',
            ],
        ]
    }
    state = json.loads(resolver.resolve(definition))["States"]["Validate"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke"
    assert state["Parameters"]["FunctionName"] == FUNCTION_ARN


def test_sub_replaces_pseudo_parameters_refs_attributes_and_its_own_variables(resolver: Resolver) -> None:
    text = "${AWS::Region}/${Table}/${Validator.Arn}/${Extra}/${!Literal}"
    resolved = resolver.resolve({"Fn::Sub": [text, {"Extra": {"Ref": "AWS::AccountId"}}]})
    assert resolved == f"eu-west-1/inferences/{FUNCTION_ARN}/111122223333/${{Literal}}"


def test_select_and_split_pick_a_part_of_a_resolved_string(resolver: Resolver) -> None:
    value = {"Fn::Select": [6, {"Fn::Split": [":", {"Fn::GetAtt": ["Validator", "Arn"]}]}]}
    assert resolver.resolve(value) == "Stack-Validator"


def test_nested_structures_resolve_and_a_dict_with_more_keys_is_not_an_intrinsic(resolver: Resolver) -> None:
    value = {"Variables": {"TABLE": {"Ref": "Table"}, "PLAIN": "x"}, "List": [{"Ref": "Stage"}, 3]}
    assert resolver.resolve(value) == {"Variables": {"TABLE": "inferences", "PLAIN": "x"}, "List": ["dev", 3]}
    assert resolver.resolve({"Ref": "Table", "Other": 1}) == {"Ref": "Table", "Other": 1}


def test_a_state_machine_definition_is_resolved_then_substituted(resolver: Resolver) -> None:
    assert json.loads(state_machine_definition(resolver, "Joined")) == {
        "StartAt": FUNCTION_ARN,
        "Comment": "eu-west-1",
    }
    assert json.loads(state_machine_definition(resolver, "Inline")) == {"StartAt": "A", "Comment": "dev"}
    with pytest.raises(TemplateError, match="Remote: only inline definitions"):
        state_machine_definition(resolver, "Remote")


def test_local_resolver_names_resources_and_builds_their_arns() -> None:
    resolver = local_resolver(stack(), AwsEnvironment(account_id="111122223333", region="eu-west-1"))
    assert resolver.resolve({"Ref": "Validator"}) == "Stack-Validator"
    assert resolver.resolve({"Ref": "Table"}) == "inferences"
    assert resolver.resolve({"Fn::GetAtt": ["Validator", "Arn"]}) == FUNCTION_ARN
    assert resolver.resolve({"Fn::GetAtt": ["Table", "Arn"]}) == (
        "arn:aws:dynamodb:eu-west-1:111122223333:table/inferences"
    )
    assert resolver.resolve({"Fn::GetAtt": ["Role", "Arn"]}) == "arn:aws:iam::111122223333:role/Stack-Role"


def test_local_physical_names_fit_the_64_character_limit() -> None:
    assert len(local_physical_name("S" * 40, "L" * 40)) == 64


def write_assembly(root: Path) -> None:
    (root / "asset.abc" / "lambdas").mkdir(parents=True)
    (root / "Stack.template.json").write_text(json.dumps(TEMPLATE))
    assets = {
        "files": {
            "abc": {
                "source": {"path": "asset.abc", "packaging": "zip"},
                "destinations": {"current": {"bucketName": "assets", "objectKey": "abc.zip"}},
            },
            "template": {
                "source": {"path": "Stack.template.json", "packaging": "file"},
                "destinations": {"current": {"bucketName": "assets", "objectKey": "template.json"}},
            },
        }
    }
    (root / "Stack.assets.json").write_text(json.dumps(assets))
    manifest = {
        "artifacts": {
            "Stack.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Stack.assets.json"}},
            "Stack": {
                "type": "aws:cloudformation:stack",
                "displayName": "Stack",
                "properties": {"templateFile": "Stack.template.json"},
            },
        }
    }
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_load_stacks_reads_the_stack_templates_the_manifest_lists(tmp_path: Path) -> None:
    write_assembly(tmp_path)
    stacks = load_stacks(tmp_path)
    assert list(stacks) == ["Stack"]
    assert stacks["Stack"].resources_of_type("AWS::Lambda::Function").keys() == {"Validator", "Router"}
    assert stacks["Stack"].asset_dir("Validator") == tmp_path / "asset.abc"
    assert stacks["Stack"].asset_dir("Router") == tmp_path / "asset.abc"


def test_a_resource_without_an_unpacked_asset_has_no_asset_dir(tmp_path: Path) -> None:
    write_assembly(tmp_path)
    template = load_stacks(tmp_path)["Stack"]
    with pytest.raises(
        TemplateError, match=re.escape("Table has neither 'aws:asset:path' nor a known Code.S3Key")
    ):
        template.asset_dir("Table")
    (tmp_path / "asset.abc" / "lambdas").rmdir()
    (tmp_path / "asset.abc").rmdir()
    with pytest.raises(TemplateError, match=re.escape("asset asset.abc is not a directory")):
        template.asset_dir("Validator")


def test_ref_of_a_topic_is_its_arn_as_in_cloudformation() -> None:
    template = StackTemplate(
        name="Stack",
        body={"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}}}},
        assembly_dir=Path("."),
    )
    environment = AwsEnvironment(account_id="111122223333", region="eu-west-1")
    resolver = local_resolver(template, environment)
    assert resolver.resolve({"Ref": "Topic"}) == "arn:aws:sns:eu-west-1:111122223333:alerts"
