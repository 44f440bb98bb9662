"""The prediction and feedback services over in-memory ports: what they store, and what they refuse."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.flags import EndpointVariants, FlagSet
from lambdas.serving.feedback import FeedbackRecorder, FeedbackRequest
from lambdas.serving.inference import PredictionRequest, Predictor
from lambdas.serving.ports import (
    FeedbackRejected,
    Forbidden,
    InferenceRecord,
    Invocation,
    Outcome,
    TrafficSplit,
    UnknownEndpoint,
)
from lambdas.serving.settings import EndpointSettings

CHURN = EndpointSettings.model_validate(
    {
        "endpoint_name": "mlrollout-dev-churn",
        "champion": "champion",
        "challenger": "challenger",
        "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
    }
)
INFERENCE_ID = "5b0c1c5e-4a8e-4f6b-9a53-6a2bb0f1c0de"
CALLER = "123456789012:AROAEXAMPLEROLEID0001"


@dataclass
class Ports:
    flag_reads: int = 0
    invocations: list[dict[str, Any]] = field(default_factory=list)
    saved: list[InferenceRecord] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def flags(self) -> FlagSet:
        self.flag_reads += 1
        return FlagSet.initial(
            [EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")]
        )

    def traffic(self, endpoint_name: str) -> TrafficSplit:
        return TrafficSplit({"champion": 1.0, "challenger": 0.0}, "churn-config")

    def invoke(
        self, *, endpoint_name: str, instances: Sequence[Any], target_variant: str | None, inference_id: str
    ) -> Invocation:
        self.invocations.append({"endpoint_name": endpoint_name, "target": target_variant})
        return Invocation(
            variant=target_variant or "champion", body={"predictions": ["stay"] * len(instances)}
        )

    def save(self, record: InferenceRecord) -> None:
        self.saved.append(record)

    def load(self, inference_id: str, *, now: int) -> InferenceRecord:
        return self.saved[-1]

    def record_outcome(self, inference_id: str, outcome: Outcome, *, now: int) -> None:
        self.outcomes.append(outcome)


def predictor(ports: Ports) -> Predictor:
    return Predictor(
        endpoints={"churn": CHURN},
        flags=ports,
        weights=ports,
        invoker=ports,
        store=ports,
        ttl_days=30,
        clock=lambda: 1_000.0,
        new_id=lambda: INFERENCE_ID,
    )


def test_a_prediction_is_stored_with_its_variant_labels_and_expiry() -> None:
    ports = Ports()
    result = predictor(ports).predict(
        "churn", PredictionRequest(features=[{"a": 1}, {"a": 2}], user_id="u-1"), caller=CALLER
    )
    assert result.response.variant == "champion"
    assert ports.saved == [
        InferenceRecord(
            inference_id=INFERENCE_ID,
            endpoint="churn",
            endpoint_name="mlrollout-dev-churn",
            variant="champion",
            records=2,
            predicted_labels=("stay", "stay"),
            created_at=1_000,
            expires_at=1_000 + 30 * 86_400,
            caller=CALLER,
        )
    ]


def test_an_unknown_endpoint_is_refused_before_any_call() -> None:
    ports = Ports()
    with pytest.raises(UnknownEndpoint, match="unknown endpoint 'fraud'"):
        predictor(ports).predict("fraud", PredictionRequest(features={"a": 1}), caller=CALLER)
    assert (ports.flag_reads, ports.invocations, ports.saved) == (0, [], [])


def test_feedback_for_an_endpoint_no_longer_served_records_nothing() -> None:
    ports = Ports()
    predictor(ports).predict("churn", PredictionRequest(features={"a": 1}), caller=CALLER)
    recorder = FeedbackRecorder(endpoints={"other": CHURN}, store=ports)
    with pytest.raises(FeedbackRejected, match="unknown endpoint 'churn'"):
        recorder.record(FeedbackRequest(inference_id=INFERENCE_ID, converted=True), caller=CALLER)
    assert ports.outcomes == []


def test_feedback_scores_the_label_against_the_stored_prediction() -> None:
    ports = Ports()
    predictor(ports).predict("churn", PredictionRequest(features={"a": 1}), caller=CALLER)
    result = FeedbackRecorder(endpoints={"churn": CHURN}, store=ports).record(
        FeedbackRequest(inference_id=INFERENCE_ID, label="churn"), caller=CALLER
    )
    assert ports.outcomes == [Outcome(kind="label", values=(0.0,))]
    assert (result.endpoint_name, result.business_metric.name) == ("mlrollout-dev-churn", "ConversionRate")


def test_feedback_from_another_principal_is_forbidden_and_records_nothing() -> None:
    ports = Ports()
    predictor(ports).predict("churn", PredictionRequest(features={"a": 1}), caller=CALLER)
    recorder = FeedbackRecorder(endpoints={"churn": CHURN}, store=ports)
    with pytest.raises(Forbidden, match="served to another caller"):
        recorder.record(
            FeedbackRequest(inference_id=INFERENCE_ID, converted=True), caller="123456789012:AIDAOTHERUSER"
        )
    assert ports.outcomes == []


def test_feedback_for_an_inference_stored_without_its_caller_is_forbidden() -> None:
    ports = Ports()
    predictor(ports).predict("churn", PredictionRequest(features={"a": 1}), caller="")
    recorder = FeedbackRecorder(endpoints={"churn": CHURN}, store=ports)
    with pytest.raises(Forbidden, match="stored before feedback was bound to its caller"):
        recorder.record(FeedbackRequest(inference_id=INFERENCE_ID, converted=True), caller="")
    assert ports.outcomes == []
