"""The serving request models, label scoring, HTTP parsing and the environment settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.serving.feedback import FeedbackRequest, same_label
from lambdas.serving.http import BadRequest, error_response, parse_body, status_of
from lambdas.serving.inference import PredictionRequest, predicted_labels
from lambdas.serving.ports import InvocationFailed, OutcomeAlreadyRecorded, StoreUnavailable, UnknownEndpoint
from lambdas.serving.settings import (
    FeedbackSettings,
    RouterSettings,
    SettingsError,
    load_settings,
)

ENDPOINTS = {
    "churn": {
        "endpoint_name": "mlrollout-dev-churn",
        "champion": "champion",
        "challenger": None,
        "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate", "threshold": 0.05},
    }
}


@pytest.mark.parametrize(
    ("features", "instances"),
    [
        ({"a": 1}, [{"a": 1}]),
        ([1, 2.5, "x"], [[1, 2.5, "x"]]),
        ([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 2}]),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]]),
    ],
)
def test_features_become_the_containers_instances(features: Any, instances: list[Any]) -> None:
    assert PredictionRequest(features=features).instances() == instances


@pytest.mark.parametrize("features", [{}, [], [{}], {"a": {"b": 1}}, {"a": float("nan")}, [[1], [[2]]]])
def test_features_that_are_not_records_are_rejected(features: Any) -> None:
    with pytest.raises(ValidationError):
        PredictionRequest(features=features)


@pytest.mark.parametrize(
    ("body", "records", "labels"),
    [
        ({"predictions": [1, 0]}, 2, (1, 0)),
        ({"predictions": [{"label": "churn", "score": 0.8}]}, 1, ("churn",)),
        ([0.7], 1, (0.7,)),
        ("yes", 1, ("yes",)),
        ({"predictions": [1]}, 2, None),
        ({"predictions": [{"score": 0.8}]}, 1, None),
        ({"scores": [0.1]}, 1, None),
    ],
)
def test_predicted_labels_are_read_only_when_there_is_one_per_record(
    body: Any, records: int, labels: tuple[Any, ...] | None
) -> None:
    assert predicted_labels(body, records) == labels


@pytest.mark.parametrize(
    ("truth", "predicted", "same"),
    [(1, 1.0, True), (1, 0, False), ("a", "a", True), ("1", 1, False), (True, 1, False), (True, True, True)],
)
def test_labels_compare_numbers_by_value_and_nothing_across_kinds(
    truth: Any, predicted: Any, same: bool
) -> None:
    assert same_label(truth, predicted) is same


def test_feedback_needs_exactly_one_outcome() -> None:
    inference_id = "5b0c1c5e-4a8e-4f6b-9a53-6a2bb0f1c0de"
    assert FeedbackRequest(inference_id=inference_id, converted=True).kind == "conversion"
    assert FeedbackRequest(inference_id=inference_id, label=[1, 0]).kind == "label"
    with pytest.raises(ValidationError, match="exactly one"):
        FeedbackRequest(inference_id=inference_id)


def test_parse_body_names_every_field_problem() -> None:
    event = {"body": json.dumps({"features": "x", "user_id": 7})}
    with pytest.raises(BadRequest) as raised:
        parse_body(event, PredictionRequest)
    either = "Input should be a valid dictionary or Input should be a valid list"
    assert raised.value.problems == [
        {"field": "features", "message": either},
        {"field": "user_id", "message": "Input should be a valid string"},
    ]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UnknownEndpoint("x"), 404),
        (OutcomeAlreadyRecorded("x"), 409),
        (StoreUnavailable("x"), 503),
        (InvocationFailed("x", status=504), 504),
        (BadRequest("x"), 400),
    ],
)
def test_faults_map_to_statuses(error: Any, status: int) -> None:
    assert status_of(error) == status
    assert error_response(error)["statusCode"] == status


def test_router_settings_read_the_environment_with_defaults() -> None:
    settings = load_settings(
        RouterSettings,
        {
            "ENDPOINTS": json.dumps(ENDPOINTS),
            "APPCONFIG_APPLICATION": "mlrollout-dev",
            "APPCONFIG_ENVIRONMENT": "dev",
            "APPCONFIG_PROFILE": "flags",
            "INFERENCE_TABLE": "mlrollout-dev-inferences",
        },
    )
    # The flags at AppConfigData's minimum poll interval: a kill switch reaches every router within 15 s.
    assert (settings.flags_ttl_seconds, settings.weights_ttl_seconds, settings.inference_ttl_days) == (
        15,
        30,
        30,
    )
    (variants,) = settings.catalog()
    assert (variants.endpoint, variants.pinnable) == ("churn", ("champion",))


def test_settings_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="INFERENCE_TABLE: Field required"):
        load_settings(FeedbackSettings, {"ENDPOINTS": json.dumps(ENDPOINTS)})
    with pytest.raises(SettingsError, match="ENDPOINTS is not valid JSON"):
        load_settings(FeedbackSettings, {"ENDPOINTS": "{", "INFERENCE_TABLE": "table"})
    with pytest.raises(SettingsError, match=r"ENDPOINTS\.churn\.endpoint_name"):
        bad = {"churn": {**ENDPOINTS["churn"], "endpoint_name": ""}}
        load_settings(FeedbackSettings, {"ENDPOINTS": json.dumps(bad), "INFERENCE_TABLE": "table"})
