"""Checks a new flag document before AppConfig deploys it, so invalid flags never reach the router."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.flags import FLAG_KINDS, EndpointVariants, FlagError, FlagSet


def validate_document(content: str, catalog: Sequence[EndpointVariants]) -> FlagSet:
    """Parse AppConfig's base64 content as a native flag document for these endpoints.

    Raises FlagError naming the flag and the problem: not JSON, a definition missing or unknown, or
    any value the router would reject. Every deployed endpoint (the catalog) must keep its flags; flags
    of an endpoint whose stack is not deployed yet are accepted (the environment's stack, which holds
    the flags, deploys before the endpoints' stacks) and checked once it is.
    """
    document = _decode(content)
    definitions = document.get("flags")
    if not isinstance(definitions, Mapping):
        raise FlagError("a flag document needs a 'flags' object of flag definitions")
    expected = {variants.key(kind) for variants in catalog for kind in FLAG_KINDS}
    missing = sorted(expected - set(definitions))
    unknown = sorted(key for key in set(definitions) - expected if not FlagSet.endpoints_in({key: None}))
    if missing or unknown:
        raise FlagError(f"flag definitions: missing {missing}, unknown {unknown}")
    values = document.get("values", {})
    undefined = sorted(set(values) - set(definitions)) if isinstance(values, Mapping) else []
    if undefined:
        raise FlagError(f"values of unknown flag(s) {undefined}: each value needs its flag's definition")
    deployed = {variants.endpoint for variants in catalog}
    for endpoint in FlagSet.endpoints_in(definitions):
        own = sorted(key for key in definitions if key in {f"{endpoint}-{kind}" for kind in FLAG_KINDS})
        if endpoint not in deployed and len(own) != len(FLAG_KINDS):
            raise FlagError(
                f"flag definitions: unknown endpoint {endpoint!r} (deployed: {sorted(deployed)}) has "
                f"only {own} of its {len(FLAG_KINDS)} flags"
            )
    return FlagSet.from_document(document, catalog, partial=True)


def _decode(content: str) -> dict[str, Any]:
    try:
        document = json.loads(base64.b64decode(content, validate=True))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FlagError(f"content is not base64-encoded JSON: {error}") from None
    if not isinstance(document, dict):
        raise FlagError(f"a flag document must be a JSON object, got {type(document).__name__}")
    return document
