"""What AppConfig serves from a deployment, and the validators it runs before one starts."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import jsonschema
from moto.appconfig.models import ConfigurationProfile
from moto.awslambda.models import lambda_backends

from localcloud.appconfig.exceptions import (
    BadRequest,
)
from localcloud.appconfig.models import (
    FEATURE_FLAGS_TYPE,
    Deployment,
    Scope,
)


def feature_flag_values(document: Any) -> dict[str, Any]:
    """The values form AppConfigData serves for an AWS.AppConfig.FeatureFlags document: every value without
    its `_`-prefixed metadata, a disabled flag as `{"enabled": false}` alone."""
    if not isinstance(document, Mapping) or not isinstance(document.get("values", {}), Mapping):
        raise ValueError("an AWS.AppConfig.FeatureFlags document is an object whose `values` is an object")
    served: dict[str, Any] = {}
    for key, value in document.get("values", {}).items():
        if not isinstance(value, Mapping):
            raise ValueError(f"flag {key!r}: its value must be an object")
        if value.get("enabled") is False:
            served[key] = {"enabled": False}
        else:
            served[key] = {name: item for name, item in value.items() if not str(name).startswith("_")}
    return served


def served_content(deployment: Deployment) -> tuple[bytes, str]:
    if deployment.profile_type != FEATURE_FLAGS_TYPE:
        return deployment.content, deployment.content_type
    values = feature_flag_values(json.loads(deployment.content))
    return json.dumps(values).encode(), "application/json"


def validate(profile: ConfigurationProfile, version: str, content: bytes, scope: Scope) -> None:
    problems: list[dict[str, str]] = []
    for validator in profile.validators or []:
        kind = str(validator.get("Type"))
        if kind == "JSON_SCHEMA":
            problems += _json_schema_problems(str(validator.get("Content")), content)
        elif kind == "LAMBDA":
            problems += _lambda_problems(str(validator.get("Content")), profile, version, content, scope)
        else:
            raise BadRequest(f"validator type {kind!r} is neither JSON_SCHEMA nor LAMBDA")
    if problems:
        reasons = "; ".join(problem["Reason"] for problem in problems)
        raise BadRequest(
            f"Configuration version {version} failed validation: {reasons}",
            reason="InvalidConfiguration",
            details={"InvalidConfiguration": problems},
        )


def _json_schema_problems(schema_text: str, content: bytes) -> list[dict[str, str]]:
    schema = json.loads(schema_text)
    try:
        instance = json.loads(content)
    except ValueError as error:
        return [{"Type": "JSON_SCHEMA", "Reason": f"the configuration is not JSON: {error}", "Location": "$"}]
    validator = jsonschema.Draft4Validator(schema)
    return [
        {
            "Type": "JSON_SCHEMA",
            "Constraint": str(error.validator),
            "Location": "$"
            + "".join(
                f"[{part!r}]" if isinstance(part, str) else f"[{part}]" for part in error.absolute_path
            ),
            "Reason": error.message,
            "Value": json.dumps(error.instance)[:1024],
        }
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _lambda_problems(
    function: str, profile: ConfigurationProfile, version: str, content: bytes, scope: Scope
) -> list[dict[str, str]]:
    event = {
        "applicationId": profile.application_id,
        "configurationProfileId": profile.id,
        "configurationVersion": version,
        "content": base64.b64encode(content).decode(),
        "uri": profile.location_uri,
    }
    parts = function.split(":")
    # A function ARN names its own account and region; a bare name is the profile's.
    if function.startswith("arn:") and len(parts) >= 7:
        scope = Scope(account_id=parts[4], region=parts[3])
    headers: dict[str, str] = {}
    try:
        payload = lambda_backends[scope.account_id][scope.region].invoke(
            function, None, json.dumps(event), {"x-amz-invocation-type": "RequestResponse"}, headers
        )
    except Exception as error:  # any failure to invoke fails the validation, naming it
        raise BadRequest(f"the LAMBDA validator {function} could not be invoked: {error}") from None
    if "x-amz-function-error" not in {name.lower() for name in headers}:
        return []
    reason = _function_error_message(payload)
    return [{"Type": "LAMBDA", "Reason": f"validator {function}: {reason}", "Value": reason}]


def _function_error_message(payload: Any) -> str:
    text = payload.decode() if isinstance(payload, bytes) else str(payload)
    try:
        error = json.loads(text)
    except ValueError:
        return text
    if isinstance(error, Mapping):
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    return text
