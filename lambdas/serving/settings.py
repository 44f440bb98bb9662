"""The serving Lambdas' environment, read once into pydantic models.

``ENDPOINTS`` is a JSON object keyed by logical endpoint name (the ``{endpoint}`` path parameter)::

    {"churn": {"endpoint_name": "mlrollout-dev-churn", "champion": "champion",
               "challenger": "challenger",
               "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"}}}

``challenger`` is null when the endpoint's second slot is a shadow variant (it cannot be targeted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from lambdas.flags import EndpointVariants, Name
from lambdas.shared.business_metric import BusinessMetricName
from lambdas.shared.settings import SettingsError, load_environment

__all__ = [
    "CatalogSettings",
    "EndpointSettings",
    "FeedbackSettings",
    "RouterSettings",
    "SettingsError",
    "load_settings",
]


class EndpointSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str = Field(min_length=1, max_length=63, description="the physical SageMaker name")
    champion: Name
    challenger: Name | None = None
    business_metric: BusinessMetricName


class CatalogSettings(BaseModel):
    """What every serving function knows: its endpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: dict[Name, EndpointSettings] = Field(min_length=1)

    def catalog(self) -> tuple[EndpointVariants, ...]:
        """The endpoints as the flag model sees them (its flag keys and pinnable variants)."""
        return tuple(
            EndpointVariants(endpoint=name, champion=endpoint.champion, challenger=endpoint.challenger)
            for name, endpoint in self.endpoints.items()
        )

    @classmethod
    def _env_fields(cls) -> dict[str, str]:
        return {"endpoints": "ENDPOINTS"}


class RouterSettings(CatalogSettings):
    appconfig_application: str = Field(min_length=1)
    appconfig_environment: str = Field(min_length=1)
    appconfig_profile: str = Field(min_length=1)
    # AppConfigData will not be polled more often than every 15 s.
    flags_ttl_seconds: int = Field(default=30, ge=15, le=3600)
    weights_ttl_seconds: int = Field(default=30, ge=0, le=3600)
    inference_table: str = Field(min_length=3, max_length=255)
    inference_ttl_days: int = Field(default=30, ge=1, le=3650)

    @classmethod
    def _env_fields(cls) -> dict[str, str]:
        return super()._env_fields() | {
            "appconfig_application": "APPCONFIG_APPLICATION",
            "appconfig_environment": "APPCONFIG_ENVIRONMENT",
            "appconfig_profile": "APPCONFIG_PROFILE",
            "flags_ttl_seconds": "FLAGS_TTL_SECONDS",
            "weights_ttl_seconds": "WEIGHTS_TTL_SECONDS",
            "inference_table": "INFERENCE_TABLE",
            "inference_ttl_days": "INFERENCE_TTL_DAYS",
        }


class FeedbackSettings(CatalogSettings):
    inference_table: str = Field(min_length=3, max_length=255)

    @classmethod
    def _env_fields(cls) -> dict[str, str]:
        return super()._env_fields() | {"inference_table": "INFERENCE_TABLE"}


SettingsT = TypeVar("SettingsT", bound=CatalogSettings)


def load_settings(model: type[SettingsT], environ: Mapping[str, str]) -> SettingsT:
    """Validate the environment, naming the variable of each problem; ENDPOINTS is JSON."""
    return load_environment(model, environ, model._env_fields(), json_fields=("endpoints",))
