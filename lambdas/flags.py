"""The feature flags of every endpoint, and their native AppConfig form.

One model serves the CDK app (which deploys the initial document) and the Lambdas (the router reads
the flags through AppConfigData). Pydantic and the standard library only: no AWS at import.

Per endpoint there are three flags, keyed by the endpoint's name:

- ``<endpoint>-kill-switch``: on -> all traffic goes to the champion.
- ``<endpoint>-segment-pin``: requests from the listed segments go to the pinned variant.
- ``<endpoint>-user-pin``: the allow-listed user ids go to the pinned variant.

The document is AppConfig's native ``AWS.AppConfig.FeatureFlags`` format, so the console can toggle
the flags and AppConfig enforces each attribute's constraints (type, pattern, enum of variants) when a
new version is saved. AppConfigData returns the *values* form, e.g.::

    {"churn-kill-switch": {"enabled": false},
     "churn-segment-pin": {"enabled": true, "segments": ["beta"], "variant": "challenger"},
     "churn-user-pin": {"enabled": false}}

A disabled flag arrives without its attributes (AppConfig drops them), so a disabled pin is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from lambdas.shared.validation import describe_problems, problem_message

# AppConfig's own rule for flag and attribute keys.
FLAG_KEY_PATTERN: Final = r"^[a-z][a-zA-Z0-9_-]{0,63}$"
# The config's rule for endpoint and variant names; it keeps every derived flag key valid.
NAME_PATTERN: Final = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
NAME_MAX_LENGTH: Final = 40
SEGMENT_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
USER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.@:+=-]{0,127}$"
REASON_PATTERN: Final = r"^[^\n\r]{1,256}$"
DOCUMENT_VERSION: Final = "1"

FlagKind = Literal["kill-switch", "segment-pin", "user-pin"]
FLAG_KINDS: Final[tuple[FlagKind, ...]] = ("kill-switch", "segment-pin", "user-pin")

Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=NAME_MAX_LENGTH)]
Segment = Annotated[str, Field(pattern=SEGMENT_PATTERN)]
UserId = Annotated[str, Field(pattern=USER_ID_PATTERN)]
Reason = Annotated[str, Field(pattern=REASON_PATTERN)]


class FlagError(ValueError):
    """A flag document or values payload that cannot be used; the message names the flag."""


class FlagModel(BaseModel):
    """Unknown keys are errors and values never change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def flag_key(endpoint: str, kind: FlagKind) -> str:
    """The AppConfig flag key of one of an endpoint's flags (at most 40 + 12 characters)."""
    return f"{endpoint}-{kind}"


class EndpointVariants(FlagModel):
    """What the flags of one endpoint may refer to: its name and the variants a request can target."""

    endpoint: Name
    champion: Name
    challenger: Name | None = Field(
        default=None,
        description="None when the challenger slot is a shadow variant: InvokeEndpoint's TargetVariant "
        "addresses production variants only, so a shadow variant cannot be pinned.",
    )

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if self.challenger == self.champion:
            raise ValueError(f"champion and challenger must differ, both are {self.champion!r}")
        return self

    @property
    def pinnable(self) -> tuple[str, ...]:
        return (self.champion,) if self.challenger is None else (self.champion, self.challenger)

    def key(self, kind: FlagKind) -> str:
        return flag_key(self.endpoint, kind)


class KillSwitch(FlagModel):
    on: bool = False
    reason: Reason | None = Field(default=None, description="why it was pulled (kept only while on)")

    @model_validator(mode="after")
    def _reason_only_when_on(self) -> Self:
        # AppConfigData drops a disabled flag's attributes; a reason on an off switch would not survive.
        if self.reason is not None and not self.on:
            raise ValueError("a reason is only kept while the kill switch is on")
        return self


class SegmentPin(FlagModel):
    segments: tuple[Segment, ...] = Field(min_length=1)
    variant: Name


