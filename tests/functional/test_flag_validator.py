"""The AppConfig validator: a flag document the router could not use is rejected before it deploys."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from lambdas.flags import EndpointFlags, FlagSet, KillSwitch, SegmentPin
from tests.functional.serving_support import CATALOG, ENVIRONMENT, LambdaContextStub


@pytest.fixture(scope="module")
def validator() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        yield importlib.reload(importlib.import_module("lambdas.handlers.flag_validator"))


def event(content: str) -> dict[str, Any]:
    return {
        "applicationId": "abc1234",
        "configurationProfileId": "def5678",
        "configurationVersion": "7",
        "content": content,
        "uri": "hosted",
    }


def encoded(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def document_with(**changes: Any) -> dict[str, Any]:
    document = FlagSet.initial(CATALOG).document()
    for key, value in changes.items():
        document["values"][f"churn-{key.replace('_', '-')}"] = value
    return document


def test_a_valid_document_is_accepted(validator: ModuleType) -> None:
    flags = FlagSet(
        endpoints=(
            EndpointFlags(
                endpoint=CATALOG[0],
                kill_switch=KillSwitch(on=True, reason="INC-7"),
                segment_pin=SegmentPin(segments=("beta",), variant="challenger"),
            ),
        )
    )
    result = validator.handler(event(encoded(flags.document())), LambdaContextStub())
    assert result == {"valid": True, "endpoints": ["churn"], "not_deployed": []}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (
            document_with(segment_pin={"enabled": True, "segments": ["beta"], "variant": "shadow"}),
            "'churn-segment-pin': variant 'shadow' is not one of the endpoint's pinnable variants",
        ),
        (document_with(user_pin={"enabled": True, "variant": "challenger"}), "'churn-user-pin': enabled but"),
        (document_with(kill_switch={"enabled": "yes"}), "'churn-kill-switch'"),
        (document_with(fraud_kill_switch={"enabled": True}), "unknown"),
        ({"version": "1", "flags": {}, "values": {}}, "missing ['churn-kill-switch'"),
        ({"version": "2", "flags": {}, "values": {}}, "missing"),
        ([1, 2, 3], "must be a JSON object"),
    ],
)
def test_an_invalid_document_is_rejected_naming_the_flag(
    validator: ModuleType, document: Any, named: str
) -> None:
    with pytest.raises(validator.InvalidFlagDocument) as raised:
        validator.handler(event(encoded(document)), LambdaContextStub())
    assert named in str(raised.value)


def test_a_document_with_an_unknown_version_is_rejected(validator: ModuleType) -> None:
    document = FlagSet.initial(CATALOG).document() | {"version": "2"}
    with pytest.raises(validator.InvalidFlagDocument, match=r"not an AWS\.AppConfig\.FeatureFlags document"):
        validator.handler(event(encoded(document)), LambdaContextStub())


@pytest.mark.parametrize("content", ["%%% not base64", base64.b64encode(b"{not json").decode()])
def test_content_that_is_not_base64_json_is_rejected(validator: ModuleType, content: str) -> None:
    with pytest.raises(validator.InvalidFlagDocument, match="not base64-encoded JSON"):
        validator.handler(event(content), LambdaContextStub())


def test_an_event_without_content_is_rejected(validator: ModuleType) -> None:
    with pytest.raises(validator.InvalidFlagDocument, match="not an AppConfig validation event"):
        validator.handler({"uri": "hosted"}, LambdaContextStub())
