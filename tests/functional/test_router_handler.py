"""The router Lambda against moto (DynamoDB, SageMaker DescribeEndpoint) with the model call faked."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
import requests
from moto import mock_aws

from lambdas.serving.aws.flags import AppConfigFlagSource
from lambdas.serving.aws.store import STORE_CONFIG
from lambdas.serving.aws.weights import DescribesEndpoints, EndpointWeightSource
from lambdas.serving.aws.wiring import build_predictor
from lambdas.serving.inference import Predictor
from lambdas.serving.ports import TrafficSplit
from lambdas.serving.routing import hash_point
from lambdas.serving.settings import RouterSettings, load_settings
from tests.functional.serving_support import (
    CALLER_PRINCIPAL,
    CATALOG,
    ENDPOINT_CONFIG,
    ENDPOINT_NAME,
    ENVIRONMENT,
    TABLE,
    DynamoDBFault,
    FakeAppConfigData,
    FakeRuntime,
    LambdaContextStub,
    create_endpoint,
    create_table,
    emf_blobs,
    flag_values,
    http_event,
    metric_values,
    runtime_error,
)

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

PATH = "/endpoints/churn/invocations"
FEATURES = {"tenure": 12, "plan": "pro", "monthly_spend": 42.5}


@dataclass
class Serving:
    handler: ModuleType
    runtime: FakeRuntime
    appconfig: FakeAppConfigData
    dynamodb: DynamoDBClient
    sagemaker: Any

    def post(self, body: Any, *, endpoint: str = "churn", raw: bool = False) -> dict[str, Any]:
        text = body if raw else json.dumps(body)
        event = http_event(
            text, path=f"/endpoints/{endpoint}/invocations", path_parameters={"endpoint": endpoint}
        )
        response: dict[str, Any] = self.handler.handler(event, LambdaContextStub())
        return response

    def predictor(
        self,
        weight_source: EndpointWeightSource | None = None,
        flags_clock: Callable[[], float] = time.monotonic,
    ) -> Predictor:
        """The real adapters on moto, with the fake model and the fake AppConfigData."""
        flags = AppConfigFlagSource(
            application="mlrollout-dev",
            environment="dev",
            profile="flags",
            ttl_seconds=30,
            catalog=CATALOG,
            client=cast("AppConfigDataClient", self.appconfig),
            clock=flags_clock,
        )
        return build_predictor(
            load_settings(RouterSettings, ENVIRONMENT),
            runtime=cast("SageMakerRuntimeClient", self.runtime),
            dynamodb=self.dynamodb,
            sagemaker=cast("DescribesEndpoints", self.sagemaker),
            flag_source=flags,
            weight_source=weight_source,
        )

    def stored_items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=TABLE)["Items"])


@pytest.fixture(scope="module")
def handler() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        # Re-imported under this environment: Powertools reads its namespace when the module loads.
        yield importlib.reload(importlib.import_module("lambdas.handlers.router"))


@pytest.fixture
def serving(handler: ModuleType) -> Iterator[Serving]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb)
        sagemaker = boto3.client("sagemaker")
        create_endpoint(sagemaker, {"champion": 50.0, "challenger": 50.0})
        serving = Serving(handler, FakeRuntime(), FakeAppConfigData(flag_values()), dynamodb, sagemaker)
        handler.use(serving.predictor())
        yield serving
        handler.use(None)


def user_in(bucket: str, share: float) -> str:
    """A user id whose hash lands in the challenger's [0, share) or outside it."""
    for number in range(10_000):
        user = f"user-{number}"
        if (hash_point("churn", user, ENDPOINT_CONFIG) < share) == (bucket == "challenger"):
            return user
    raise AssertionError("no such user")


def everything_logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Every record's message and extra fields (the JSON log line carries them all), and stdout."""
    records = " ".join(str(vars(record)) for record in caplog.records)
    return f"{caplog.text} {records} {capsys.readouterr().out}"


def body_of(response: dict[str, Any]) -> Any:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


