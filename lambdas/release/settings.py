"""The release functions' environment (the next environment's side of the chain), read once.

Each endpoint's package group comes from the endpoint settings store (``ENDPOINT_SETTINGS_PATH``, or an
inline ``ENDPOINTS`` JSON object in a test), like the rollout's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WrapValidator

from lambdas.flags import Name
from lambdas.shared.endpoint_store import (
    ENDPOINT_SETTINGS_PATH_VARIABLE,
    endpoints_from_environment,
    endpoints_variable,
    keep_catalog,
)
from lambdas.shared.settings import read_environment, validate_settings

__all__ = ["ReleaseEndpoint", "ReleaseSettings", "load_release_settings"]

ENV_VARIABLES = {
    "endpoints": ENDPOINT_SETTINGS_PATH_VARIABLE,
    "environment": "ENVIRONMENT_NAME",
    "source_environment": "RELEASE_FROM",
    "artifact_bucket": "ARTIFACT_BUCKET",
    "topic_arn": "TOPIC_ARN",
    "region": "AWS_REGION",
}


class ReleaseEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_package_group: str = Field(min_length=1, max_length=63)


class ReleaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: Annotated[Mapping[Name, ReleaseEndpoint], WrapValidator(keep_catalog)]
    environment: str = Field(min_length=1, description="this environment, which takes the packages")
    source_environment: str = Field(min_length=1, description="the one environment that offers them")
    artifact_bucket: str = Field(min_length=3, max_length=63, description="where released artifacts go")
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:.+$")
    region: str = Field(default="us-east-1", min_length=1)


def load_release_settings(environ: Mapping[str, str]) -> ReleaseSettings:
    """Validate the environment, naming the variable of each problem."""
    raw = read_environment(environ, {k: v for k, v in ENV_VARIABLES.items() if k != "endpoints"})
    raw |= endpoints_from_environment(environ, ReleaseEndpoint)
    return validate_settings(ReleaseSettings, raw, ENV_VARIABLES | {"endpoints": endpoints_variable(environ)})
