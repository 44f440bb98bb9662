"""The feedback Lambda against moto's DynamoDB: outcomes recorded once, metrics per variant."""

from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from moto import mock_aws

from lambdas.flags import FlagSet
from lambdas.serving.aws.feedback_wiring import build_feedback_recorder
from lambdas.serving.aws.store import STORE_CONFIG, DynamoDBInferenceStore
from lambdas.serving.aws.wiring import build_predictor
from lambdas.serving.ports import InferenceRecord, Outcome, OutcomeAlreadyRecorded, TrafficSplit
from lambdas.serving.settings import FeedbackSettings, RouterSettings, load_settings
from tests.functional.serving_support import (
    BUSINESS_NAME,
    BUSINESS_NAMESPACE,
    CALLER_PRINCIPAL,
    ENDPOINT_NAME,
    ENVIRONMENT,
    TABLE,
    DynamoDBFault,
    FakeRuntime,
    LambdaContextStub,
    create_table,
    emf_blobs,
    http_event,
    iam_context,
    metric_values,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

CHALLENGER = {"EndpointName": ENDPOINT_NAME, "VariantName": "challenger"}


@dataclass
class Feedback:
    handler: ModuleType
    dynamodb: DynamoDBClient
    store: DynamoDBInferenceStore

    def post(
        self, body: Any, *, raw: bool = False, caller: dict[str, Any] | None = None, signed: bool = True
    ) -> dict[str, Any]:
        event = http_event(body if raw else json.dumps(body), path="/feedback", caller=caller, signed=signed)
        response: dict[str, Any] = self.handler.handler(event, LambdaContextStub())
        return response

    def stored(self, *, labels: tuple[Any, ...] | None = (1,), expires_in: int = 3600) -> str:
        """An inference served by the challenger, as the router stores it."""
        inference_id = str(uuid.uuid4())
        now = int(time.time())
        self.store.save(
            InferenceRecord(
                inference_id=inference_id,
                endpoint="churn",
                endpoint_name=ENDPOINT_NAME,
                variant="challenger",
                records=len(labels) if labels else 1,
                predicted_labels=labels,
                created_at=now - 60,
                expires_at=now + expires_in,
                caller=CALLER_PRINCIPAL,
            )
        )
        return inference_id

    def item(self, inference_id: str) -> dict[str, Any]:
        return dict(
            self.dynamodb.get_item(TableName=TABLE, Key={"inference_id": {"S": inference_id}})["Item"]
        )


@pytest.fixture(scope="module")
def handler() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        # Re-imported under this environment: Powertools reads its namespace when the module loads.
        yield importlib.reload(importlib.import_module("lambdas.handlers.feedback"))


@pytest.fixture
def feedback(handler: ModuleType) -> Iterator[Feedback]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb)
        handler.use(build_feedback_recorder(load_settings(FeedbackSettings, ENVIRONMENT), dynamodb=dynamodb))
        yield Feedback(handler, dynamodb, DynamoDBInferenceStore(client=dynamodb, table_name=TABLE))
        handler.use(None)


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_a_correct_label_publishes_accuracy_and_the_business_metric_per_variant(
    feedback: Feedback, capsys: pytest.CaptureFixture[str]
) -> None:
    inference_id = feedback.stored(labels=(1,))
    response = feedback.post({"inference_id": inference_id, "label": 1})
    assert response["statusCode"] == 200
    assert body_of(response) == {
        "inference_id": inference_id,
        "endpoint": "churn",
        "variant": "challenger",
        "outcome": "label",
        "values": [1.0],
    }
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "mlrollout", "Accuracy") == [(CHALLENGER, [1.0])]
    assert metric_values(blobs, BUSINESS_NAMESPACE, BUSINESS_NAME) == [(CHALLENGER, [1.0])]
    assert feedback.item(inference_id)["outcome"] == {"S": "label"}


def test_a_conversion_is_scored_and_stored(feedback: Feedback, capsys: pytest.CaptureFixture[str]) -> None:
    inference_id = feedback.stored(labels=None)
    response = feedback.post({"inference_id": inference_id, "converted": False})
    assert (response["statusCode"], body_of(response)["values"]) == (200, [0.0])
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "mlrollout", "Conversion") == [(CHALLENGER, [0.0])]
    assert metric_values(blobs, BUSINESS_NAMESPACE, BUSINESS_NAME) == [(CHALLENGER, [0.0])]
    assert feedback.item(inference_id)["outcome_values"] == {"L": [{"N": "0.0"}]}


