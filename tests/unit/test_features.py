"""The feature schema and conversions: round trips, one matrix for every input form, errors that name
the record and the feature."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trained_model.features import (
    FeatureError,
    FeatureSchema,
    FeatureSpec,
    SchemaError,
    apply_transforms,
    feature_transformer,
)

SCHEMA = FeatureSchema(
    (
        FeatureSpec("age", "int", 0, 120),
        FeatureSpec("income", "float", 0, 1e6, "log1p"),
        FeatureSpec("score", "float", -1, 1),
        FeatureSpec("delta"),
    )
)


def test_schema_round_trips_through_json_and_a_file(tmp_path: Path) -> None:
    assert FeatureSchema.from_json(SCHEMA.to_json()) == SCHEMA
    SCHEMA.save(tmp_path / "features.json")
    assert FeatureSchema.load(tmp_path / "features.json") == SCHEMA
    document = json.loads(SCHEMA.to_json())
    assert [f["name"] for f in document["features"]] == ["age", "income", "score", "delta"]
    assert document["features"][1] == {
        "name": "income",
        "type": "float",
        "minimum": 0.0,
        "maximum": 1e6,
        "transform": "log1p",
        "description": "",
    }


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ((), "at least one"),
        ((FeatureSpec("a"), FeatureSpec("a")), "duplicate"),
    ],
)
def test_schema_rejects_empty_or_duplicate_features(features: tuple[FeatureSpec, ...], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        FeatureSchema(features)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty"),
        ({"name": " a"}, "outer spaces"),
        ({"name": "a", "type": "str"}, "type must be"),
        ({"name": "a", "transform": "sqrt"}, "transform must be"),
        ({"name": "a", "minimum": 2, "maximum": 1}, "minimum is above maximum"),
        ({"name": "a", "minimum": math.inf}, "finite"),
        ({"name": "a", "transform": "log1p"}, "log1p needs a minimum"),
        ({"name": "a", "transform": "log1p", "minimum": -0.5}, "log1p needs a minimum"),
    ],
)
def test_feature_spec_rejects_contradictions(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        FeatureSpec(**kwargs)  # type: ignore[arg-type]  # deliberately invalid values


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"format_version": 2, "features": []}', "format_version"),
        ('{"format_version": 1, "features": {}}', "list of feature specs"),
        ('{"format_version": 1, "features": [{"type": "float"}]}', "string 'name'"),
        ('{"format_version": 1, "features": [{"name": "a", "color": 1}]}', "unknown keys"),
        ('{"format_version": 1, "features": [{"name": "a", "minimum": "0"}]}', "numbers or null"),
    ],
)
def test_invalid_schema_documents_are_refused(document: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        FeatureSchema.from_json(document)


def test_dict_list_and_csv_records_give_the_same_float_matrix() -> None:
    by_name = [
        {"delta": -3.5, "score": 0.25, "income": 1000, "age": 30},
        {"age": 1, "income": 0.5, "score": -1, "delta": 0},
    ]
    in_order = [[30, 1000, 0.25, -3.5], [1, 0.5, -1, 0]]
    csv_text = "30,1000,0.25,-3.5\n\n1,0.5,-1,0\n"
    expected = np.array([[30, 1000, 0.25, -3.5], [1, 0.5, -1, 0]], dtype=np.float64)
    for matrix in (
        SCHEMA.matrix_from_records(by_name),
        SCHEMA.matrix_from_records(in_order),
        SCHEMA.matrix_from_records([by_name[0], in_order[1]]),
        SCHEMA.matrix_from_csv(csv_text),
    ):
        assert matrix.dtype == np.float64
        np.testing.assert_array_equal(matrix, expected)


def test_integral_float_is_accepted_for_an_int_feature() -> None:
    np.testing.assert_array_equal(SCHEMA.matrix_from_records([[7.0, 1, 0, 0]]), [[7, 1, 0, 0]])


GOOD = {"age": 30, "income": 1000.0, "score": 0.5, "delta": 2.0}


@pytest.mark.parametrize(
    ("records", "kind", "index", "feature"),
    [
        ([GOOD, [30, 1000, 0.5]], "wrong_feature_count", 1, "delta"),
        ([[30, 1000, 0.5, 2, 9]], "wrong_feature_count", 0, None),
        ([GOOD, GOOD, {**GOOD, "colour": 1}], "unknown_feature", 2, "colour"),
        ([{k: v for k, v in GOOD.items() if k != "score"}], "missing_feature", 0, "score"),
        ([GOOD, {**GOOD, "income": "1000"}], "not_a_number", 1, "income"),
        ([{**GOOD, "score": True}], "not_a_number", 0, "score"),
        ([{**GOOD, "delta": None}], "not_a_number", 0, "delta"),
        ([[30, 1000, 0.5, float("nan")]], "not_finite", 0, "delta"),
        ([GOOD, [30, float("inf"), 0.5, 1]], "not_finite", 1, "income"),
        ([[30, 1000, 0.5, 10**400]], "not_finite", 0, "delta"),
        ([[30.5, 1000, 0.5, 1]], "not_an_integer", 0, "age"),
        ([GOOD, {**GOOD, "age": 121}], "out_of_range", 1, "age"),
        ([{**GOOD, "score": -1.01}], "out_of_range", 0, "score"),
        ([GOOD, "30,1000,0.5,2"], "bad_record", 1, None),
        ([], "no_records", None, None),
    ],
)
def test_bad_json_records_name_the_record_and_the_feature(
    records: list[object], kind: str, index: int | None, feature: str | None
) -> None:
    with pytest.raises(FeatureError) as caught:
        SCHEMA.matrix_from_records(records)
    error = caught.value
    assert (error.kind, error.index, error.feature) == (kind, index, feature)
    if index is not None:
        assert f"record {index}" in str(error)
    if feature is not None:
        assert repr(feature) in str(error)


@pytest.mark.parametrize(
    ("text", "kind", "index", "feature"),
    [
        ("30,1000,0.5,2\n30,1000,0.5\n", "wrong_feature_count", 1, "delta"),
        ("30,1000,0.5,2,1\n", "wrong_feature_count", 0, None),
        ("30,1000,0.5,2\n30,abc,0.5,2\n", "not_a_number", 1, "income"),
        ("30,1000,,2\n", "not_a_number", 0, "score"),
        ("30,1000,0.5,nan\n", "not_finite", 0, "delta"),
        ("30,-inf,0.5,1\n", "not_finite", 0, "income"),
        ("30,1000,2,1\n", "out_of_range", 0, "score"),
        ("\n\n", "no_records", None, None),
        ('30,"1000,0.5,2\n', "malformed_csv", None, None),
        ('30,"1000"x,0.5,2\n', "malformed_csv", None, None),
    ],
)
def test_bad_csv_rows_name_the_record_and_the_feature(
    text: str, kind: str, index: int | None, feature: str | None
) -> None:
    with pytest.raises(FeatureError) as caught:
        SCHEMA.matrix_from_csv(text)
    assert (caught.value.kind, caught.value.index, caught.value.feature) == (kind, index, feature)


def test_transforms_apply_log1p_to_the_marked_columns_only_and_leave_the_input_alone() -> None:
    matrix = SCHEMA.matrix_from_records([[30, math.e - 1, 0.5, 2], [1, 0, -1, -4]])
    original = matrix.copy()
    transformed = apply_transforms(matrix, SCHEMA.log1p_columns())
    np.testing.assert_allclose(transformed, np.array([[30, 1, 0.5, 2], [1, 0, -1, -4]], dtype=np.float64))
    np.testing.assert_array_equal(matrix, original)


def test_the_pipeline_step_applies_the_schemas_transforms() -> None:
    matrix = SCHEMA.matrix_from_records([[30, 99, 0.5, 2]])
    step = feature_transformer(SCHEMA)
    np.testing.assert_array_equal(step.fit_transform(matrix), apply_transforms(matrix, (1,)))


def _record_values() -> st.SearchStrategy[list[float]]:
    def bounded(low: float, high: float) -> st.SearchStrategy[float]:
        return st.floats(low, high, allow_nan=False, allow_infinity=False)

    return st.tuples(
        st.integers(0, 120).map(float),
        bounded(0, 1e6),
        bounded(-1, 1),
        bounded(-1e300, 1e300),
    ).map(list)


@settings(max_examples=60, deadline=None)
@given(st.lists(_record_values(), min_size=1, max_size=6))
def test_json_dicts_json_lists_and_csv_rows_of_the_same_data_give_the_same_matrix(
    rows: list[list[float]],
) -> None:
    def as_json_value(spec: FeatureSpec, value: float) -> float | int:
        return int(value) if spec.type == "int" else value

    dict_records = [
        {s.name: as_json_value(s, v) for s, v in zip(SCHEMA.features, row, strict=True)} for row in rows
    ]
    list_records = [[as_json_value(s, v) for s, v in zip(SCHEMA.features, row, strict=True)] for row in rows]
    # Through real JSON and CSV text, as a client would send them.
    from_dicts = SCHEMA.matrix_from_records(json.loads(json.dumps(dict_records)))
    from_lists = SCHEMA.matrix_from_records(json.loads(json.dumps(list_records)))
    from_csv = SCHEMA.matrix_from_csv(
        "".join(",".join(repr(v) for v in row) + "\r\n" for row in list_records)
    )
    np.testing.assert_array_equal(from_dicts, np.asarray(rows))
    np.testing.assert_array_equal(from_lists, from_dicts)
    np.testing.assert_array_equal(from_csv, from_dicts)


def test_the_schema_and_conversions_import_without_scikit_learn() -> None:
    # A gate Lambda may validate golden inputs with the schema and no scikit-learn installed.
    code = "import sys, trained_model.features; sys.exit('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0