class UserPin(FlagModel):
    users: tuple[UserId, ...] = Field(min_length=1)
    variant: Name


class EndpointFlags(FlagModel):
    """The flags of one endpoint; a pin that is None is switched off."""

    endpoint: EndpointVariants
    kill_switch: KillSwitch = KillSwitch()
    segment_pin: SegmentPin | None = None
    user_pin: UserPin | None = None

    @model_validator(mode="after")
    def _pins_name_pinnable_variants(self) -> Self:
        pins: tuple[tuple[FlagKind, SegmentPin | UserPin | None], ...] = (
            ("segment-pin", self.segment_pin),
            ("user-pin", self.user_pin),
        )
        for kind, pin in pins:
            if pin is not None and pin.variant not in self.endpoint.pinnable:
                raise ValueError(
                    f"flag {self.endpoint.key(kind)!r}: variant {pin.variant!r} is not one of the "
                    f"endpoint's pinnable variants {list(self.endpoint.pinnable)}"
                )
        return self

    def pinned_variant(self, *, user_id: str | None, segment: str | None) -> str | None:
        """The variant a pin sends this request to; the user allow-list is more specific, so it wins.

        The kill switch is not applied here: the caller knows it and sends everything to the champion.
        """
        if self.user_pin is not None and user_id is not None and user_id in self.user_pin.users:
            return self.user_pin.variant
        if self.segment_pin is not None and segment is not None and segment in self.segment_pin.segments:
            return self.segment_pin.variant
        return None


class FlagSet(FlagModel):
    """The flags of every endpoint of one environment: one AppConfig feature-flag document."""

    endpoints: tuple[EndpointFlags, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _endpoints_unique(self) -> Self:
        names = [flags.endpoint.endpoint for flags in self.endpoints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate endpoints: {duplicates}")
        return self

    @classmethod
    def initial(cls, catalog: Iterable[EndpointVariants]) -> FlagSet:
        """Every kill switch off, no pins: what a fresh environment starts with."""
        return cls(endpoints=tuple(EndpointFlags(endpoint=variants) for variants in catalog))

    @property
    def catalog(self) -> tuple[EndpointVariants, ...]:
        return tuple(flags.endpoint for flags in self.endpoints)

    def for_endpoint(self, endpoint: str) -> EndpointFlags:
        for flags in self.endpoints:
            if flags.endpoint.endpoint == endpoint:
                return flags
        raise KeyError(f"no flags for endpoint {endpoint!r}")

    def document(self) -> dict[str, Any]:
        """The native AWS.AppConfig.FeatureFlags document (definitions with constraints, and values)."""
        definitions: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for flags in self.endpoints:
            definitions |= _definitions(flags.endpoint)
            values |= _values(flags)
        return {"version": DOCUMENT_VERSION, "flags": definitions, "values": values}

    def values(self) -> dict[str, Any]:
        """What AppConfigData returns for this document: values only, no attributes on disabled flags."""
        return values_of_document(self.document())

    @classmethod
    def from_values(
        cls, values: Mapping[str, Any], catalog: Sequence[EndpointVariants], *, partial: bool = False
    ) -> FlagSet:
        """Parse the values form (AppConfigData, `get_app_config`) for these endpoints.

        Raises FlagError naming the flag for an unknown or missing flag, a wrong type, or a pinned
        variant that is not one of the endpoint's production variants. ``partial``: the catalog is
        read at run time (each endpoint's stack writes its own entry), so it may lag the document either
        way while stacks deploy: flags of an endpoint not in the catalog are left out, and an endpoint of
        the catalog without all its flags gets none (``for_endpoint`` raises KeyError for both).
        """
        if not isinstance(values, Mapping):
            raise FlagError(f"flag values must be an object of flags, got {type(values).__name__}")
        expected = {variants.key(kind): variants for variants in catalog for kind in FLAG_KINDS}
        unknown = sorted(set(values) - set(expected))
        if partial:
            malformed = [key for key in unknown if _endpoint_of_flag(key) is None]
            if malformed:
                endpoints = sorted({variants.endpoint for variants in catalog})
                raise FlagError("; ".join(_unknown_flag(key, endpoints) for key in malformed))
            complete = [v for v in catalog if all(v.key(kind) in values for kind in FLAG_KINDS)]
            return cls.model_construct(endpoints=tuple(_parse_endpoint(v, values) for v in complete))
        if unknown:
            endpoints = sorted({variants.endpoint for variants in catalog})
            raise FlagError("; ".join(_unknown_flag(key, endpoints) for key in unknown))
        missing = sorted(set(expected) - set(values))
        if missing:
            raise FlagError(f"missing flag(s) {missing}")
        return cls(endpoints=tuple(_parse_endpoint(variants, values) for variants in catalog))

    @staticmethod
    def endpoints_in(values: Mapping[str, Any]) -> list[str]:
        """The endpoints a values form has flags for."""
        return sorted({endpoint for key in values if (endpoint := _endpoint_of_flag(key)) is not None})

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any], catalog: Sequence[EndpointVariants], *, partial: bool = False
    ) -> FlagSet:
        """Parse a native document (e.g. a hosted configuration version) as AppConfigData would serve it."""
        return cls.from_values(values_of_document(document), catalog, partial=partial)


