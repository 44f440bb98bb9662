"""Hostile bodies (tests/functional/hostile_bodies.py) against the router and the feedback function through
their handlers (API Gateway payload 2.0 events, moto behind them) and the inference server over real HTTP:
every answer is a 4xx with a JSON error, or a success, never a 5xx."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from moto import mock_aws

from containers.inference.local_server import LocalServer
from lambdas.serving.aws.feedback_wiring import build_feedback_recorder
from lambdas.serving.aws.flags import AppConfigFlagSource
from lambdas.serving.aws.wiring import build_predictor
from lambdas.serving.http import MAX_BODY_BYTES
from lambdas.serving.inference import Predictor
from lambdas.serving.settings import FeedbackSettings, RouterSettings, load_settings
from pipelines import train
from pipelines.train import TrainConfig
from tests.functional.hostile_bodies import HostileBody, hostile_bodies
from tests.functional.serving_support import (
    ENVIRONMENT,
    FakeAppConfigData,
    FakeRuntime,
    LambdaContextStub,
    create_endpoint,
    create_table,
    flag_values,
    iam_context,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

CONTAINER_LIMIT = 256 * 1024
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def lambda_event(hostile: HostileBody, path: str, path_parameters: dict[str, str] | None) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would deliver: text as is, anything not UTF-8 base64-encoded."""
    headers = {} if hostile.content_type is None else {"content-type": hostile.content_type}
    try:
        body, encoded = hostile.body.decode("utf-8"), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(hostile.body).decode(), True
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "headers": headers,
        "requestContext": {
            "requestId": "req-hostile",
            "http": {"method": "POST", "path": path},
            "authorizer": {"iam": iam_context()},
        },
        "pathParameters": path_parameters,
        "body": body,
        "isBase64Encoded": encoded,
    }


def assert_client_error_or_success(status: int, body: bytes | str, hostile: HostileBody) -> None:
    assert status < 500, f"{hostile!r} got {status}: {body[:300]!r}"
    if status >= 400:
        answer = json.loads(body)
        assert isinstance(answer["error"], str), answer
        assert isinstance(answer["message"], str), answer


def _handler(name: str) -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in ENVIRONMENT.items():
            patch.setenv(variable, value)
        # Re-imported under this environment: Powertools reads its namespace when the module loads.
        yield importlib.reload(importlib.import_module(f"lambdas.handlers.{name}"))


@pytest.fixture(scope="module")
def router() -> Iterator[ModuleType]:
    yield from _handler("router")


@pytest.fixture(scope="module")
def feedback() -> Iterator[ModuleType]:
    yield from _handler("feedback")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_table(boto3.client("dynamodb"))
        create_endpoint(boto3.client("sagemaker"), {"champion": 50.0, "challenger": 50.0})
        yield


@EXAMPLES
@given(hostile=hostile_bodies(MAX_BODY_BYTES))
def test_router_answers_every_hostile_body_with_a_4xx(
    router: ModuleType, aws: None, hostile: HostileBody
) -> None:
    router.use(_router_predictor())
    try:
        event = lambda_event(hostile, "/endpoints/churn/invocations", {"endpoint": "churn"})
        response = router.handler(event, LambdaContextStub())
    finally:
        router.use(None)
    assert_client_error_or_success(response["statusCode"], response["body"], hostile)


def _router_predictor() -> Predictor:
    flags = AppConfigFlagSource(
        application="mlrollout-dev",
        environment="dev",
        profile="flags",
        ttl_seconds=30,
        catalog=load_settings(RouterSettings, ENVIRONMENT).catalog(),
        client=cast("Any", FakeAppConfigData(flag_values())),
    )
    return build_predictor(
        load_settings(RouterSettings, ENVIRONMENT),
        runtime=cast("SageMakerRuntimeClient", FakeRuntime()),
        flag_source=flags,
    )


@EXAMPLES
@given(hostile=hostile_bodies(MAX_BODY_BYTES))
def test_feedback_answers_every_hostile_body_with_a_4xx(
    feedback: ModuleType, aws: None, hostile: HostileBody
) -> None:
    feedback.use(build_feedback_recorder(load_settings(FeedbackSettings, ENVIRONMENT)))
    try:
        response = feedback.handler(lambda_event(hostile, "/feedback", None), LambdaContextStub())
    finally:
        feedback.use(None)
    assert_client_error_or_success(response["statusCode"], response["body"], hostile)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    train.train(TrainConfig("logistic", seed=5, samples=600, model_version="hostile-v1"), directory)
    return directory


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    log = tmp_path_factory.mktemp("logs") / "server.log"
    extra_env = {"INFERENCE_MAX_PAYLOAD_BYTES": str(CONTAINER_LIMIT)}
    with LocalServer(model_dir, workers=1, log_path=log, extra_env=extra_env) as running:
        yield running


@EXAMPLES
@given(hostile=hostile_bodies(CONTAINER_LIMIT))
def test_inference_server_answers_every_hostile_body_with_a_4xx(
    server: LocalServer, hostile: HostileBody
) -> None:
    headers = {} if hostile.content_type is None else {"Content-Type": hostile.content_type}
    status, body = server.request("POST", "/invocations", hostile.body, headers)
    assert_client_error_or_success(status, body, hostile)
