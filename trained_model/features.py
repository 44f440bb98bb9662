"""The feature schema and the one conversion from input records to a numeric matrix.

Training and serving both go through this module, so a record means the same thing in both
(no training/serving skew):

- ``FeatureSchema`` lists the model's input features in order, each with a type, validity bounds
  and an optional transform. It is saved as ``features.json`` next to the model artifact.
- ``FeatureSchema.matrix_from_records`` turns JSON-style records (dicts keyed by feature name, or
  lists in schema order) into a float matrix; ``FeatureSchema.matrix_from_csv`` does the same for
  CSV text (one record per line, schema order, no header).
- ``feature_transformer`` builds the scikit-learn step that applies the schema's transforms; it is
  fitted into the model pipeline, so serving applies exactly what training applied.

Every bad input raises ``FeatureError`` naming the record index and, where there is one, the feature.
This module imports numpy only; scikit-learn is imported when a transformer is built, so that light
consumers (a gate Lambda checking golden inputs) can use the schema without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt

SCHEMA_FORMAT_VERSION = 1
FeatureType = Literal["float", "int"]
Transform = Literal["none", "log1p"]
FEATURE_TYPES: tuple[str, ...] = get_args(FeatureType)
TRANSFORMS: tuple[str, ...] = get_args(Transform)
Matrix = npt.NDArray[np.float64]
# What went wrong, for clients and metrics; the message says it for people.
FeatureErrorKind = Literal[
    "no_records",
    "malformed_csv",
    "bad_record",
    "wrong_feature_count",
    "unknown_feature",
    "missing_feature",
    "not_a_number",
    "not_finite",
    "not_an_integer",
    "out_of_range",
]


class FeatureError(ValueError):
    """An input record does not match the schema.

    ``kind`` names the problem, ``index`` is the record's position in the request or file (None
    when the whole input is at fault) and ``feature`` the feature concerned (None when no single
    feature is).
    """

    def __init__(
        self,
        kind: FeatureErrorKind,
        message: str,
        *,
        index: int | None = None,
        feature: str | None = None,
    ) -> None:
        self.kind = kind
        self.index = index
        self.feature = feature
        self.reason = message
        where = [] if index is None else [f"record {index}"]
        where += [] if feature is None else [f"feature {feature!r}"]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class SchemaError(ValueError):
    """A schema document is invalid (a bad features.json, or a spec that contradicts itself)."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One input feature: its name, type, inclusive validity bounds and transform.

    Bounds are hard limits of what the value can mean (a tenure is never negative), not the range
    seen in training: values outside them are rejected, never clipped.
    """

    name: str
    type: FeatureType = "float"
    minimum: float | None = None
    maximum: float | None = None
    transform: Transform = "none"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise SchemaError(f"feature name {self.name!r} must be non-empty without outer spaces")
        if self.type not in FEATURE_TYPES:
            raise SchemaError(f"feature {self.name!r}: type must be one of {FEATURE_TYPES}")
        if self.transform not in TRANSFORMS:
            raise SchemaError(f"feature {self.name!r}: transform must be one of {TRANSFORMS}")
        for bound in (self.minimum, self.maximum):
            if bound is not None and not math.isfinite(bound):
                raise SchemaError(f"feature {self.name!r}: bounds must be finite numbers")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise SchemaError(f"feature {self.name!r}: minimum is above maximum")
        # log1p is only defined above -1; a lower bound of 0 keeps the transform monotone and finite.
        if self.transform == "log1p" and (self.minimum is None or self.minimum < 0):
            raise SchemaError(f"feature {self.name!r}: log1p needs a minimum >= 0")

    def check(self, value: float, index: int) -> float:
        """The value if it is finite, of the right type and within bounds; else a FeatureError."""
        if not math.isfinite(value):
            raise FeatureError("not_finite", "value must be finite", index=index, feature=self.name)
        if self.type == "int" and not value.is_integer():
            raise FeatureError("not_an_integer", "expected an integer", index=index, feature=self.name)
        below = self.minimum is not None and value < self.minimum
        above = self.maximum is not None and value > self.maximum
        if below or above:
            raise FeatureError(
                "out_of_range",
                f"value is outside [{self.minimum}, {self.maximum}]",
                index=index,
                feature=self.name,
            )
        return value

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "transform": self.transform,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        unknown = set(data) - {"name", "type", "minimum", "maximum", "transform", "description"}
        if unknown:
            raise SchemaError(f"unknown keys in feature spec: {sorted(unknown)}")
        if not isinstance(data.get("name"), str):
            raise SchemaError("every feature spec needs a string 'name'")
        return cls(
            name=data["name"],
            type=data.get("type", "float"),
            minimum=_optional_float(data.get("minimum"), data["name"]),
            maximum=_optional_float(data.get("maximum"), data["name"]),
            transform=data.get("transform", "none"),
            description=str(data.get("description", "")),
        )


def _optional_float(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"feature {name!r}: bounds must be numbers or null")
    return float(value)


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    """The model's input features, in the order the model sees them."""

    features: tuple[FeatureSpec, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise SchemaError("a schema needs at least one feature")
        names = [spec.name for spec in self.features]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise SchemaError(f"duplicate feature names: {duplicates}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    # -- serialization (features.json) --------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        return {"format_version": SCHEMA_FORMAT_VERSION, "features": [s.to_dict() for s in self.features]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        if data.get("format_version") != SCHEMA_FORMAT_VERSION:
            raise SchemaError(f"unsupported schema format_version {data.get('format_version')!r}")
        specs = data.get("features")
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise SchemaError("'features' must be a list of feature specs")
        return cls(tuple(FeatureSpec.from_dict(spec) for spec in specs))

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SchemaError(f"schema is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise SchemaError("a schema document is a JSON object")
        return cls.from_dict(data)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FeatureSchema:
        return cls.from_json(path.read_text(encoding="utf-8"))

    # -- conversion --------------------------------------------------------------------------------

    def row_from_mapping(self, record: Mapping[str, object], index: int) -> list[float]:
        """One record keyed by feature name; every feature present, no others."""
        names = self.names
        unknown = [_bounded_name(key) for key in record if key not in names]
        if unknown:
            listed = unknown[:MAX_NAMED_UNKNOWN] + (["..."] if len(unknown) > MAX_NAMED_UNKNOWN else [])
            raise FeatureError(
                "unknown_feature", f"unknown feature(s) {listed}", index=index, feature=unknown[0]
            )
        missing = [name for name in names if name not in record]
        if missing:
            raise FeatureError(
                "missing_feature", f"missing feature(s) {missing}", index=index, feature=missing[0]
            )
        return [
            spec.check(_json_number(record[spec.name], index, spec.name), index) for spec in self.features
        ]

    def row_from_values(self, values: Sequence[object], index: int) -> list[float]:
        """One record as values in schema order (a JSON list); numbers only."""
        self._check_count(len(values), index)
        return [
            spec.check(_json_number(value, index, spec.name), index)
            for spec, value in zip(self.features, values, strict=True)
        ]

    def row_from_text(self, cells: Sequence[str], index: int) -> list[float]:
        """One CSV row in schema order; each cell is parsed as a number."""
        self._check_count(len(cells), index)
        return [
            spec.check(_text_number(cell, index, spec.name), index)
            for spec, cell in zip(self.features, cells, strict=True)
        ]

    def _check_count(self, count: int, index: int) -> None:
        expected = len(self.features)
        if count == expected:
            return
        # Too few values: the first absent feature is the one to name; too many: no feature is.
        first_missing = self.names[count] if count < expected else None
        raise FeatureError(
            "wrong_feature_count",
            f"expected {expected} values, got {count}",
            index=index,
            feature=first_missing,
        )

    def matrix_from_records(self, records: Iterable[object]) -> Matrix:
        """JSON-style records (dicts by name or lists in order, mixed freely) as a float matrix."""
        rows = [self._row_from_record(record, index) for index, record in enumerate(records)]
        return self._matrix(rows)

    def _row_from_record(self, record: object, index: int) -> list[float]:
        if isinstance(record, Mapping):
            return self.row_from_mapping(cast(Mapping[str, object], record), index)
        if isinstance(record, list | tuple):
            return self.row_from_values(record, index)
        raise FeatureError(
            "bad_record",
            f"a record is an object keyed by feature name or an array in schema order, "
            f"got {type(record).__name__}",
            index=index,
        )

    def matrix_from_csv(self, text: str) -> Matrix:
        """CSV text, one record per line in schema order, no header; blank lines are skipped."""
        try:
            # strict: broken quoting is an error, not a silently different value.
            lines = [row for row in csv.reader(io.StringIO(text), strict=True) if row]
        except csv.Error as error:
            raise FeatureError("malformed_csv", f"malformed CSV: {error}") from error
        return self._matrix([self.row_from_text(cells, index) for index, cells in enumerate(lines)])

    def _matrix(self, rows: list[list[float]]) -> Matrix:
        if not rows:
            raise FeatureError("no_records", "no records")
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(self.features))

    def log1p_columns(self) -> tuple[int, ...]:
        return tuple(i for i, spec in enumerate(self.features) if spec.transform == "log1p")


# A caller's unknown keys are named in the error, but only so many and so long.
MAX_NAMED_UNKNOWN = 5
MAX_NAME_SHOWN = 64


def _bounded_name(key: object) -> str:
    name = str(key)
    return name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "..."


_JSON_TYPE_NAMES: dict[type, str] = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}


def _json_number(value: object, index: int, name: str) -> float:
    # JSON booleans and numeric strings are rejected: a client sending them has a bug worth seeing.
    if isinstance(value, bool) or not isinstance(value, int | float):
        # The type, never the value: errors reach the caller, the endpoint's logs and the router's.
        shown = "null" if value is None else _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise FeatureError("not_a_number", f"expected a number, got {shown}", index=index, feature=name)
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        raise FeatureError(
            "not_finite", "value must be finite, got a huge integer", index=index, feature=name
        ) from None


def _text_number(cell: str, index: int, name: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise FeatureError("not_a_number", "expected a number", index=index, feature=name) from None


def apply_transforms(matrix: Matrix, log1p_columns: tuple[int, ...] = ()) -> Matrix:
    """The schema's per-feature transforms, on a copy.

    Referenced by name from pickled model pipelines: renaming or moving it breaks saved models.
    """
    out = np.array(matrix, dtype=np.float64, copy=True)
    if log1p_columns:
        out[:, log1p_columns] = np.log1p(out[:, log1p_columns])
    return out


def feature_transformer(schema: FeatureSchema) -> Any:
    """A scikit-learn step applying the schema's transforms, for the front of a model pipeline."""
    # Imported here so that the schema and conversions stay usable without scikit-learn.
    from sklearn.preprocessing import (  # type: ignore[import-untyped]  # noqa: PLC0415  # no stubs
        FunctionTransformer,
    )

    return FunctionTransformer(
        apply_transforms, kw_args={"log1p_columns": schema.log1p_columns()}, validate=False
    )
