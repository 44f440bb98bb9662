"""The serving Lambdas' environment, read once into pydantic models.

The endpoints are read from SSM under ``ENDPOINT_SETTINGS_PATH`` (lambdas/shared/endpoint_store.py), or
from an inline ``ENDPOINTS`` JSON object keyed by logical endpoint name (the ``{endpoint}`` path
parameter)::

    {"churn": {"endpoint_name": "mlrollout-dev-churn", "champion": "champion",
               "challenger": "challenger",
               "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"}}}

``challenger`` is null when the endpoint's second slot is a shadow variant (it cannot be targeted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

from annotated_types import MinLen
from pydantic import BaseModel, ConfigDict, Field, WrapValidator

from lambdas.flags import EndpointVariants, Name
from lambdas.shared.business_metric import BusinessMetricName
from lambdas.shared.endpoint_store import (
    ENDPOINT_SETTINGS_PATH_VARIABLE,
    endpoints_from_environment,
    endpoints_variable,
    keep_catalog,
)
from lambdas.shared.settings import SettingsError, read_environment, validate_settings

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

    # The deployed functions read each endpoint from SSM (lambdas/shared/endpoint_store.py) when asked.
    endpoints: Annotated[Mapping[Name, EndpointSettings], MinLen(1), WrapValidator(keep_catalog)]

    def catalog(self) -> tuple[EndpointVariants, ...]:
        """The endpoints as the flag model sees them (its flag keys and pinnable variants)."""
        return tuple(
            EndpointVariants(endpoint=name, champion=endpoint.champion, challenger=endpoint.challenger)
            for name, endpoint in self.endpoints.items()
        )

    @classmethod
    def _env_fields(cls) -> dict[str, str]:
        return {"endpoints": ENDPOINT_SETTINGS_PATH_VARIABLE}


class RouterSettings(CatalogSettings):
    appconfig_application: str = Field(min_length=1)
    appconfig_environment: str = Field(min_length=1)
    appconfig_profile: str = Field(min_length=1)
    # AppConfigData will not be polled more often than every 15 s.
    flags_ttl_seconds: int = Field(default=15, ge=15, le=3600)
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
    """Validate the environment, naming the variable of each problem."""
    variables = model._env_fields()
    raw = read_environment(environ, {k: v for k, v in variables.items() if k != "endpoints"})
    raw |= endpoints_from_environment(environ, EndpointSettings)
    return validate_settings(model, raw, variables | {"endpoints": endpoints_variable(environ)})
