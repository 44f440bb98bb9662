"""The endpoint's current variant weights and running config (DescribeEndpoint), cached for a TTL."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.serving.ports import TrafficSplit, WeightsUnavailable

# After a failed read, requests go untargeted at once for this long instead of each calling again.
RETRY_AFTER_FAILURE_SECONDS = 5.0


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
        retry_after_seconds: float = RETRY_AFTER_FAILURE_SECONDS,
    ) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._retry_after_seconds = retry_after_seconds
        self._cache: dict[str, tuple[float, TrafficSplit]] = {}
        self._failures: dict[str, tuple[float, str]] = {}

    def traffic(self, endpoint_name: str) -> TrafficSplit:
        now = self._clock()
        cached = self._cache.get(endpoint_name)
        if cached is not None and now - cached[0] < self._ttl_seconds:
            return cached[1]
        failure = self._failures.get(endpoint_name)
        if failure is not None and now - failure[0] < self._retry_after_seconds:
            raise WeightsUnavailable(failure[1])
        try:
            description = self._client.describe_endpoint(EndpointName=endpoint_name)
        except (BotoCoreError, ClientError) as error:
            # Old weights are not reused: after a rollback they would keep targeting the challenger.
            self._failures[endpoint_name] = (now, f"DescribeEndpoint {endpoint_name}: {error}")
            raise WeightsUnavailable(self._failures[endpoint_name][1]) from error
        self._failures.pop(endpoint_name, None)
        traffic = TrafficSplit(
            weights=current_weights(description),
            # While an update is pending the running config still serves: its rollout is the current one.
            rollout_key=str(description.get("EndpointConfigName", "")),
        )
        self._cache[endpoint_name] = (now, traffic)
        return traffic


def current_weights(description: Mapping[str, Any]) -> dict[str, float]:
    """Weight per production variant: the current weight, or the desired one while it is not reported."""
    weights: dict[str, float] = {}
    for variant in description.get("ProductionVariants", []):
        weight = variant.get("CurrentWeight", variant.get("DesiredWeight"))
        if weight is not None:
            weights[str(variant["VariantName"])] = float(weight)
    return weights
