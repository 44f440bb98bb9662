"""The HTTP API served by the local cloud (`localcloud.apigateway`): routes to Lambda proxy integrations,
IAM authorization checked on SigV4 signatures against moto's IAM and STS and on `execute-api:Invoke`, the
payload 2.0 event, the proxy response mapped back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from localcloud.apigateway.client import SignedClient
from localcloud.apigateway.server import HttpApiServer, serve_http_apis
from localcloud.cloud import LocalCloud
from tests.functional.localcloud.cloudformation.test_stacks import ASSUME_LAMBDA, write_assembly

HANDLER = """import json


def handler(event, context):
    if event["rawPath"] == "/plain":
        return {"plain": True}
    return {"statusCode": 201, "headers": {"X-Echo": "yes"}, "body": json.dumps(event)}
"""
EMULATOR_SESSION = "arn:aws:sts::123456789012:assumed-role/localcloud-emulator/localcloud-emulator"
API = {"Ref": "Api"}


def client_role(statements: list[dict[str, Any]]) -> dict[str, Any]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": EMULATOR_SESSION}, "Action": "sts:AssumeRole"}
        ],
    }
    policy = {"Version": "2012-10-17", "Statement": statements}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": trust,
            "Policies": [{"PolicyName": "api", "PolicyDocument": policy}],
        },
    }


def route(key: str, authorization: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGatewayV2::Route",
        "Properties": {
            "ApiId": API,
            "AuthorizationType": authorization,
            "RouteKey": key,
            "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integration"}]]},
        },
    }


STACK: dict[str, Any] = {
    "Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "api", "ProtocolType": "HTTP"}},
        "Stage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {"ApiId": API, "StageName": "$default", "AutoDeploy": True},
        },
        "Integration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": API,
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": ["Echo", "Arn"]},
                "PayloadFormatVersion": "2.0",
            },
        },
        "EchoRoute": route("POST /echo/{name}", "AWS_IAM"),
        "PlainRoute": route("GET /plain", "NONE"),
        "EchoRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": ASSUME_LAMBDA}},
        "Echo": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "handler.handler",
                "Runtime": "python3.12",
                "Code": {"S3Key": "fn.zip"},
                "Role": {"Fn::GetAtt": ["EchoRole", "Arn"]},
                "Timeout": 30,
            },
            "Metadata": {"aws:asset:path": "asset.fn"},
        },
    }
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    assembly = write_assembly(tmp_path_factory.mktemp("api") / "cdk.out", {"Api": (STACK, [])})
    (assembly / "asset.fn" / "handler.py").write_text(HANDLER)
    with LocalCloud(
        assembly,
        "Api",
        require_appconfig=False,
        enforce_iam=True,
        gap_fillers={"http api": serve_http_apis},
    ) as cloud:
        iam = cloud.client("iam")
        for name, statements in {
            "api-caller": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
            "api-stranger": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}],
        }.items():
            role = client_role(statements)["Properties"]
            iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
            )
            iam.put_role_policy(
                RoleName=name,
                PolicyName="api",
                PolicyDocument=json.dumps(role["Policies"][0]["PolicyDocument"]),
            )
        yield cloud


def credentials_of(cloud: LocalCloud, role: str) -> Credentials:
    answer = cloud.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="tester"
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


def server(cloud: LocalCloud) -> HttpApiServer:
    found: HttpApiServer = cloud.gap_filler("http api")
    return found


def test_a_signed_request_reaches_the_function_with_the_event_api_gateway_builds(cloud: LocalCloud) -> None:
    credentials = credentials_of(cloud, "api-caller")
    answer = SignedClient(server(cloud).url, credentials).request("POST", "/echo/ada?x=1&x=2", {"hello": 1})

    assert answer.status == 201
    assert answer.headers["x-echo"] == "yes"
    event = answer.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /echo/{name}"
    assert event["rawPath"] == "/echo/ada"
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["pathParameters"] == {"name": "ada"}
    assert json.loads(event["body"]) == {"hello": 1}
    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == credentials.access_key
    assert iam["accountId"] == "123456789012"
    assert iam["userArn"] == "arn:aws:sts::123456789012:assumed-role/api-caller/tester"
    role_id = cloud.client("iam").get_role(RoleName="api-caller")["Role"]["RoleId"]
    assert iam["userId"] == iam["callerId"] == f"{role_id}:tester"
    assert event["requestContext"]["http"]["method"] == "POST"


def test_a_plain_result_is_a_200_with_its_json(cloud: LocalCloud) -> None:
    answer = SignedClient(server(cloud).url, None).request("GET", "/plain")

    assert (answer.status, answer.json()) == (200, {"plain": True})
    assert answer.headers["content-type"] == "application/json"


def test_an_unsigned_request_is_forbidden(cloud: LocalCloud) -> None:
    answer = SignedClient(server(cloud).url, None).request("POST", "/echo/ada", {"hello": 1})

    assert (answer.status, answer.json()) == (403, {"message": "Forbidden"})


def test_a_tampered_request_is_forbidden(cloud: LocalCloud) -> None:
    credentials = credentials_of(cloud, "api-caller")
    wrong = Credentials(credentials.access_key, "not-the-secret", credentials.token)

    answer = SignedClient(server(cloud).url, wrong).request("POST", "/echo/ada", {"hello": 1})

    assert answer.status == 403
    assert answer.json()["message"].startswith("The request signature we calculated does not match")


def test_an_unknown_key_is_forbidden(cloud: LocalCloud) -> None:
    unknown = Credentials("ASIAUNKNOWNKEY000000", "secret", "token")

    answer = SignedClient(server(cloud).url, unknown).request("POST", "/echo/ada", {"hello": 1})

    assert (answer.status, answer.json()) == (
        403,
        {"message": "The security token included in the request is invalid."},
    )


def test_an_unknown_route_is_not_found(cloud: LocalCloud) -> None:
    answer = SignedClient(server(cloud).url, credentials_of(cloud, "api-caller")).request("POST", "/nope", {})

    assert (answer.status, answer.json()) == (404, {"message": "Not Found"})


def test_a_principal_without_execute_api_invoke_is_forbidden(cloud: LocalCloud) -> None:
    answer = SignedClient(server(cloud).url, credentials_of(cloud, "api-stranger")).request(
        "POST", "/echo/ada", {"hello": 1}
    )

    assert answer.status == 403
    message = answer.json()["message"]
    assert message.startswith(
        "User: arn:aws:sts::123456789012:assumed-role/api-stranger/tester is not authorized"
    )
    assert "execute-api:Invoke" in message and "/$default/POST/echo/ada" in message
