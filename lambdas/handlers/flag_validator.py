"""AppConfig validator: rejects (by raising) a flag document the router could not use."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.flags import FlagError, FlagSet, values_of_document
from lambdas.serving.flag_validation import validate_document
from lambdas.serving.settings import CatalogSettings, load_settings

logger = Logger()
tracer = Tracer()


class InvalidFlagDocument(ValueError):
    """Raised to make AppConfig reject the configuration version; the message names the problem."""


class ValidatorEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    content: str = Field(min_length=1, description="the flag document, base64")
    uri: str | None = None
    applicationId: str | None = None
    configurationProfileId: str | None = None
    configurationVersion: str | None = None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = ValidatorEvent.model_validate(event)
    except ValidationError as error:
        raise InvalidFlagDocument(f"not an AppConfig validation event: {error}") from None
    version = {"version": request.configurationVersion, "profile": request.configurationProfileId}
    catalog = load_settings(CatalogSettings, os.environ).catalog()
    try:
        flags = validate_document(request.content, catalog)
    except FlagError as error:
        logger.warning("flag document rejected", extra={**version, "problem": str(error)})
        raise InvalidFlagDocument(str(error)) from None
    checked = [endpoint.endpoint.endpoint for endpoint in flags.endpoints]
    not_deployed = sorted(set(FlagSet.endpoints_in(_values(request.content))) - set(checked))
    logger.info("flag document accepted", extra={**version, "not_deployed": not_deployed})
    return {"valid": True, "endpoints": checked, "not_deployed": not_deployed}


def _values(content: str) -> dict[str, Any]:
    return values_of_document(json.loads(base64.b64decode(content)))
