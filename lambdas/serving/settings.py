"""The serving Lambdas' environment, read once into pydantic models.

``ENDPOINTS`` is a JSON object keyed by logical endpoint name (the ``{endpoint}`` path parameter)::

    {"churn": {"endpoint_name": "mlrollout-dev-churn", "champion": "champion",
               "challenger": "challenger",
               "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"}}}

``challenger`` is null when the endpoint's second slot is a shadow variant (it cannot be targeted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.flags import EndpointVariants, Name


class SettingsError(ValueError):
    """The function's environment is incomplete or malformed: a deployment fault, not a request fault."""


class BusinessMetricName(BaseModel):
    # Extra keys are ignored so the CDK side may pass the whole config model (statistic, threshold...).
    model_config = ConfigDict(extra="ignore", frozen=True)

    namespace: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)


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
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        return cls.model_validate(_read(environ, cls._env_fields()))

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


def _read(environ: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, Any]:
    """Collect the set variables (unset ones take the model's default); ENDPOINTS is JSON."""
    raw: dict[str, Any] = {field: environ[var] for field, var in fields.items() if var in environ}
    if "endpoints" in raw:
        try:
            raw["endpoints"] = json.loads(raw["endpoints"])
        except json.JSONDecodeError as error:
            raise SettingsError(f"ENDPOINTS is not valid JSON: {error}") from None
    return raw


def load_settings(model: type[SettingsT], environ: Mapping[str, str]) -> SettingsT:
    """Validate the environment, naming the variable of each problem."""
    names = model._env_fields()
    try:
        return model.from_env(environ)
    except ValidationError as error:
        problems = "; ".join(
            f"{names.get(str(problem['loc'][0]), problem['loc'][0]) if problem['loc'] else 'environment'}"
            f"{''.join(f'.{part}' for part in problem['loc'][1:])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise SettingsError(f"invalid environment: {problems}") from None
