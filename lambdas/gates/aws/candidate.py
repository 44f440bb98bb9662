"""The golden inputs sent to the deployed candidate: InvokeEndpoint with TargetVariant, one case a request.

The rollout asks the candidate's variant while it has weight 0, so no user is routed to it; TargetVariant
overrides the weights. One request per case, so a record the model refuses names its case and the other
cases are still answered. The body is the inference API's (``{"instances": [record]}``), the answer the
inference container's (``{"predictions": [label], "probabilities": [[...]]}``, containers/inference).

A model error (SageMaker's ``ModelError``: the container answered 4xx/5xx or not at all) or an answer that
is not a prediction is the model's fault: the case is ``Unanswered`` with what came back, and the gate
fails it. Anything else (no such endpoint or variant, access denied, throttling) is the rollout's: it
raises, and the state machine retries or rolls back.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lambdas.gates import CandidateAnswer, GoldenSet, Prediction, Unanswered

__all__ = ["ERROR_TEXT_MAX", "InvokesEndpoints", "ask_candidate"]

JSON_TYPE = "application/json"
ERROR_TEXT_MAX = 500
"""What an unanswered case keeps of the endpoint's message: enough to say why, bounded in the ledger."""
MODEL_ERRORS = frozenset({"ModelError", "ModelNotReadyException"})


class InvokesEndpoints(Protocol):
    """SageMaker Runtime's InvokeEndpoint (boto3's `sagemaker-runtime` client has it)."""

    def invoke_endpoint(self, **request: Any) -> Any: ...


def ask_candidate(
    runtime: InvokesEndpoints, *, endpoint_name: str, variant: str, golden: GoldenSet
) -> dict[str, CandidateAnswer]:
    """Each golden case's answer from ``variant`` of ``endpoint_name``, keyed by case id."""
    return {case.case_id: _ask(runtime, endpoint_name, variant, case.record) for case in golden.cases}


def _ask(runtime: InvokesEndpoints, endpoint_name: str, variant: str, record: Any) -> CandidateAnswer:
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name,
            TargetVariant=variant,
            ContentType=JSON_TYPE,
            Accept=JSON_TYPE,
            Body=json.dumps({"instances": [record]}).encode(),
        )
    except ClientError as error:
        detail = error.response.get("Error", {})
        if detail.get("Code") not in MODEL_ERRORS:
            raise
        return Unanswered(error=_bounded(f"{detail.get('Code')}: {detail.get('Message', '')}"))
    body = response["Body"].read()
    return _prediction(body)


def _prediction(body: bytes) -> CandidateAnswer:
    try:
        answer = json.loads(body)
        [label] = answer["predictions"]
        probabilities = answer.get("probabilities")
        return Prediction(label=label, probabilities=probabilities[0] if probabilities else None)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        return Unanswered(error=_bounded(f"the answer is not one prediction ({error}): {body[:200]!r}"))


def _bounded(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 3] + "..."