def test_hashed_user_gets_its_variant_as_target_and_the_inference_is_stored(
    serving: Serving, capsys: pytest.CaptureFixture[str]
) -> None:
    user = user_in("challenger", 0.5)
    before = int(time.time())
    response = serving.post({"features": FEATURES, "user_id": user})
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["variant"] == "challenger"
    assert body["prediction"] == {"predictions": [1]}
    assert body["routing"]["reason"] == "sticky_hash"
    (call,) = serving.runtime.calls
    assert call["EndpointName"] == ENDPOINT_NAME
    assert call["TargetVariant"] == "challenger"
    assert call["InferenceId"] == body["inference_id"]
    assert json.loads(call["Body"]) == {"instances": [FEATURES]}
    (item,) = serving.stored_items()
    assert item["inference_id"]["S"] == body["inference_id"]
    assert item["variant"]["S"] == "challenger"
    assert before + 30 * 86_400 <= int(item["expires_at"]["N"]) <= int(time.time()) + 30 * 86_400
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "mlrollout", "Requests") == [
        ({"EndpointName": ENDPOINT_NAME, "VariantName": "challenger"}, [1.0])
    ]
    assert metric_values(blobs, "mlrollout", "FlagsUnavailable") == []


def test_same_user_stays_on_its_variant_when_the_challenger_grows(serving: Serving) -> None:
    user = user_in("challenger", 0.05)
    serving.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT_NAME,
        DesiredWeightsAndCapacities=[
            {"VariantName": "champion", "DesiredWeight": 95.0},
            {"VariantName": "challenger", "DesiredWeight": 5.0},
        ],
    )
    clock = [0.0]
    weights = EndpointWeightSource(
        client=cast("DescribesEndpoints", serving.sagemaker), ttl_seconds=30, clock=lambda: clock[0]
    )
    serving.handler.use(serving.predictor(weights))
    assert body_of(serving.post({"features": FEATURES, "user_id": user}))["variant"] == "challenger"
    serving.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT_NAME,
        DesiredWeightsAndCapacities=[
            {"VariantName": "champion", "DesiredWeight": 75.0},
            {"VariantName": "challenger", "DesiredWeight": 25.0},
        ],
    )
    clock[0] = 31.0  # past the weights TTL: the new weights are read
    body = body_of(serving.post({"features": FEATURES, "user_id": user}))
    assert body["variant"] == "challenger"
    assert "challenger share 0.2500" in body["routing"]["detail"]


def test_the_next_rollout_hashes_users_anew_from_the_endpoints_running_config(serving: Serving) -> None:
    """A rollout deploys its own endpoint config; the router salts the sticky hash with its name."""
    next_config = "mlrollout-dev-churn-deploy-0123456789"
    user = next(
        f"user-{number}"
        for number in range(10_000)
        if hash_point("churn", f"user-{number}", ENDPOINT_CONFIG) < 0.5
        and hash_point("churn", f"user-{number}", next_config) >= 0.5
    )
    assert body_of(serving.post({"features": FEATURES, "user_id": user}))["variant"] == "challenger"
    variants = serving.sagemaker.describe_endpoint_config(EndpointConfigName=ENDPOINT_CONFIG)
    serving.sagemaker.create_endpoint_config(
        EndpointConfigName=next_config, ProductionVariants=variants["ProductionVariants"]
    )
    # What UpdateEndpoint ends with (moto has no UpdateEndpoint): the endpoint running the new config.
    serving.sagemaker.delete_endpoint(EndpointName=ENDPOINT_NAME)
    serving.sagemaker.create_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=next_config)
    serving.handler.use(serving.predictor())  # a new container: no cached weights
    body = body_of(serving.post({"features": FEATURES, "user_id": user}))
    assert (body["variant"], body["routing"]["reason"]) == ("champion", "sticky_hash")


def test_kill_switch_sends_a_challenger_user_to_the_champion(serving: Serving) -> None:
    serving.appconfig.values = flag_values(kill_switch={"enabled": True, "reason": "INC-7"})
    body = body_of(serving.post({"features": FEATURES, "user_id": user_in("challenger", 0.5)}))
    assert (body["variant"], body["routing"]["reason"]) == ("champion", "kill_switch")
    assert serving.runtime.calls[0]["TargetVariant"] == "champion"


def test_pinned_segment_goes_to_its_variant(serving: Serving) -> None:
    serving.appconfig.values = flag_values(
        segment_pin={"enabled": True, "segments": ["beta"], "variant": "challenger"}
    )
    body = body_of(
        serving.post({"features": FEATURES, "user_id": user_in("champion", 0.5), "segment": "beta"})
    )
    assert (body["variant"], body["routing"]["reason"]) == ("challenger", "segment_pin")


