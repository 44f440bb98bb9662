"""How the golden inputs' answers are read: a prediction, a model's failure (the case unanswered), or the
rollout's own fault (raised). The real endpoint path is in tests/functional (real inference servers)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.gates import GoldenCase, GoldenSet, Prediction, Unanswered
from lambdas.gates.aws.candidate import ERROR_TEXT_MAX, ask_candidate

GOLDEN = GoldenSet(
    cases=(
        GoldenCase(case_id="a", record={"tenure_months": 3.0}, expected_label=1),
        GoldenCase(case_id="b", record=[1.0, 2.0], expected_label=0),
    )
)


class Endpoint:
    """Answers InvokeEndpoint from a list, one answer (a body or an error) per request, and keeps them."""

    def __init__(self, *answers: bytes | ClientError) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> Any:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, ClientError):
            raise answer
        return {"Body": io.BytesIO(answer)}


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "InvokeEndpoint")


def _answer(label: Any, probabilities: list[float] | None = None) -> bytes:
    body: dict[str, Any] = {"model_version": "v", "classes": [0, 1], "predictions": [label]}
    if probabilities is not None:
        body["probabilities"] = [probabilities]
    return json.dumps(body).encode()


def test_each_case_goes_to_the_target_variant_alone_and_its_answer_is_read() -> None:
    endpoint = Endpoint(_answer(1, [0.2, 0.8]), _answer(0))
    answers = ask_candidate(endpoint, endpoint_name="ep", variant="challenger", golden=GOLDEN)
    assert answers == {"a": Prediction(label=1, probabilities=(0.2, 0.8)), "b": Prediction(label=0)}
    assert [r["TargetVariant"] for r in endpoint.requests] == ["challenger", "challenger"]
    assert [json.loads(r["Body"]) for r in endpoint.requests] == [
        {"instances": [{"tenure_months": 3.0}]},
        {"instances": [[1.0, 2.0]]},
    ]


def test_a_model_error_or_an_answer_that_is_not_one_prediction_leaves_the_case_unanswered() -> None:
    refused = _error("ModelError", 'Received client error (422) from primary with message "x" ' + "y" * 900)
    endpoint = Endpoint(refused, b'{"predictions": [0, 1]}')
    answers = ask_candidate(endpoint, endpoint_name="ep", variant="challenger", golden=GOLDEN)
    first, second = answers["a"], answers["b"]
    assert isinstance(first, Unanswered) and first.error.startswith("ModelError: Received client error (422)")
    assert len(first.error) == ERROR_TEXT_MAX
    assert isinstance(second, Unanswered) and "not one prediction" in second.error


def test_a_fault_of_the_rollout_is_raised_not_blamed_on_the_model() -> None:
    endpoint = Endpoint(_error("ValidationError", 'The variant "challenger" is not present'))
    with pytest.raises(ClientError, match="is not present"):
        ask_candidate(endpoint, endpoint_name="ep", variant="challenger", golden=GOLDEN)
