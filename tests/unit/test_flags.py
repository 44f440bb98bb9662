"""The feature-flag model: native document, values form, JSON Schema, and the errors a bad flag gets."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lambdas.flags import (
    FLAG_KEY_PATTERN,
    FLAG_KINDS,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    REASON_PATTERN,
    SEGMENT_PATTERN,
    USER_ID_PATTERN,
    EndpointFlags,
    EndpointVariants,
    FlagError,
    FlagSet,
    KillSwitch,
    SegmentPin,
    UserPin,
    document_schema,
    flag_key,
)

CHURN = EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")
FRAUD_SHADOW = EndpointVariants(endpoint="fraud", champion="blue")
CATALOG = (CHURN, FRAUD_SHADOW)


def _validator(catalog: tuple[EndpointVariants, ...] = CATALOG) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(document_schema(catalog))


def _busy_flags() -> FlagSet:
    return FlagSet(
        endpoints=(
            EndpointFlags(
                endpoint=CHURN,
                kill_switch=KillSwitch(on=True, reason="p99 latency doubled"),
                segment_pin=SegmentPin(segments=("beta", "internal"), variant="challenger"),
                user_pin=UserPin(users=("user-42", "qa@example.com"), variant="champion"),
            ),
            EndpointFlags(endpoint=FRAUD_SHADOW),
        )
    )


def _values_with(key: str, value: Any) -> dict[str, Any]:
    return {**FlagSet.initial(CATALOG).values(), key: value}


def test_initial_document_has_every_flag_of_every_endpoint_switched_off() -> None:
    document = FlagSet.initial(CATALOG).document()

    assert document["version"] == "1"
    expected_keys = {flag_key(variants.endpoint, kind) for variants in CATALOG for kind in FLAG_KINDS}
    assert set(document["flags"]) == expected_keys
    assert document["values"] == {key: {"enabled": False} for key in expected_keys}


def test_generated_documents_validate_against_the_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(document_schema(CATALOG))
    validator = _validator()

    validator.validate(FlagSet.initial(CATALOG).document())
    validator.validate(_busy_flags().document())


def test_document_round_trips_through_the_values_form_appconfigdata_serves() -> None:
    flags = _busy_flags()

    served = json.loads(json.dumps(flags.values()))

    assert served["churn-segment-pin"] == {
        "enabled": True,
        "segments": ["beta", "internal"],
        "variant": "challenger",
    }
    assert FlagSet.from_values(served, CATALOG) == flags


def test_document_round_trips_through_the_native_document() -> None:
    flags = _busy_flags()

    assert FlagSet.from_document(json.loads(json.dumps(flags.document())), CATALOG) == flags


def test_disabled_flag_is_served_without_its_attributes_and_parses_as_no_pin() -> None:
    document = FlagSet.initial(CATALOG).document()
    # The console keeps a disabled flag's attributes; AppConfigData does not serve them.
    document["values"]["churn-user-pin"] = {"enabled": False, "users": ["u1"], "variant": "challenger"}

    flags = FlagSet.from_document(document, CATALOG)

    assert flags.for_endpoint("churn").user_pin is None


def test_document_constraints_let_appconfig_reject_a_variant_that_is_not_pinnable() -> None:
    definitions = FlagSet.initial(CATALOG).document()["flags"]

    for kind in ("segment-pin", "user-pin"):
        assert definitions[f"churn-{kind}"]["attributes"]["variant"]["constraints"] == {
            "type": "string",
            "enum": ["champion", "challenger"],
        }
        # A shadow variant cannot be a TargetVariant, so only the champion is pinnable there.
        assert definitions[f"fraud-{kind}"]["attributes"]["variant"]["constraints"]["enum"] == ["blue"]


def test_document_constraints_use_the_same_patterns_as_the_model() -> None:
    definitions = FlagSet.initial(CATALOG).document()["flags"]

    assert (
        definitions["churn-kill-switch"]["attributes"]["reason"]["constraints"]["pattern"] == REASON_PATTERN
    )
    segments = definitions["churn-segment-pin"]["attributes"]["segments"]["constraints"]
    assert segments == {"type": "array", "elements": {"type": "string", "pattern": SEGMENT_PATTERN}}
    users = definitions["churn-user-pin"]["attributes"]["users"]["constraints"]
    assert users == {"type": "array", "elements": {"type": "string", "pattern": USER_ID_PATTERN}}


def test_unknown_endpoint_in_values_is_rejected_naming_the_flag_and_endpoint() -> None:
    with pytest.raises(FlagError, match=r"flag 'search-kill-switch': unknown endpoint 'search'"):
        FlagSet.from_values(_values_with("search-kill-switch", {"enabled": True}), CATALOG)


def test_unknown_flag_kind_is_rejected_naming_the_flag() -> None:
    with pytest.raises(FlagError, match=r"flag 'churn-dark-launch': unknown flag"):
        FlagSet.from_values(_values_with("churn-dark-launch", {"enabled": True}), CATALOG)


def test_missing_flag_is_rejected_naming_the_flag() -> None:
    values = FlagSet.initial(CATALOG).values()
    del values["fraud-user-pin"]

    with pytest.raises(FlagError, match=r"missing flag\(s\) \['fraud-user-pin'\]"):
        FlagSet.from_values(values, CATALOG)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("churn-kill-switch", {"enabled": "true"}, r"enabled: Input should be a valid boolean"),
        ("churn-kill-switch", {"enabled": True, "reason": 7}, r"reason: Input should be a valid string"),
        ("churn-segment-pin", {"enabled": True, "segments": "beta", "variant": "challenger"}, r"segments: "),
        ("churn-segment-pin", {"enabled": True, "segments": [1], "variant": "challenger"}, r"segments\.0: "),
        (
            "churn-segment-pin",
            {"enabled": True, "segments": ["no spaces"], "variant": "challenger"},
            "pattern",
        ),
        ("churn-user-pin", {"enabled": True, "users": ["u1"], "variant": 2}, r"variant: "),
        (
            "churn-user-pin",
            {"enabled": True, "users": ["u1"], "variant": "challenger", "ttl": 3},
            "unknown attribute",
        ),
        ("churn-user-pin", ["u1"], r"value must be an object"),
    ],
)
def test_wrong_types_are_rejected_naming_the_flag_and_the_attribute(
    key: str, value: Any, problem: str
) -> None:
    with pytest.raises(FlagError, match=rf"flag '{key}'.*{problem}"):
        FlagSet.from_values(_values_with(key, value), CATALOG)


@pytest.mark.parametrize(
    ("key", "variant"),
    [("churn-segment-pin", "shadow"), ("churn-user-pin", "canary"), ("fraud-user-pin", "challenger")],
)
def test_pin_to_a_variant_the_endpoint_lacks_is_rejected_naming_the_flag(key: str, variant: str) -> None:
    attribute = "segments" if key.endswith("segment-pin") else "users"
    value = {"enabled": True, attribute: ["x1"], "variant": variant}

    with pytest.raises(FlagError, match=rf"flag '{key}': variant '{variant}' is not one of"):
        FlagSet.from_values(_values_with(key, value), CATALOG)


@pytest.mark.parametrize(
    "value",
    [
        {"enabled": True},
        {"enabled": True, "segments": [], "variant": "challenger"},
        {"enabled": True, "segments": ["b"]},
    ],
)
def test_enabled_pin_without_its_list_or_variant_is_rejected(value: dict[str, Any]) -> None:
    with pytest.raises(FlagError, match=r"flag 'churn-segment-pin': enabled but without"):
        FlagSet.from_values(_values_with("churn-segment-pin", value), CATALOG)


def test_document_of_another_format_is_rejected() -> None:
    with pytest.raises(FlagError, match=r"not an AWS\.AppConfig\.FeatureFlags document"):
        FlagSet.from_document({"churn-kill-switch": {"enabled": True}}, CATALOG)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("churn-segment-pin", {"enabled": True, "segments": ["beta"], "variant": "shadow"}),
        ("churn-segment-pin", {"enabled": True, "variant": "challenger"}),
        ("churn-user-pin", {"enabled": True, "users": [], "variant": "champion"}),
        ("churn-kill-switch", {"enabled": "yes"}),
        ("churn-kill-switch", {"enabled": False, "colour": "red"}),
    ],
)
def test_json_schema_rejects_bad_values(key: str, value: dict[str, Any]) -> None:
    document = FlagSet.initial(CATALOG).document()
    document["values"][key] = value

    assert not _validator().is_valid(document)


def test_json_schema_rejects_a_missing_or_extra_flag() -> None:
    missing = FlagSet.initial(CATALOG).document()
    del missing["values"]["churn-kill-switch"]
    extra = FlagSet.initial(CATALOG).document()
    extra["flags"]["search-kill-switch"] = {"name": "search kill switch"}

    assert not _validator().is_valid(missing)
    assert not _validator().is_valid(extra)


def test_model_rejects_a_pin_to_a_variant_that_is_not_pinnable() -> None:
    with pytest.raises(ValidationError, match=r"flag 'fraud-segment-pin': variant 'challenger'"):
        EndpointFlags(endpoint=FRAUD_SHADOW, segment_pin=SegmentPin(segments=("beta",), variant="challenger"))


def test_kill_switch_reason_is_only_kept_while_on() -> None:
    with pytest.raises(ValidationError, match="only kept while the kill switch is on"):
        KillSwitch(on=False, reason="resolved")


def test_flag_set_rejects_the_same_endpoint_twice() -> None:
    with pytest.raises(ValidationError, match=r"duplicate endpoints: \['churn'\]"):
        FlagSet.initial((CHURN, CHURN))


def test_user_allow_list_wins_over_segment_pin() -> None:
    flags = _busy_flags().for_endpoint("churn")

    assert flags.pinned_variant(user_id="user-42", segment="beta") == "champion"
    assert flags.pinned_variant(user_id="someone", segment="beta") == "challenger"
    assert flags.pinned_variant(user_id=None, segment=None) is None


def test_flag_keys_fit_appconfig_for_the_longest_endpoint_name() -> None:
    longest = "a" * (NAME_MAX_LENGTH - 2) + "-b"
    variants = EndpointVariants(endpoint=longest, champion="champion", challenger="challenger")
    definitions = FlagSet.initial((variants,)).document()["flags"]

    for key, definition in definitions.items():
        assert re.fullmatch(FLAG_KEY_PATTERN, key), key
        assert len(key) <= 64
        assert len(definition["name"]) <= 64


def test_endpoint_name_longer_than_the_config_allows_is_rejected() -> None:
    with pytest.raises(ValidationError):
        EndpointVariants(endpoint="a" * (NAME_MAX_LENGTH + 1), champion="champion")


# --- properties -------------------------------------------------------------------------------------

names = st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda name: len(name) <= NAME_MAX_LENGTH)
segments = st.lists(st.from_regex(SEGMENT_PATTERN, fullmatch=True), min_size=1, max_size=4)
user_ids = st.lists(st.from_regex(USER_ID_PATTERN, fullmatch=True), min_size=1, max_size=4)
reasons = st.none() | st.from_regex(REASON_PATTERN, fullmatch=True)


@st.composite
def endpoint_variants(draw: st.DrawFn, endpoint: str) -> EndpointVariants:
    champion = draw(names)
    challenger = draw(st.none() | names.filter(lambda name: name != champion))
    return EndpointVariants(endpoint=endpoint, champion=champion, challenger=challenger)


@st.composite
def endpoint_flags(draw: st.DrawFn, endpoint: str) -> EndpointFlags:
    variants = draw(endpoint_variants(endpoint))
    pinnable = st.sampled_from(variants.pinnable)
    on = draw(st.booleans())
    return EndpointFlags(
        endpoint=variants,
        kill_switch=KillSwitch(on=on, reason=draw(reasons) if on else None),
        segment_pin=draw(st.none() | st.builds(SegmentPin, segments=segments.map(tuple), variant=pinnable)),
        user_pin=draw(st.none() | st.builds(UserPin, users=user_ids.map(tuple), variant=pinnable)),
    )


@st.composite
def flag_sets(draw: st.DrawFn) -> FlagSet:
    endpoints = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    return FlagSet(endpoints=tuple(draw(endpoint_flags(endpoint)) for endpoint in endpoints))


@given(flag_sets())
def test_any_valid_flag_set_round_trips_and_matches_the_json_schema(flags: FlagSet) -> None:
    document = json.loads(json.dumps(flags.document()))

    _validator(flags.catalog).validate(document)
    assert FlagSet.from_document(document, flags.catalog) == flags
    assert FlagSet.from_values(json.loads(json.dumps(flags.values())), flags.catalog) == flags


@given(names)
def test_flag_keys_of_any_endpoint_name_fit_appconfig_key_pattern(endpoint: str) -> None:
    for kind in FLAG_KINDS:
        assert re.fullmatch(FLAG_KEY_PATTERN, flag_key(endpoint, kind))
