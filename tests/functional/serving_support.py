"""Shared pieces of the serving handler tests: environment, moto resources, fakes, EMF capture."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.models import DynamoDBBackend

from lambdas.flags import EndpointVariants, FlagSet

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "mlrollout-dev-inferences"
ENDPOINT_NAME = "mlrollout-dev-churn"
ENDPOINT_CONFIG = "churn-config"
BUSINESS_NAMESPACE = "mlrollout/business"
BUSINESS_NAME = "ConversionRate"
ENDPOINTS = {
    "churn": {
        "endpoint_name": ENDPOINT_NAME,
        "champion": "champion",
        "challenger": "challenger",
        "business_metric": {"namespace": BUSINESS_NAMESPACE, "name": BUSINESS_NAME},
    }
}
CATALOG = (EndpointVariants(endpoint="churn", champion="champion", challenger="challenger"),)
ENVIRONMENT = {
    "ENDPOINTS": json.dumps(ENDPOINTS),
    "APPCONFIG_APPLICATION": "mlrollout-dev",
    "APPCONFIG_ENVIRONMENT": "dev",
    "APPCONFIG_PROFILE": "flags",
    "FLAGS_TTL_SECONDS": "30",
    "WEIGHTS_TTL_SECONDS": "30",
    "INFERENCE_TABLE": TABLE,
    "INFERENCE_TTL_DAYS": "30",
    "POWERTOOLS_SERVICE_NAME": "serving",
    "POWERTOOLS_METRICS_NAMESPACE": "mlrollout",
}


@dataclass
class LambdaContextStub:
    function_name: str = "mlrollout-dev-router"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mlrollout-dev-router"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"


CALLER_ACCOUNT = "123456789012"
CALLER_ROLE_ID = "AROAEXAMPLEROLEID0001"
# What the serving functions bind an inference to: the account and the caller's role (or user) id.
CALLER_PRINCIPAL = f"{CALLER_ACCOUNT}:{CALLER_ROLE_ID}"


def iam_context(role_id: str = CALLER_ROLE_ID, session: str = "client-1") -> dict[str, Any]:
    """`requestContext.authorizer.iam` as the HTTP API's IAM authorization fills it for an assumed role."""
    return {
        "accessKey": "ASIAEXAMPLEACCESSKEY",
        "accountId": CALLER_ACCOUNT,
        "callerId": f"{role_id}:{session}",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:sts::{CALLER_ACCOUNT}:assumed-role/client/{session}",
        "userId": f"{role_id}:{session}",
    }


def http_event(
    body: str | None,
    *,
    path: str,
    path_parameters: Mapping[str, str] | None = None,
    base64_body: bool = False,
    caller: Mapping[str, Any] | None = None,
    signed: bool = True,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) POST event, signed by `caller` (iam_context() by default);
    `signed=False` leaves the IAM identity out, as only a direct invocation of the function would."""
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "requestId": "req-1",
            "http": {"method": "POST", "path": path},
            **({"authorizer": {"iam": dict(caller or iam_context())}} if signed else {}),
        },
        "pathParameters": dict(path_parameters) if path_parameters is not None else None,
        "body": body,
        "isBase64Encoded": base64_body,
    }


def create_table(client: DynamoDBClient) -> None:
    """The inference table as the CDK stack defines it: pk inference_id, TTL on expires_at."""
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "inference_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "inference_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def create_endpoint(client: Any, weights: Mapping[str, float], config_name: str = ENDPOINT_CONFIG) -> None:
    """A SageMaker endpoint in moto whose variants carry these weights."""
    client.create_model(
        ModelName="churn-v1",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-inference:0.1.0"},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
    )
    client.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": "churn-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for variant, weight in weights.items()
        ],
    )
    client.create_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=config_name)


@dataclass
class FakeRuntime:
    """SageMaker runtime stand-in (moto's InvokeEndpoint ignores weights and TargetVariant).

    Answers one label per instance, records every call, or raises `error` when set.
    """

    label: Any = 1
    error: ClientError | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.error is not None:
            raise self.error
        instances = json.loads(request["Body"])["instances"]
        body = json.dumps({"predictions": [self.label] * len(instances)}).encode()
        return {
            "Body": io.BytesIO(body),
            "ContentType": "application/json",
            "InvokedProductionVariant": request.get("TargetVariant", "champion"),
        }


def runtime_error(code: str, message: str, **extra: Any) -> ClientError:
    # botocore puts a modelled error's extra members (OriginalStatusCode...) next to "Error".
    response: Any = {"Error": {"Code": code, "Message": message}, **extra}
    return ClientError(response, "InvokeEndpoint")


@dataclass
class DynamoDBFault:
    """Makes moto's DynamoDB answer one operation as a throttled or failing table would.

    Injected in moto's backend, behind the HTTP boundary: the client gets DynamoDB's error response and
    applies its own retry rules to it, as it would on AWS. `attempts` counts the requests that arrived.
    """

    operation: str
    """The backend method, e.g. "put_item"."""
    code: str
    status: int
    attempts: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> DynamoDBFault:
        monkeypatch.setattr(DynamoDBBackend, self.operation, self._fail)
        return self

    def _fail(self, *_: Any, **__: Any) -> None:
        self.attempts += 1
        error = DynamodbException(f"{ERROR_TYPE_PREFIX}{self.code}", "injected fault")
        error.code = self.status  # the HTTP status moto answers with
        raise error


@dataclass
class FakeAppConfigData:
    """AppConfigData stand-in (moto has none): serves `values`, or raises `error` when set."""

    values: Any
    error: Exception | None = None
    fetches: int = 0
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def start_configuration_session(self, **request: Any) -> dict[str, Any]:
        self.sessions.append(request)
        return {"InitialConfigurationToken": "token-0"}

    def get_latest_configuration(self, *, ConfigurationToken: str) -> dict[str, Any]:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        return {
            "Configuration": io.BytesIO(json.dumps(self.values).encode()),
            "NextPollConfigurationToken": f"token-{self.fetches}",
        }


def flag_values(**changes: dict[str, Any]) -> dict[str, Any]:
    """The churn flags' values form, every flag off unless changed (keys like kill_switch=...)."""
    values = FlagSet.initial(CATALOG).values()
    for kind, value in changes.items():
        values[f"churn-{kind.replace('_', '-')}"] = value
    return values


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """Every EMF document printed (Powertools metrics), ignoring the log lines."""
    blobs = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" in document:
            blobs.append(document)
    return blobs


def metric_values(blobs: list[dict[str, Any]], namespace: str, name: str) -> list[tuple[dict[str, str], Any]]:
    """(dimensions, values) of each blob carrying this metric; dimensions exactly as declared."""
    found = []
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            names = [metric["Name"] for metric in directive["Metrics"]]
            if directive["Namespace"] == namespace and name in names:
                (dimension_set,) = directive["Dimensions"]
                found.append(({key: blob[key] for key in dimension_set}, blob[name]))
    return found
