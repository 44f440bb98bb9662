"""Metric math as CloudWatch evaluates it per timestamp; the tables are the User Guide's own examples."""

from __future__ import annotations

import re

import pytest

from localcloud.cloudwatch.metric_math import MetricMathError, Series, evaluate_expression, parse_expression

TIMESTAMPS = [0, 60, 120, 180, 240]


def series(*values: float | None) -> Series:
    """A series over TIMESTAMPS; None is a timestamp without data."""
    return {t: v for t, v in zip(TIMESTAMPS, values, strict=False) if v is not None}


def evaluate(text: str, **queries: Series) -> Series:
    return evaluate_expression(parse_expression(text), queries, TIMESTAMPS)


def test_if_with_series_branches_follows_the_documented_table() -> None:
    metric1, metric2, metric3 = (
        series(1, 1, 0, 0, None),
        series(30, None, 0, 0, 30),
        series(0, 0, 20, None, 20),
    )
    assert evaluate(
        "IF(metric1, metric2, metric3)", metric1=metric1, metric2=metric2, metric3=metric3
    ) == series(30, 0, 20, None, None)


def test_if_with_a_scalar_true_branch_follows_the_documented_table() -> None:
    metric1, metric3 = series(1, 1, 0, 0, None), series(0, 0, 20, None, 20)
    assert evaluate("IF(metric1, 5, metric3)", metric1=metric1, metric3=metric3) == series(
        5, 5, 20, None, None
    )


def test_if_with_a_scalar_false_branch_follows_the_documented_table() -> None:
    metric1, metric2 = series(1, 1, 0, 0, None), series(30, None, 0, 0, 30)
    assert evaluate("IF(metric1, metric2, 5)", metric1=metric1, metric2=metric2) == series(30, 0, 5, 5, None)


def test_if_without_a_false_branch_drops_false_datapoints() -> None:
    assert evaluate("IF(m1 < 400, m1)", m1=series(100, 500, 300)) == series(100, None, 300)


def test_comparisons_between_series_count_a_missing_value_as_zero() -> None:
    metric1, metric2 = series(30, 20, 0, 0), series(20, None, 20, None)
    assert evaluate("(metric1 < metric2)", metric1=metric1, metric2=metric2) == series(0, 0, 1, 0)
    assert evaluate("(metric1 >= 30)", metric1=metric1) == series(1, 0, 0, 0)
    assert evaluate("(metric1 > 15 AND metric2 > 15)", metric1=metric1, metric2=metric2) == series(1, 0, 0, 0)
    assert evaluate("metric1 > 25 || metric2 > 15", metric1=metric1, metric2=metric2) == series(1, 0, 1, 0)


def test_arithmetic_between_series_counts_a_missing_value_as_zero_and_drops_division_by_zero() -> None:
    errors, invocations = series(1, None, 4, 2), series(10, 20, None, 0)
    assert evaluate("errors / invocations", errors=errors, invocations=invocations) == series(
        0.1, 0, None, None
    )
    assert evaluate("errors + invocations", errors=errors, invocations=invocations) == series(11, 20, 4, 2)


def test_precedence_parentheses_power_and_unary_minus() -> None:
    m1 = series(2, 3)
    assert evaluate("1 + 2 * m1", m1=m1) == series(5, 7)
    assert evaluate("(1 + 2) * m1", m1=m1) == series(6, 9)
    assert evaluate("-m1 ^ 2 + 10", m1=m1) == series(6, 1)
    assert evaluate("m1 - 1 - 1", m1=m1) == series(0, 1)
    assert evaluate("2 ^ m1 / 2", m1=m1) == series(2, 4)
    assert evaluate("m1 * 1.5e1", m1=m1) == series(30, 45)


def test_fill_gives_every_period_of_the_range_a_value() -> None:
    assert evaluate("FILL(m1, 0)", m1=series(None, 3)) == series(0, 3, 0, 0, 0)
    assert evaluate("FILL(m1, m2)", m1=series(None, 3, None), m2=series(7, 8)) == series(7, 3)


def test_the_error_rate_expression_of_the_endpoint_alarms() -> None:
    text = "IF(invocations >= 20, 100 * FILL(errors5xx, 0) / invocations, 0)"
    invocations = series(100, 10, None, 50, 40)
    errors = series(5, 9, 3, None, 40)
    # 5 %; under the volume floor 0; no traffic, no datapoint; no errors reported 0 %; all failing 100 %.
    assert evaluate(text, invocations=invocations, errors5xx=errors) == series(5, 0, None, 0, 100)
    assert parse_expression(text).references == {"invocations", "errors5xx"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ABS(m1)", "function ABS is not supported"),
        ("SUM(METRICS())", "function SUM is not supported"),
        ("ANOMALY_DETECTION_BAND(m1, 2)", "function ANOMALY_DETECTION_BAND is not supported"),
        ("FILL(m1, REPEAT)", "REPEAT) is not supported"),
        ("FILL(m1)", "FILL takes 2 arguments, got 1"),
        ("IF(m1)", "IF takes 2 or 3 arguments, got 1"),
        ("m1 +", "ends where a value was expected"),
        ("(m1 + 1", "expected ')'"),
        ("m1 m2", "unexpected 'm2'"),
        ("M1 + 1", "'M1' is neither a query id"),
        ("m1 $ 2", "unexpected character at position 3"),
    ],
)
def test_unsupported_or_malformed_expressions_are_refused_by_name(text: str, problem: str) -> None:
    with pytest.raises(MetricMathError, match=re.escape(problem)):
        parse_expression(text)


def test_an_unknown_id_and_a_scalar_result_are_refused() -> None:
    with pytest.raises(MetricMathError, match="reads unknown ids: m2"):
        evaluate("m1 + m2", m1=series(1))
    with pytest.raises(MetricMathError, match="gives a single number"):
        evaluate("1 + 2")
    with pytest.raises(MetricMathError, match="FILL's first argument must be a time series"):
        evaluate("FILL(1, 0)")
