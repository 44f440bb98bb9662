"""The request path end to end: router Lambda → real inference servers over HTTP → feedback Lambda.

Two really trained models run as the `serve` entrypoint (gunicorn) on loopback ports, one per
variant. The SageMaker runtime is the only stand-in: it forwards InvokeEndpoint to the server of
the targeted variant as SageMaker does (moto's InvokeEndpoint ignores variants), and turns a
container's 4XX into SageMaker's ModelError with the original status and message.
"""

from __future__ import annotations

import importlib
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from containers.inference.local_server import LocalServer
from lambdas.serving.aws.flags import AppConfigFlagSource
from lambdas.serving.aws.weights import DescribesEndpoints
from lambdas.serving.aws.wiring import build_predictor
from lambdas.serving.inference import Predictor
from lambdas.serving.routing import hash_point
from lambdas.serving.settings import RouterSettings, load_settings
from pipelines.train import Recipe, TrainConfig, train
from tests.functional.serving_support import (
    CATALOG,
    ENDPOINT_CONFIG,
    ENVIRONMENT,
    TABLE,
    FakeAppConfigData,
    LambdaContextStub,
    create_endpoint,
    create_table,
    flag_values,
    http_event,
)

FEATURES = {
    "tenure_months": 3,
    "monthly_charges": 95.0,
    "support_calls_90d": 7,
    "contract_months": 1,
    "late_payments_12m": 4,
    "data_usage_gb": 2.5,
    "satisfaction_score": 1.5,
    "autopay": 0,
}


@dataclass
class LoopbackRuntime:
    """InvokeEndpoint routed to one real inference server per variant."""

    servers: dict[str, LocalServer]
    weights: dict[str, float]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    calls: list[str] = field(default_factory=list)

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        variant = request.get("TargetVariant") or self._split()
        self.calls.append(variant)
        status, body = self.servers[variant].request(
            "POST", "/invocations", body=request["Body"], headers={"Content-Type": request["ContentType"]}
        )
        if status >= 400:
            raise ClientError(
                cast(
                    Any,
                    {
                        "Error": {"Code": "ModelError", "Message": "Received client error from the model"},
                        "OriginalStatusCode": status,
                        "OriginalMessage": body.decode(),
                    },
                ),
                "InvokeEndpoint",
            )
        return {
            "Body": io.BytesIO(body),
            "ContentType": "application/json",
            "InvokedProductionVariant": variant,
        }

    def _split(self) -> str:
        variants = list(self.weights)
        return self.rng.choices(variants, weights=[self.weights[name] for name in variants])[0]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalServer]]:
    root = tmp_path_factory.mktemp("models")
    recipes: dict[str, Recipe] = {"champion": "logistic", "challenger": "degraded"}
    started: dict[str, LocalServer] = {}
    try:
        for variant, recipe in recipes.items():
            model_dir = root / variant
            train(TrainConfig(recipe=recipe, seed=3, samples=1500, model_version=f"{recipe}-v1"), model_dir)
            started[variant] = LocalServer(model_dir, workers=1, log_path=root / f"{variant}.log").start()
        yield started
    finally:
        for server in started.values():
            server.stop()


def _reload(module: str) -> ModuleType:
    return importlib.reload(importlib.import_module(module))


@dataclass
class RequestPath:
    router: ModuleType
    feedback: ModuleType
    runtime: LoopbackRuntime
    appconfig: FakeAppConfigData

    def predict(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        event = http_event(
            json.dumps(body), path="/endpoints/churn/invocations", path_parameters={"endpoint": "churn"}
        )
        response = self.router.handler(event, LambdaContextStub())
        return response["statusCode"], json.loads(response["body"])

    def report(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.feedback.handler(http_event(json.dumps(body), path="/feedback"), LambdaContextStub())
        return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def request_path(servers: dict[str, LocalServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[RequestPath]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    router, feedback = _reload("lambdas.handlers.router"), _reload("lambdas.handlers.feedback")
    weights = {"champion": 75.0, "challenger": 25.0}
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb)
        sagemaker = boto3.client("sagemaker")
        create_endpoint(sagemaker, weights)
        path = RequestPath(
            router, feedback, LoopbackRuntime(servers, weights), FakeAppConfigData(flag_values())
        )
        router.use(_predictor(path, dynamodb, sagemaker))
        feedback.use(None)  # built from the environment: boto3 clients on moto
        yield path
        router.use(None)
        feedback.use(None)


def _predictor(path: RequestPath, dynamodb: Any, sagemaker: Any) -> Predictor:
    """The router's real adapters, with the loopback runtime and the flags from the fake AppConfigData."""
    flags = AppConfigFlagSource(
        application="mlrollout-dev",
        environment="dev",
        profile="flags",
        ttl_seconds=30,
        catalog=CATALOG,
        client=cast(Any, path.appconfig),
    )
    return build_predictor(
        load_settings(RouterSettings, ENVIRONMENT),
        runtime=cast(Any, path.runtime),
        dynamodb=dynamodb,
        sagemaker=cast(DescribesEndpoints, sagemaker),
        flag_source=flags,
    )


def _user(in_challenger: bool, share: float = 0.25) -> str:
    for number in range(10_000):
        user = f"customer-{number}"
        if (hash_point("churn", user, ENDPOINT_CONFIG) < share) == in_challenger:
            return user
    raise AssertionError("no such user")


def _served_by(server: LocalServer, features: dict[str, Any]) -> dict[str, Any]:
    status, body = server.request(
        "POST",
        "/invocations",
        body=json.dumps(features).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    answer: dict[str, Any] = json.loads(body)
    return answer


def test_sticky_user_gets_the_challengers_real_prediction_and_feedback_is_recorded_for_it(
    request_path: RequestPath, servers: dict[str, LocalServer]
) -> None:
    status, served = request_path.predict({"features": FEATURES, "user_id": _user(in_challenger=True)})

    assert status == 200
    assert served["variant"] == "challenger"
    assert served["prediction"] == _served_by(servers["challenger"], FEATURES)
    assert served["prediction"]["model_version"] == "degraded-v1"

    label = served["prediction"]["predictions"][0]
    status, recorded = request_path.report({"inference_id": served["inference_id"], "label": label})
    assert status == 200
    assert (recorded["variant"], recorded["values"]) == ("challenger", [1.0])
    status, again = request_path.report({"inference_id": served["inference_id"], "label": label})
    assert status == 409, again


def test_kill_switch_sends_a_challenger_user_to_the_champions_model(request_path: RequestPath) -> None:
    request_path.appconfig.values = flag_values(kill_switch={"enabled": True})
    status, served = request_path.predict({"features": FEATURES, "user_id": _user(in_challenger=True)})
    assert status == 200
    assert (served["variant"], served["routing"]["reason"]) == ("champion", "kill_switch")
    assert served["prediction"]["model_version"] == "logistic-v1"


def test_unsticky_requests_are_split_by_the_endpoint_weights(request_path: RequestPath) -> None:
    variants = [request_path.predict({"features": FEATURES})[1]["variant"] for _ in range(40)]
    assert set(variants) == {"champion", "challenger"}
    assert variants == request_path.runtime.calls[-40:]


def test_a_record_the_model_rejects_is_a_400_naming_the_feature_and_nothing_is_stored(
    request_path: RequestPath,
) -> None:
    bad = FEATURES | {"satisfaction_score": 9.0}  # the schema's range is 1-5
    status, body = request_path.predict({"features": bad, "user_id": _user(in_challenger=False)})
    assert status == 400
    assert "satisfaction_score" in body["message"]
    dynamodb = boto3.client("dynamodb")
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