def _endpoint_of_flag(key: str) -> str | None:
    for kind in FLAG_KINDS:
        if key.endswith(f"-{kind}") and len(key) > len(kind) + 1:
            return key.removesuffix(f"-{kind}")
    return None


def _unknown_flag(key: str, endpoints: list[str]) -> str:
    for kind in FLAG_KINDS:
        if key.endswith(f"-{kind}"):
            endpoint = key.removesuffix(f"-{kind}")
            return f"flag {key!r}: unknown endpoint {endpoint!r} (known: {endpoints})"
    return f"flag {key!r}: unknown flag (each endpoint has {[f'<endpoint>-{kind}' for kind in FLAG_KINDS]})"


def values_of_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """Reduce a native document to its values form, dropping the attributes of disabled flags."""
    if not isinstance(document, Mapping):
        raise FlagError(f"a flag document must be an object, got {type(document).__name__}")
    if document.get("version") != DOCUMENT_VERSION:
        raise FlagError(f"not an AWS.AppConfig.FeatureFlags document: version {document.get('version')!r}")
    raw = document.get("values", {})
    if not isinstance(raw, Mapping):
        raise FlagError(f"values must be an object of flags, got {type(raw).__name__}")
    return {key: _served_value(key, value) for key, value in raw.items()}


def _served_value(key: str, value: Any) -> Any:
    """One flag as AppConfigData serves it: no attributes while disabled, no `_` metadata."""
    if isinstance(value, Mapping) and value.get("enabled") is False:
        return {"enabled": False}
    if isinstance(value, Mapping):
        return {name: item for name, item in value.items() if not name.startswith("_")}
    raise FlagError(f"flag {key!r}: value must be an object, got {type(value).__name__}")


# --- the native document -------------------------------------------------------------------------


def _string(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern}


