"""The endpoint's current production-variant weights (DescribeEndpoint), cached for a TTL."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.serving.ports import WeightsUnavailable


class DescribesEndpoints(Protocol):
    """The one SageMaker control-plane call the router makes (boto3's `sagemaker` client has it)."""

    def describe_endpoint(self, *, EndpointName: str) -> Mapping[str, Any]: ...


class EndpointWeightSource:
    def __init__(
        self,
        *,
        client: DescribesEndpoints,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Mapping[str, float]]] = {}

    def weights(self, endpoint_name: str) -> Mapping[str, float]:
        now = self._clock()
        cached = self._cache.get(endpoint_name)
        if cached is not None and now - cached[0] < self._ttl_seconds:
            return cached[1]
        try:
            description = self._client.describe_endpoint(EndpointName=endpoint_name)
        except (BotoCoreError, ClientError) as error:
            raise WeightsUnavailable(f"DescribeEndpoint {endpoint_name}: {error}") from error
        weights = current_weights(description)
        self._cache[endpoint_name] = (now, weights)
        return weights


def current_weights(description: Mapping[str, Any]) -> dict[str, float]:
    """Weight per production variant: the current weight, or the desired one while it is not reported."""
    weights: dict[str, float] = {}
    for variant in description.get("ProductionVariants", []):
        weight = variant.get("CurrentWeight", variant.get("DesiredWeight"))
        if weight is not None:
            weights[str(variant["VariantName"])] = float(weight)
    return weights
