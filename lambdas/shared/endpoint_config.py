"""The config a SageMaker endpoint runs now, as the rollout and the drift monitor both read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "CARRIED_CONFIG_FIELDS",
    "DescribesEndpointConfigs",
    "LiveConfig",
    "UnexpectedEndpointShape",
    "read_live_config",
]

# Carried from the live config into every config the rollout creates.
CARRIED_CONFIG_FIELDS = ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig")


class DescribesEndpointConfigs(Protocol):
    """DescribeEndpoint and DescribeEndpointConfig (boto3's `sagemaker` client has them)."""

    def describe_endpoint(self, *, EndpointName: str) -> Mapping[str, Any]: ...
    def describe_endpoint_config(self, *, EndpointConfigName: str) -> Mapping[str, Any]: ...


class UnexpectedEndpointShape(Exception):
    """The live endpoint config lacks the champion variant the rollout builds on."""


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The config the endpoint runs now: its variants and the settings every new config keeps."""

    name: str
    production_variants: tuple[Mapping[str, Any], ...]
    shadow_variants: tuple[Mapping[str, Any], ...]
    carried: Mapping[str, Any]
    instance_counts: Mapping[str, int] = field(default_factory=dict)
    """Variant -> the instances it runs now (autoscaling's desired count), which may differ from the
    config's InitialInstanceCount: a new config keeps them rather than scaling back to the initial."""

    def instance_count(self, name: str) -> int | None:
        return self.instance_counts.get(name)

    def variant(self, name: str) -> Mapping[str, Any]:
        for variant in (*self.production_variants, *self.shadow_variants):
            if variant["VariantName"] == name:
                return variant
        known = [v["VariantName"] for v in (*self.production_variants, *self.shadow_variants)]
        raise UnexpectedEndpointShape(f"endpoint config {self.name} has no variant {name!r} (it has {known})")


def read_live_config(client: DescribesEndpointConfigs, endpoint_name: str) -> LiveConfig:
    """DescribeEndpoint for the running config, then DescribeEndpointConfig for its contents."""
    described = client.describe_endpoint(EndpointName=endpoint_name)
    config_name = str(described["EndpointConfigName"])
    config = client.describe_endpoint_config(EndpointConfigName=config_name)
    counts: dict[str, int] = {}
    for variant in described.get("ProductionVariants") or ():
        count = variant.get("DesiredInstanceCount") or variant.get("CurrentInstanceCount")
        if count:
            counts[str(variant["VariantName"])] = int(count)
    return LiveConfig(
        name=config_name,
        production_variants=tuple(config.get("ProductionVariants") or ()),
        shadow_variants=tuple(config.get("ShadowProductionVariants") or ()),
        carried={key: config[key] for key in CARRIED_CONFIG_FIELDS if config.get(key)},
        instance_counts=counts,
    )