def test_without_user_id_no_target_variant_is_sent(serving: Serving) -> None:
    body = body_of(serving.post({"features": [[1, 2.5, "pro"], [3, 0.0, "free"]]}))
    (call,) = serving.runtime.calls
    assert "TargetVariant" not in call
    assert json.loads(call["Body"]) == {"instances": [[1, 2.5, "pro"], [3, 0.0, "free"]]}
    assert body["routing"] == {
        "reason": "sagemaker_split",
        "target_variant": None,
        "detail": "no user id: SageMaker splits by weight",
    }
    assert body["prediction"] == {"predictions": [1, 1]}


def test_unreadable_flags_fail_safe_to_the_champion_and_are_counted(
    serving: Serving, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    serving.appconfig.error = runtime_error("ThrottlingException", "slow down")
    response = serving.post({"features": FEATURES, "user_id": user_in("challenger", 0.5)})
    assert response["statusCode"] == 200
    body = body_of(response)
    assert (body["variant"], body["routing"]["reason"]) == ("champion", "flags_unavailable")
    out = capsys.readouterr().out
    dimensions = {"EndpointName": ENDPOINT_NAME, "VariantName": "champion"}
    assert metric_values(emf_blobs(out), "mlrollout", "FlagsUnavailable") == [(dimensions, [1.0])]
    assert "flags unavailable: served the champion" in caplog.text


def test_after_a_flag_read_failure_requests_fail_safe_at_once_then_retry_on_a_new_session(
    serving: Serving,
) -> None:
    clock = [0.0]
    serving.handler.use(serving.predictor(flags_clock=lambda: clock[0]))
    serving.appconfig.error = runtime_error("InternalServerException", "down")
    for _ in range(2):
        body = body_of(serving.post({"features": FEATURES}))
        assert body["routing"]["reason"] == "flags_unavailable"
    assert serving.appconfig.fetches == 1
    serving.appconfig.error = None
    clock[0] = 5.0
    assert body_of(serving.post({"features": FEATURES}))["routing"]["reason"] == "sagemaker_split"
    assert (serving.appconfig.fetches, len(serving.appconfig.sessions)) == (2, 2)


def test_a_flag_document_the_model_rejects_counts_as_unavailable(serving: Serving) -> None:
    serving.appconfig.values = flag_values(user_pin={"enabled": True, "users": ["u-1"], "variant": "shadow"})
    body = body_of(serving.post({"features": FEATURES, "user_id": "u-1"}))
    assert (body["variant"], body["routing"]["reason"]) == ("champion", "flags_unavailable")
    assert "churn-user-pin" in body["routing"]["detail"]


def test_flags_are_fetched_once_per_ttl_from_a_session_polled_at_that_interval(serving: Serving) -> None:
    for _ in range(3):
        assert serving.post({"features": FEATURES})["statusCode"] == 200
    assert serving.appconfig.fetches == 1
    # A longer session interval than the TTL would make AppConfigData answer "Request too early".
    assert serving.appconfig.sessions == [
        {
            "ApplicationIdentifier": "mlrollout-dev",
            "EnvironmentIdentifier": "dev",
            "ConfigurationProfileIdentifier": "flags",
            "RequiredMinimumPollIntervalInSeconds": 30,
        }
    ]


def test_base64_encoded_body_is_accepted(serving: Serving) -> None:
    event = http_event(
        json.dumps({"features": FEATURES}), path=PATH, path_parameters={"endpoint": "churn"}, base64_body=True
    )
    assert serving.handler.handler(event, LambdaContextStub())["statusCode"] == 200


@pytest.mark.parametrize(
    ("body", "raw", "status", "named"),
    [
        ("{not json", True, 400, "not valid JSON"),
        ("[1, 2]", True, 400, "must be a JSON object"),
        ({}, False, 400, "features"),
        ({"features": "tenure=12"}, False, 400, "features"),
        ({"features": []}, False, 400, "features"),
        ({"features": {"tenure": [1, 2]}}, False, 400, "features"),
        ({"features": FEATURES, "user_id": 42}, False, 400, "user_id"),
        ({"features": FEATURES, "segment": "has spaces"}, False, 400, "segment"),
        ({"features": FEATURES, "colour": "red"}, False, 400, "colour: unknown field"),
    ],
)
def test_bad_request_is_400_naming_the_problem_and_changes_nothing(
    serving: Serving, body: Any, raw: bool, status: int, named: str
) -> None:
    response = serving.post(body, raw=raw)
    assert response["statusCode"] == status
    error = body_of(response)
    assert error["error"] == "bad_request"
    assert named in error["message"]
    assert serving.runtime.calls == []
    assert serving.stored_items() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"features": {"plan": "s3cr3t" * 50}}, "features"),
        ({"features": {"s3cr3t" * 30: 1}}, "features"),
        ({"features": FEATURES, "user_id": "s3cr3t value"}, "user_id"),
        ({"features": FEATURES, "segment": "s3cr3t value"}, "segment"),
        ({"features": FEATURES, "s3cr3t": 1}, "s3cr3t: unknown field"),
    ],
)
def test_string_features_are_bounded_and_refusals_name_the_field_but_log_no_value(
    serving: Serving,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    body: dict[str, Any],
    field: str,
) -> None:
    caplog.set_level("DEBUG")
    response = serving.post(body)
    assert response["statusCode"] == 400
    error = body_of(response)
    assert field in error["message"]
    assert "s3cr3t" * 2 not in error["message"]
    logged = everything_logged(caplog, capsys)
    assert "prediction refused" in logged
    assert "s3cr3t" not in logged


