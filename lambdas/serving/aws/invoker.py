"""InvokeEndpoint with the inference container's JSON contract, and its faults as HTTP statuses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from lambdas.serving.ports import Invocation, InvocationFailed

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sagemaker_runtime.type_defs import InvokeEndpointInputTypeDef

# Capacity or readiness: the caller may retry later.
RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "ModelNotReadyException", "InternalDependencyException"}
)


class SageMakerInvoker:
    def __init__(self, client: SageMakerRuntimeClient) -> None:
        self._client = client

    def invoke(
        self, *, endpoint_name: str, instances: Sequence[Any], target_variant: str | None, inference_id: str
    ) -> Invocation:
        request: InvokeEndpointInputTypeDef = {
            "EndpointName": endpoint_name,
            "Body": json.dumps({"instances": list(instances)}).encode(),
            "ContentType": "application/json",
            "Accept": "application/json",
            # Ties the endpoint's data capture to the inference id the caller sends feedback for.
            "InferenceId": inference_id,
        }
        if target_variant is not None:
            request["TargetVariant"] = target_variant
        try:
            response = self._client.invoke_endpoint(**request)
            payload = response["Body"].read()
        except ClientError as error:
            raise _client_failure(endpoint_name, error) from error
        except ReadTimeoutError as error:
            raise InvocationFailed(f"endpoint {endpoint_name} timed out", status=504) from error
        except BotoCoreError as error:
            raise InvocationFailed(f"endpoint {endpoint_name} unreachable: {error}", status=502) from error
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InvocationFailed(f"endpoint {endpoint_name} answered non-JSON", status=502) from error
        variant = response.get("InvokedProductionVariant") or target_variant or "unknown"
        return Invocation(variant=variant, body=body)


def _client_failure(endpoint_name: str, error: ClientError) -> InvocationFailed:
    details: Any = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = str(details.get("Message", error))
    if code == "ModelError":
        # The container's own status: its 4XX means the caller's features were wrong (the inference
        # container answers 422 naming the record and feature); its 503 means the model is not loaded yet.
        original = _int(error.response.get("OriginalStatusCode"))
        model_message = str(error.response.get("OriginalMessage") or message)
        if original is not None and 400 <= original < 500:
            return InvocationFailed(f"model rejected the request: {model_message}", status=400)
        status = 503 if original == 503 else 502
        return InvocationFailed(f"model failed ({original}): {model_message}", status=status)
    if code in RETRYABLE_CODES:
        return InvocationFailed(f"endpoint {endpoint_name} busy, retry later: {message}", status=503)
    return InvocationFailed(f"endpoint {endpoint_name} failed ({code or 'error'}): {message}", status=502)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
