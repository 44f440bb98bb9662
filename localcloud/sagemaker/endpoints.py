"""What an endpoint runs, read from moto: its variants, their weights, data capture and shadow variants."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, sagemaker_backends

from localcloud.sagemaker import blue_green
from localcloud.sagemaker.exceptions import SageMakerValidationError

PARTITION = "aws"
DEFAULT_VARIANT_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class Variant:
    """A variant as the endpoint runs it now: its weight, model and instances."""

    name: str
    weight: float
    model_name: str
    instance_count: int


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """The endpoint config's DataCaptureConfig, as this emulation applies it."""

    destination: str
    sampling_percentage: float
    capture_input: bool
    capture_output: bool
    json_types: frozenset[str]
    csv_types: frozenset[str]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CaptureSettings | None:
        if not config or not config.get("EnableCapture", True):
            return None
        modes = {str(option.get("CaptureMode")) for option in config.get("CaptureOptions") or ()}
        headers = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=str(config["DestinationS3Uri"]),
            sampling_percentage=float(config.get("InitialSamplingPercentage", 0)),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            json_types=frozenset(t.lower() for t in headers.get("JsonContentTypes") or ()),
            csv_types=frozenset(t.lower() for t in headers.get("CsvContentTypes") or ()),
        )

    def encoded(self, payload: bytes, content_type: str) -> tuple[str, str]:
        """(data, encoding): text for the listed JSON and CSV types, else base64."""
        mime = content_type.split(";", 1)[0].strip().lower()
        for types, encoding in ((self.json_types, "JSON"), (self.csv_types, "CSV")):
            if mime in types:
                try:
                    return payload.decode("utf-8"), encoding
                except UnicodeDecodeError:
                    break  # not text after all: base64 keeps it intact
        return base64.b64encode(payload).decode("ascii"), "BASE64"


@dataclass(frozen=True, slots=True)
class EndpointView:
    """The endpoint's current state, read from moto's SageMaker backend for one request."""

    name: str
    account_id: str
    region: str
    config_name: str
    variants: tuple[Variant, ...]
    shadows: tuple[Variant, ...]
    capture: CaptureSettings | None
    # A blue/green deployment in progress: the new config's variants and their share of the traffic.
    green: tuple[Variant, ...] = ()
    green_percent: float = 0.0

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def read_endpoint(account_id: str, region: str, name: str) -> EndpointView:
    backend = sagemaker_backends[account_id][region]
    endpoint: FakeEndpoint | None = backend.endpoints.get(name)
    if endpoint is None:
        raise SageMakerValidationError(f"Endpoint {name} of account {account_id} not found.")
    fleet = blue_green.green_fleet(account_id, region, name)
    if endpoint.endpoint_status != "InService" and fleet is None:
        raise SageMakerValidationError(
            f"Endpoint {name} of account {account_id} is {endpoint.endpoint_status}, not InService: "
            "it cannot be invoked."
        )
    config: FakeEndpointConfig | None = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    if config is None:
        raise SageMakerValidationError(
            f"Endpoint {name} runs endpoint config {endpoint.endpoint_config_name}, which moto no longer "
            "has: the local runtime reads each variant's model from it."
        )
    configured = {str(v["VariantName"]): v for v in config.production_variants}
    variants = []
    for running in endpoint.production_variants:
        variant_name = str(running["VariantName"])
        declared = configured.get(variant_name)
        if declared is None:
            raise SageMakerValidationError(
                f"Endpoint {name} runs variant {variant_name}, which its config "
                f"{config.endpoint_config_name} does not declare."
            )
        variants.append(_variant(running, declared))
    shadows = tuple(_variant({}, declared) for declared in shadow_variants_of(config))
    green = (
        ()
        if fleet is None
        else tuple(_variant({}, declared) for declared in fleet.config.production_variants)
    )
    return EndpointView(
        name=name,
        account_id=account_id,
        region=region,
        config_name=config.endpoint_config_name,
        variants=tuple(variants),
        shadows=shadows,
        capture=CaptureSettings.from_config(config.data_capture_config),
        green=green,
        green_percent=0.0 if fleet is None else fleet.percent,
    )


def _variant(running: Mapping[str, Any], declared: Mapping[str, Any]) -> Variant:
    # moto records no weight for an InitialVariantWeight of 0 and None after an update without one.
    weight = running.get("CurrentWeight")
    if weight is None:
        weight = declared.get("InitialVariantWeight", DEFAULT_VARIANT_WEIGHT)
    instances = running.get("CurrentInstanceCount") or declared.get("InitialInstanceCount") or 1
    return Variant(
        name=str(declared["VariantName"]),
        weight=float(weight),
        model_name=str(declared["ModelName"]),
        instance_count=int(instances),
    )


def shadow_variants_of(config: FakeEndpointConfig) -> list[dict[str, Any]]:
    """The shadow variants recorded on moto's config while `serve_endpoints` was open."""
    shadows: list[dict[str, Any]] = getattr(config, "shadow_production_variants", None) or []
    return shadows