def test_a_model_refusal_is_logged_without_its_message(
    serving: Serving, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    serving.runtime.error = cast(
        "Any",
        runtime_error(
            "ModelError",
            "Received client error (422)",
            OriginalStatusCode=422,
            OriginalMessage="feature 'plan': got s3cr3t",
        ),
    )
    response = serving.post({"features": FEATURES})
    assert (response["statusCode"], body_of(response)["message"]) == (
        400,
        "model rejected the request: feature 'plan': got s3cr3t",
    )
    logged = everything_logged(caplog, capsys)
    assert "prediction refused" in logged
    assert "s3cr3t" not in logged


def test_an_inference_is_stored_with_the_principal_it_was_served_to(serving: Serving) -> None:
    body = body_of(serving.post({"features": FEATURES}))
    (item,) = serving.stored_items()
    assert (item["inference_id"]["S"], item["caller"]["S"]) == (body["inference_id"], CALLER_PRINCIPAL)


def test_a_request_without_an_iam_identity_is_403_and_calls_nothing(serving: Serving) -> None:
    event = http_event(
        json.dumps({"features": FEATURES}), path=PATH, path_parameters={"endpoint": "churn"}, signed=False
    )
    response = serving.handler.handler(event, LambdaContextStub())
    assert (response["statusCode"], body_of(response)["error"]) == (403, "forbidden")
    assert (serving.runtime.calls, serving.stored_items()) == ([], [])


def test_missing_body_is_400(serving: Serving) -> None:
    event = http_event(None, path=PATH, path_parameters={"endpoint": "churn"})
    response = serving.handler.handler(event, LambdaContextStub())
    assert (response["statusCode"], body_of(response)["message"]) == (400, "the request needs a JSON body")


def test_unknown_endpoint_is_404(serving: Serving) -> None:
    response = serving.post({"features": FEATURES}, endpoint="fraud")
    assert response["statusCode"] == 404
    assert body_of(response)["message"] == "unknown endpoint 'fraud' (known: ['churn'])"
    assert serving.runtime.calls == []


@pytest.mark.parametrize(
    ("error", "status", "named"),
    [
        (
            runtime_error(
                "ModelError",
                "Received server error (500)",
                OriginalStatusCode=500,
                OriginalMessage="model crashed",
            ),
            502,
            "model crashed",
        ),
        (
            runtime_error(
                "ModelError",
                "Received client error (400)",
                OriginalStatusCode=400,
                OriginalMessage="expected 3 features, got 2",
            ),
            400,
            "expected 3 features, got 2",
        ),
        (
            runtime_error(
                "ModelError",
                "Received client error (422)",
                OriginalStatusCode=422,
                OriginalMessage='{"error": "wrong_feature_count", "record": 0}',
            ),
            400,
            "wrong_feature_count",
        ),
        (
            runtime_error(
                "ModelError",
                "Received server error (503)",
                OriginalStatusCode=503,
                OriginalMessage='{"error": "model_not_loaded"}',
            ),
            503,
            "model_not_loaded",
        ),
        (runtime_error("ThrottlingException", "Rate exceeded"), 503, "retry later"),
        (runtime_error("ValidationError", "Endpoint not found"), 502, "Endpoint not found"),
    ],
)
def test_model_call_faults_map_to_statuses_and_store_nothing(
    serving: Serving, error: Exception, status: int, named: str
) -> None:
    serving.runtime.error = cast("Any", error)
    response = serving.post({"features": FEATURES})
    assert response["statusCode"] == status
    assert named in body_of(response)["message"]
    assert serving.stored_items() == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("InternalServerError", 500),
    ],
)
def test_an_inference_store_outage_still_serves_the_prediction_and_counts_the_dropped_record(
    serving: Serving,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    status: int,
) -> None:
    # The deployed client's retry rule (STORE_CONFIG): one retry, then the record is dropped.
    serving.dynamodb = boto3.client("dynamodb", config=STORE_CONFIG)
    serving.handler.use(serving.predictor())
    fault = DynamoDBFault("put_item", code, status).install(monkeypatch)
    response = serving.post({"features": FEATURES, "user_id": user_in("challenger", 0.5)})
    assert response["statusCode"] == 200
    body = body_of(response)
    assert (body["variant"], body["prediction"], body["recorded"]) == (
        "challenger",
        {"predictions": [1]},
        False,
    )
    assert fault.attempts == 2
    assert serving.stored_items() == []
    blobs = emf_blobs(capsys.readouterr().out)
    challenger = {"EndpointName": ENDPOINT_NAME, "VariantName": "challenger"}
    assert metric_values(blobs, "mlrollout", "InferenceNotRecorded") == [(challenger, [1.0])]
    assert metric_values(blobs, "mlrollout", "Requests") == [(challenger, [1.0])]