def _definitions(variants: EndpointVariants) -> dict[str, Any]:
    # `required` is left out on purpose: a disabled pin has no list to give, and AppConfig may check
    # constraints on disabled flags too. Presence while enabled is checked by the parser instead.
    variant = {"type": "string", "enum": list(variants.pinnable)}
    name = variants.endpoint
    return {
        variants.key("kill-switch"): {
            "name": f"{name} kill switch",
            "description": f"On: all traffic of endpoint {name} goes to its champion, {variants.champion}.",
            "attributes": {
                "reason": {
                    "description": "Why the switch was pulled",
                    "constraints": _string(REASON_PATTERN),
                },
            },
        },
        variants.key("segment-pin"): {
            "name": f"{name} segment pin",
            "description": f"On: requests of endpoint {name} from these segments go to the pinned variant.",
            "attributes": {
                "segments": {
                    "description": "Segment names",
                    "constraints": {"type": "array", "elements": _string(SEGMENT_PATTERN)},
                },
                "variant": {"description": "The variant they are pinned to", "constraints": variant},
            },
        },
        variants.key("user-pin"): {
            "name": f"{name} user allow-list",
            "description": f"On: these user ids of endpoint {name} go to the pinned variant.",
            "attributes": {
                "users": {
                    "description": "Allow-listed user ids",
                    "constraints": {"type": "array", "elements": _string(USER_ID_PATTERN)},
                },
                "variant": {"description": "The variant they are pinned to", "constraints": variant},
            },
        },
    }


def _values(flags: EndpointFlags) -> dict[str, Any]:
    kill: dict[str, Any] = {"enabled": flags.kill_switch.on}
    if flags.kill_switch.reason is not None:
        kill["reason"] = flags.kill_switch.reason
    segment: dict[str, Any] = {"enabled": False}
    if flags.segment_pin is not None:
        pin = flags.segment_pin
        segment = {"enabled": True, "segments": list(pin.segments), "variant": pin.variant}
    user: dict[str, Any] = {"enabled": False}
    if flags.user_pin is not None:
        users = flags.user_pin
        user = {"enabled": True, "users": list(users.users), "variant": users.variant}
    variants = flags.endpoint
    return {
        variants.key("kill-switch"): kill,
        variants.key("segment-pin"): segment,
        variants.key("user-pin"): user,
    }


# --- the JSON Schema of the native document --------------------------------------------------------


def document_schema(catalog: Sequence[EndpointVariants]) -> dict[str, Any]:
    """JSON Schema (2020-12) of the native document for these endpoints: AppConfig's flag-definition
    format, exactly our flag keys, and each value's type, pattern and pinnable variants.

    Hand-written because it depends on the endpoints (keys, variant enums), which a static pydantic
    schema cannot express. The tests check generated documents against it with `jsonschema`.
    """
    keys = [variants.key(kind) for variants in catalog for kind in FLAG_KINDS]
    values = {key: schema for variants in catalog for key, schema in _value_schemas(variants).items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mlrollout feature flags (AWS.AppConfig.FeatureFlags)",
        "type": "object",
        "required": ["version", "flags", "values"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": DOCUMENT_VERSION},
            "flags": _exactly(keys, {key: {"$ref": "#/$defs/flag"} for key in keys}),
            "values": _exactly(keys, values),
        },
        "$defs": _definition_schemas(),
    }


def _exactly(keys: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": keys, "additionalProperties": False}


def _value_schema(attributes: dict[str, Any], when_enabled: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"enabled": {"type": "boolean"}, **attributes},
        "required": ["enabled"],
        "additionalProperties": False,
    }
    if when_enabled:
        schema |= {"if": {"properties": {"enabled": {"const": True}}}, "then": {"required": when_enabled}}
    return schema


def _value_schemas(variants: EndpointVariants) -> dict[str, Any]:
    variant = {"enum": list(variants.pinnable)}

    def listing(pattern: str) -> dict[str, Any]:
        return {"type": "array", "minItems": 1, "items": _string(pattern)}

    return {
        variants.key("kill-switch"): _value_schema({"reason": _string(REASON_PATTERN)}, []),
        variants.key("segment-pin"): _value_schema(
            {"segments": listing(SEGMENT_PATTERN), "variant": variant}, ["segments", "variant"]
        ),
        variants.key("user-pin"): _value_schema(
            {"users": listing(USER_ID_PATTERN), "variant": variant}, ["users", "variant"]
        ),
    }


