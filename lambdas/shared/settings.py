"""Reading a function's environment into a pydantic model, naming the variable of each problem."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lambdas.shared.validation import describe_problems

__all__ = ["SettingsError", "load_environment", "read_environment", "validate_settings"]

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class SettingsError(ValueError):
    """The function's environment is incomplete or malformed: a deployment fault, not a request fault."""


def read_environment(
    environ: Mapping[str, str], variables: Mapping[str, str], *, json_fields: Collection[str] = ()
) -> dict[str, Any]:
    """The set variables by field (unset ones take the model's default); ``json_fields`` are parsed."""
    raw: dict[str, Any] = {field: environ[name] for field, name in variables.items() if name in environ}
    for field in json_fields:
        if field in raw:
            try:
                raw[field] = json.loads(raw[field])
            except json.JSONDecodeError as error:
                raise SettingsError(f"{variables[field]} is not valid JSON: {error}") from None
    return raw


def validate_settings(
    model: type[SettingsT], raw: Mapping[str, Any], variables: Mapping[str, str]
) -> SettingsT:
    """The model, or SettingsError naming each problem by its environment variable."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = describe_problems(error, names=variables, top_level="environment")
        raise SettingsError(f"invalid environment: {problems}") from None


def load_environment(
    model: type[SettingsT],
    environ: Mapping[str, str],
    variables: Mapping[str, str],
    *,
    json_fields: Collection[str] = (),
) -> SettingsT:
    """Read and validate the environment in one step."""
    return validate_settings(model, read_environment(environ, variables, json_fields=json_fields), variables)