def test_batch_labels_are_scored_per_record(feedback: Feedback, capsys: pytest.CaptureFixture[str]) -> None:
    inference_id = feedback.stored(labels=("churn", "stay", "churn"))
    response = feedback.post({"inference_id": inference_id, "label": ["churn", "churn", "churn"]})
    assert body_of(response)["values"] == [1.0, 0.0, 1.0]
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "mlrollout", "Accuracy") == [(CHALLENGER, [1.0, 0.0, 1.0])]


def serve_through_router(dynamodb: DynamoDBClient, runtime: FakeRuntime) -> dict[str, Any]:
    """One prediction through the router's handler on the same table; its JSON answer."""
    flags = FlagSet.initial(load_settings(RouterSettings, ENVIRONMENT).catalog())

    class StaticFlags:
        def flags(self) -> FlagSet:
            return flags

    class StaticWeights:
        def traffic(self, endpoint_name: str) -> TrafficSplit:
            return TrafficSplit({"champion": 100.0, "challenger": 0.0}, "churn-config")

    predictor = build_predictor(
        load_settings(RouterSettings, ENVIRONMENT),
        runtime=cast("SageMakerRuntimeClient", runtime),
        dynamodb=dynamodb,
        flag_source=StaticFlags(),
        weight_source=StaticWeights(),
    )
    router = importlib.import_module("lambdas.handlers.router")
    router.use(predictor)
    try:
        event = http_event(
            json.dumps({"features": {"tenure": 3}, "user_id": "u-1"}),
            path="/endpoints/churn/invocations",
            path_parameters={"endpoint": "churn"},
        )
        served: dict[str, Any] = body_of(router.handler(event, LambdaContextStub()))
    finally:
        router.use(None)
    return served


def test_feedback_on_a_prediction_served_by_the_router(feedback: Feedback) -> None:
    """End to end: the id the router returns is the one feedback accepts."""
    served = serve_through_router(feedback.dynamodb, FakeRuntime(label=0))
    response = feedback.post({"inference_id": served["inference_id"], "label": 1})
    assert body_of(response) == {
        "inference_id": served["inference_id"],
        "endpoint": "churn",
        "variant": "champion",
        "outcome": "label",
        "values": [0.0],
    }