def _definition_schemas() -> dict[str, Any]:
    """AppConfig's flag-definition format: a name, a description and typed attribute constraints."""
    description = {"type": "string", "maxLength": 1024}

    def constraint(kind: str, **properties: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"type": {"const": kind}, "required": {"type": "boolean"}, **properties},
            "required": ["type"],
            "additionalProperties": False,
        }

    string = constraint(
        "string",
        pattern={"type": "string", "maxLength": 1024},
        enum={"type": "array", "items": {"type": ["string", "integer"]}},
    ) | {"not": {"required": ["pattern", "enum"]}}
    number = constraint("number", minimum={"type": "integer"}, maximum={"type": "integer"})
    element = {"oneOf": [{"$ref": "#/$defs/string"}, {"$ref": "#/$defs/number"}]}
    return {
        "flag": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[^\n]{1,64}$"},
                "description": description,
                "attributes": {
                    "type": "object",
                    "maxProperties": 25,
                    "propertyNames": {"pattern": FLAG_KEY_PATTERN, "not": {"const": "enabled"}},
                    "additionalProperties": {"$ref": "#/$defs/attribute"},
                },
            },
            "additionalProperties": False,
        },
        "attribute": {
            "type": "object",
            "properties": {"description": description, "constraints": {"$ref": "#/$defs/constraints"}},
            "additionalProperties": False,
        },
        "constraints": {
            "oneOf": [
                {"$ref": "#/$defs/string"},
                {"$ref": "#/$defs/number"},
                constraint("boolean"),
                constraint("array", elements=element),
            ]
        },
        "string": string,
        "number": number,
    }


# --- parsing the values form ---------------------------------------------------------------------


class _KillSwitchValue(FlagModel):
    enabled: StrictBool
    reason: Reason | None = None


class _SegmentPinValue(FlagModel):
    enabled: StrictBool
    segments: list[Segment] | None = None
    variant: str | None = None


class _UserPinValue(FlagModel):
    enabled: StrictBool
    users: list[UserId] | None = None
    variant: str | None = None


_Value = TypeVar("_Value", bound=FlagModel)


def _validate(key: str, model: type[_Value], raw: Any) -> _Value:
    """Validate one flag's value; the error names the flag, the attribute and the problem."""
    if not isinstance(raw, Mapping):
        raise FlagError(f"flag {key!r}: value must be an object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw, strict=True)
    except ValidationError as error:
        problems = describe_problems(error, top_level="value", unknown_field="unknown attribute")
        raise FlagError(f"flag {key!r}: {problems}") from None


def _require(key: str, **attributes: Any) -> None:
    absent = [name for name, value in attributes.items() if not value]
    if absent:
        raise FlagError(
            f"flag {key!r}: enabled but without {', '.join(absent)} (each needs a non-empty value)"
        )


def _parse_endpoint(variants: EndpointVariants, values: Mapping[str, Any]) -> EndpointFlags:
    kill = _validate(variants.key("kill-switch"), _KillSwitchValue, values[variants.key("kill-switch")])
    segment = _validate(variants.key("segment-pin"), _SegmentPinValue, values[variants.key("segment-pin")])
    user = _validate(variants.key("user-pin"), _UserPinValue, values[variants.key("user-pin")])
    segment_pin = None
    if segment.enabled:
        _require(variants.key("segment-pin"), segments=segment.segments, variant=segment.variant)
        segment_pin = SegmentPin(segments=tuple(segment.segments or ()), variant=str(segment.variant))
    user_pin = None
    if user.enabled:
        _require(variants.key("user-pin"), users=user.users, variant=user.variant)
        user_pin = UserPin(users=tuple(user.users or ()), variant=str(user.variant))
    try:
        return EndpointFlags(
            endpoint=variants,
            kill_switch=KillSwitch(on=kill.enabled, reason=kill.reason if kill.enabled else None),
            segment_pin=segment_pin,
            user_pin=user_pin,
        )
    except ValidationError as error:
        raise FlagError(
            "; ".join(problem_message(problem).removeprefix("Value error, ") for problem in error.errors())
        ) from None