def test_a_recorded_inference_says_so(serving: Serving) -> None:
    assert body_of(serving.post({"features": FEATURES}))["recorded"] is True


def test_after_a_weights_read_failure_requests_go_untargeted_at_once_then_retry(serving: Serving) -> None:
    calls = []

    class FailingSageMaker:
        def describe_endpoint(self, *, EndpointName: str) -> Any:
            calls.append(EndpointName)
            raise runtime_error("ThrottlingException", "Rate exceeded")

    clock = [0.0]
    serving.handler.use(
        serving.predictor(
            EndpointWeightSource(client=FailingSageMaker(), ttl_seconds=30, clock=lambda: clock[0])
        )
    )
    for _ in range(2):
        body = body_of(serving.post({"features": FEATURES, "user_id": "u-1"}))
        assert (body["routing"]["reason"], body["routing"]["target_variant"]) == ("weights_unavailable", None)
    assert len(calls) == 1
    clock[0] = 5.0
    serving.post({"features": FEATURES, "user_id": "u-1"})
    assert len(calls) == 2


def test_weights_are_cached_for_their_ttl(serving: Serving) -> None:
    calls = []

    class CountingSageMaker:
        def describe_endpoint(self, *, EndpointName: str) -> Any:
            calls.append(EndpointName)
            return serving.sagemaker.describe_endpoint(EndpointName=EndpointName)

    clock = [100.0]
    weights = EndpointWeightSource(client=CountingSageMaker(), ttl_seconds=30, clock=lambda: clock[0])
    assert weights.traffic(ENDPOINT_NAME) == TrafficSplit(
        {"champion": 50.0, "challenger": 50.0}, ENDPOINT_CONFIG
    )
    clock[0] = 129.0
    weights.traffic(ENDPOINT_NAME)
    assert len(calls) == 1
    clock[0] = 130.0
    weights.traffic(ENDPOINT_NAME)
    assert len(calls) == 2


def test_the_router_built_from_its_environment_serves_through_moto(serving: Serving) -> None:
    """No injected parts: the clients come from the environment (moto has no AppConfigData: fail safe)."""
    moto_results: dict[str, Any] = {
        "account_id": "123456789012",
        "region": "us-east-1",
        "results": [{"Body": json.dumps({"predictions": [0]}), "InvokedProductionVariant": "champion"}],
    }
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json=moto_results,
        timeout=5,
    ).raise_for_status()
    serving.handler.use(None)
    body = body_of(serving.post({"features": FEATURES, "user_id": "u-1"}))
    assert (body["variant"], body["routing"]["reason"]) == ("champion", "flags_unavailable")
    assert body["prediction"] == {"predictions": [0]}
    (item,) = serving.stored_items()
    assert item["inference_id"]["S"] == body["inference_id"]
