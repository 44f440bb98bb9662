"""IAM enforced on the local cloud (`LocalCloud(enforce_iam=True)`): each function runs as a session of its
own execution role, and a call its role does not allow fails with AccessDenied, as on AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud.cloud import LocalCloud
from tests.functional.localcloud.cloudformation.test_stacks import ASSUME_LAMBDA, write_assembly

HANDLER = """import os

import boto3


def handler(event, context):
    identity = boto3.client("sts").get_caller_identity()["Arn"]
    if event.get("metrics"):
        try:
            boto3.client("cloudwatch").list_metrics()
        except Exception as error:
            return {"identity": identity, "error": type(error).__name__, "message": str(error)}
        return {"identity": identity, "metrics": True}
    table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
    try:
        if event.get("transaction"):
            put = {"Put": {"TableName": os.environ["TABLE"], "Item": {"id": {"S": event["id"]}}}}
            boto3.client("dynamodb").transact_write_items(TransactItems=[put])
        else:
            table.put_item(Item={"id": event["id"]})
        stored = table.get_item(Key={"id": event["id"]}).get("Item")
    except Exception as error:
        return {"identity": identity, "error": type(error).__name__, "message": str(error)}
    return {"identity": identity, "stored": stored}
"""
TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}


def role(actions: list[str], trusted: dict[str, Any] = ASSUME_LAMBDA) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": trusted,
            "Policies": [
                {
                    "PolicyName": "table",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": TABLE_ARN}],
                    },
                }
            ],
        },
    }


def function(role_id: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": "handler.handler",
            "Runtime": "python3.12",
            "Code": {"S3Key": "fn.zip"},
            "Role": {"Fn::GetAtt": [role_id, "Arn"]},
            "Environment": {"Variables": {"TABLE": {"Ref": "Table"}}},
            "Timeout": 30,
        },
        "Metadata": {"aws:asset:path": "asset.fn"},
    }


TRUSTS_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
STACK: dict[str, Any] = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "WriterRole": role(["dynamodb:PutItem", "dynamodb:GetItem", "cloudwatch:ListMetrics"]),
        # The writer's role without one action: it may read, not write.
        "ReaderRole": role(["dynamodb:GetItem"]),
        "Ec2Role": role(["dynamodb:PutItem", "dynamodb:GetItem"], TRUSTS_EC2),
        "Writer": function("WriterRole"),
        "Reader": function("ReaderRole"),
        "Misconfigured": function("Ec2Role"),
    }
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    assembly = write_assembly(tmp_path_factory.mktemp("iam") / "cdk.out", {"Iam": (STACK, [])})
    (assembly / "asset.fn" / "handler.py").write_text(HANDLER)
    with LocalCloud(assembly, "Iam", require_appconfig=False, enforce_iam=True) as cloud:
        yield cloud


def invoke(cloud: LocalCloud, logical_id: str, event: dict[str, Any]) -> Any:
    answer = cloud.client("lambda").invoke(
        FunctionName=cloud.stack.function_names[logical_id], Payload=json.dumps(event).encode()
    )
    return json.loads(answer["Payload"].read())


def test_a_function_runs_as_a_session_of_its_own_role_and_does_what_it_allows(cloud: LocalCloud) -> None:
    answer = invoke(cloud, "Writer", {"id": "a"})

    role_name = cloud.stack.resources["WriterRole"].name
    assert answer["identity"].startswith(f"arn:aws:sts::123456789012:assumed-role/{role_name}/")
    assert answer["stored"] == {"id": "a"}


def test_a_function_whose_role_lacks_one_action_is_refused_it(cloud: LocalCloud) -> None:
    answer = invoke(cloud, "Reader", {"id": "b"})

    assert answer["error"] == "ClientError"
    assert "AccessDenied" in answer["message"] and "dynamodb:PutItem" in answer["message"]
    assert "Item" not in cloud.client("dynamodb").get_item(
        TableName=cloud.stack.table_names["Table"], Key={"id": {"S": "b"}}
    )


@pytest.mark.parametrize(("function", "allowed"), [("Writer", True), ("Reader", False)])
def test_a_transaction_is_authorized_by_its_items_operations(
    cloud: LocalCloud, function: str, allowed: bool
) -> None:
    answer = invoke(cloud, function, {"id": f"t-{function}", "transaction": True})

    if allowed:
        assert answer["stored"] == {"id": f"t-{function}"}
    else:
        assert "AccessDenied" in answer["message"] and "dynamodb:PutItem" in answer["message"]


@pytest.mark.parametrize(("function", "allowed"), [("Writer", True), ("Reader", False)])
def test_cloudwatch_calls_are_authorized_as_cloudwatch_actions(
    cloud: LocalCloud, function: str, allowed: bool
) -> None:
    answer = invoke(cloud, function, {"id": "m", "metrics": True})

    # CloudWatch signs as `monitoring`; its IAM actions are `cloudwatch:`.
    assert answer.get("metrics") is (True if allowed else None)
    if not allowed:
        assert "cloudwatch:ListMetrics" in answer["message"]


def test_a_role_that_does_not_trust_lambda_runs_nothing(cloud: LocalCloud) -> None:
    answer = cloud.client("lambda").invoke(FunctionName=cloud.stack.function_names["Misconfigured"])

    assert answer["FunctionError"] == "Unhandled"
    assert "cannot be assumed by Lambda" in json.loads(answer["Payload"].read())["errorMessage"]


def test_the_emulator_calls_as_an_identity_allowed_everything_and_strangers_are_refused(
    cloud: LocalCloud,
) -> None:
    # moto's GetCallerIdentity names only 20-character key ids, which the emulator's are not.
    assert cloud.client("iam").get_role(RoleName="localcloud-emulator")["Role"]["RoleName"]
    assert cloud.client("dynamodb").list_tables()["TableNames"]
    stranger: Any = boto3.Session(
        aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x", region_name="us-east-1"
    ).client("dynamodb", endpoint_url=cloud.endpoint_url)
    with pytest.raises(ClientError, match=r"UnrecognizedClientException|InvalidClientTokenId"):
        stranger.list_tables()
