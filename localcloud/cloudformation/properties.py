"""CloudFormation's property shapes translated to the APIs': tags, renamed keys, attribute values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def tag_list(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    """CloudFormation's `Tags` ([{Key, Value}]) as the many APIs that take that shape."""
    return [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in properties.get("Tags", [])]


def tag_map(properties: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tag_list(properties)}


def present_properties(properties: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The properties that are set, under the API's parameter names (CloudFormation name -> API name)."""
    return {api: properties[cfn] for cfn, api in mapping.items() if cfn in properties}


def same_names(*names: str) -> dict[str, str]:
    return {name: name for name in names}


def attribute_text(value: Any) -> str:
    """A queue or topic attribute value as the API takes it: strings, booleans in lower case, JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