def test_feedback_on_a_prediction_the_store_could_not_record_is_404_saying_so(
    feedback: Feedback, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        DynamoDBFault("put_item", "ThrottlingException", 400).install(patch)
        served = serve_through_router(boto3.client("dynamodb", config=STORE_CONFIG), FakeRuntime(label=0))
    assert (served["prediction"], served["recorded"]) == ({"predictions": [0]}, False)
    response = feedback.post({"inference_id": served["inference_id"], "converted": True})
    assert response["statusCode"] == 404
    assert "could not be saved when it was served" in body_of(response)["message"]
    assert feedback.dynamodb.scan(TableName=TABLE)["Items"] == []


def test_feedback_from_another_principal_is_403_and_records_nothing(feedback: Feedback) -> None:
    """The id alone (seen in a log, guessed) is not enough: the caller must be the one it was served to."""
    inference_id = feedback.stored()
    other = iam_context(role_id="AROAOTHERROLEID000002", session="client-1")
    response = feedback.post({"inference_id": inference_id, "converted": True}, caller=other)
    assert response["statusCode"] == 403
    assert body_of(response) == {
        "error": "forbidden",
        "message": f"inference {inference_id} was served to another caller; only that caller can report its "
        "outcome",
    }
    assert "outcome" not in feedback.item(inference_id)
    # The principal it was served to, in another session of its role, is who may report it; once.
    same_role = iam_context(session="client-2")
    assert (
        feedback.post({"inference_id": inference_id, "converted": True}, caller=same_role)["statusCode"]
        == 200
    )
    replay = feedback.post({"inference_id": inference_id, "converted": False})
    assert replay["statusCode"] == 409


def test_feedback_without_an_iam_identity_is_403(feedback: Feedback) -> None:
    inference_id = feedback.stored()
    response = feedback.post({"inference_id": inference_id, "converted": True}, signed=False)
    assert response["statusCode"] == 403
    assert "IAM" in body_of(response)["message"]
    assert "outcome" not in feedback.item(inference_id)


def test_a_fabricated_or_tampered_id_is_refused(feedback: Feedback) -> None:
    fabricated = str(uuid.uuid4())
    assert feedback.post({"inference_id": fabricated, "converted": True})["statusCode"] == 404
    tampered = feedback.stored()[:-1] + "'"
    response = feedback.post({"inference_id": tampered, "converted": True})
    assert (response["statusCode"], body_of(response)["problems"][0]["field"]) == (400, "inference_id")


def test_a_second_outcome_is_409_and_the_first_stays(feedback: Feedback) -> None:
    inference_id = feedback.stored()
    assert feedback.post({"inference_id": inference_id, "converted": True})["statusCode"] == 200
    response = feedback.post({"inference_id": inference_id, "converted": False})
    assert response["statusCode"] == 409
    assert body_of(response) == {
        "error": "conflict",
        "message": f"an outcome for inference {inference_id} was already recorded",
    }
    assert feedback.item(inference_id)["outcome_values"] == {"L": [{"N": "1.0"}]}


def test_an_outcome_recorded_between_read_and_write_is_409(feedback: Feedback) -> None:
    """The conditional write is what guarantees once: a racing writer that won is reported."""
    inference_id = feedback.stored()
    record = feedback.store.load(inference_id, now=int(time.time()))
    assert record.variant == "challenger"
    assert feedback.post({"inference_id": inference_id, "converted": True})["statusCode"] == 200
    with pytest.raises(OutcomeAlreadyRecorded):
        feedback.store.record_outcome(inference_id, Outcome("conversion", (0.0,)), now=int(time.time()))


def test_unknown_inference_id_is_404(feedback: Feedback) -> None:
    unknown = str(uuid.uuid4())
    response = feedback.post({"inference_id": unknown, "converted": True})
    assert response["statusCode"] == 404
    assert body_of(response)["message"] == (
        f"no inference {unknown} is recorded: an unknown id, one expired and deleted, or one whose record "
        "could not be saved when it was served (its prediction answered recorded: false)"
    )


def test_expired_inference_not_yet_deleted_is_404(feedback: Feedback) -> None:
    # DynamoDB removes expired items lazily; the handler must not count them meanwhile.
    inference_id = feedback.stored(expires_in=-1)
    response = feedback.post({"inference_id": inference_id, "converted": True})
    assert response["statusCode"] == 404
    assert "has expired" in body_of(response)["message"]
    assert "outcome" not in feedback.item(inference_id)


@pytest.mark.parametrize(
    ("body", "raw", "named"),
    [
        ("{oops", True, "not valid JSON"),
        ('"just a string"', True, "must be a JSON object"),
        ({"label": 1}, False, "inference_id"),
        ({"inference_id": "not-a-uuid", "label": 1}, False, "inference_id"),
        ({"inference_id": "{id}"}, False, "exactly one of 'label' or 'converted'"),
        ({"inference_id": "{id}", "label": 1, "converted": True}, False, "exactly one of"),
        ({"inference_id": "{id}", "converted": "yes"}, False, "converted"),
        ({"inference_id": "{id}", "label": {"class": 1}}, False, "label"),
        ({"inference_id": "{id}", "label": [1, 1]}, False, "has 1 record(s), got 2 label(s)"),
        ({"inference_id": "{id}", "converted": True, "extra": 1}, False, "extra: unknown field"),
    ],
)
def test_bad_feedback_is_400_naming_the_problem_and_records_nothing(
    feedback: Feedback, body: Any, raw: bool, named: str
) -> None:
    inference_id = feedback.stored()
    if isinstance(body, dict) and body.get("inference_id") == "{id}":
        body = {**body, "inference_id": inference_id}
    response = feedback.post(body, raw=raw)
    assert response["statusCode"] == 400
    assert body_of(response)["error"] == "bad_request"
    assert named in body_of(response)["message"]
    assert "outcome" not in feedback.item(inference_id)


def test_a_label_for_an_inference_without_predicted_labels_is_400(feedback: Feedback) -> None:
    inference_id = feedback.stored(labels=None)
    response = feedback.post({"inference_id": inference_id, "label": 1})
    assert response["statusCode"] == 400
    assert "send 'converted'" in body_of(response)["message"]


def test_the_recorder_built_from_its_environment_records_in_moto(feedback: Feedback) -> None:
    inference_id = feedback.stored()
    feedback.handler.use(None)
    assert feedback.post({"inference_id": inference_id, "converted": True})["statusCode"] == 200
    assert feedback.item(inference_id)["outcome"] == {"S": "conversion"}
