"""The pre-traffic gates: golden inputs, metric thresholds, input drift, and the overall verdict."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from lambdas.gates import (
    BASELINE_MAX_VALUES,
    EXACT_KS_MAX_CELLS,
    CapturedFeatures,
    GateName,
    GateSettings,
    GatesReport,
    GateStatus,
    GoldenCase,
    GoldenSet,
    Prediction,
    TrainingBaseline,
    Unanswered,
    drift_gate,
    evaluate_gates,
    golden_gate,
    kolmogorov_sf,
    ks_two_sample,
    metric_gate,
    population_stability_index,
    quantile_edges,
)

PROPERTY_SETTINGS = settings(max_examples=80, deadline=None)
FEATURES = ("monthly_charges", "support_calls_90d", "tenure_months")
CHAMPION_METRICS = {"accuracy": 0.90, "precision": 0.80, "recall": 0.70, "f1": 0.75, "auc": 0.92}


def sample(seed: int, size: int, loc: float = 0.0, scale: float = 1.0) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(loc, scale, size)]


def golden_cases() -> GoldenSet:
    return GoldenSet(
        cases=(
            GoldenCase(
                case_id="loyal",
                record={"tenure_months": 60, "satisfaction_score": 4.5},
                expected_label=0,
                expected_probabilities=(0.9, 0.1),
            ),
            GoldenCase(
                case_id="unhappy",
                record=[2, 95.5],
                expected_label=1,
                expected_probabilities=(0.2, 0.8),
            ),
            GoldenCase(case_id="label-only", record=[10, 50.0], expected_label=0),
        )
    )


def exact_outputs() -> dict[str, Prediction]:
    return {
        "loyal": Prediction(label=0, probabilities=(0.9, 0.1)),
        "unhappy": Prediction(label=1, probabilities=(0.2, 0.8)),
        "label-only": Prediction(label=0, probabilities=(0.6, 0.4)),
    }


def baseline_and_captured(
    rows: int = 400, shift: dict[str, float] | None = None
) -> tuple[TrainingBaseline, CapturedFeatures]:
    shift = shift or {}
    baseline = TrainingBaseline.from_columns(
        {name: sample(index, 3000) for index, name in enumerate(FEATURES)}
    )
    captured = CapturedFeatures(
        features={
            name: [x + shift.get(name, 0.0) for x in sample(100 + index, rows)]
            for index, name in enumerate(FEATURES)
        }
    )
    return baseline, captured


# -- settings ----------------------------------------------------------------------------------------


def test_settings_reject_minimums_outside_0_1_unknown_metrics_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match=r"minimum_metrics\.auc must be within 0-1"):
        GateSettings(minimum_metrics={"auc": 1.5})
    with pytest.raises(ValidationError, match=r"minimum_metrics\.log_loss"):
        GateSettings.model_validate({"minimum_metrics": {"log_loss": 0.5}})
    with pytest.raises(ValidationError, match="psi_maximum"):
        GateSettings.model_validate({"psi_maximum": 0.3})
    with pytest.raises(ValidationError, match="ks_pvalue_min"):
        GateSettings(ks_pvalue_min=1.0)


def test_settings_defaults_block_on_missing_golden_cases_and_drift_data() -> None:
    defaults = GateSettings()
    assert defaults.require_golden_cases and defaults.require_drift_data
    assert (defaults.psi_bins, defaults.psi_smoothing, defaults.drift_min_samples) == (10, 0.5, 200)


# -- golden inputs -----------------------------------------------------------------------------------


def test_golden_gate_passes_when_every_case_is_reproduced_within_tolerance() -> None:
    outputs = exact_outputs() | {"loyal": Prediction(label=0, probabilities=(0.9 + 5e-7, 0.1 - 5e-7))}
    result = golden_gate(golden_cases(), outputs, GateSettings(golden_tolerance=1e-6))
    assert result.status is GateStatus.PASSED and not result.blocks_promotion
    assert result.failed_cases == ()
    assert [case.case_id for case in result.cases] == ["label-only", "loyal", "unhappy"]
    assert result.reason == "all 3 golden cases reproduced within tolerance 1e-06"
    label_only = result.cases[0]
    assert label_only.max_probability_error is None and label_only.passed


def test_golden_gate_fails_on_a_wrong_label_and_names_the_case() -> None:
    outputs = exact_outputs() | {"unhappy": Prediction(label=0, probabilities=(0.2, 0.8))}
    result = golden_gate(golden_cases(), outputs, GateSettings())
    assert result.status is GateStatus.FAILED and result.blocks_promotion
    assert result.failed_cases == ("unhappy",)
    assert "unhappy: label 0, expected 1" in result.reason
    assert result.reason.startswith("1 of 3 golden cases failed")


def test_golden_gate_fails_when_probabilities_move_beyond_the_tolerance() -> None:
    outputs = exact_outputs() | {"loyal": Prediction(label=0, probabilities=(0.88, 0.12))}
    result = golden_gate(golden_cases(), outputs, GateSettings(golden_tolerance=0.01))
    assert result.failed_cases == ("loyal",)
    loyal = next(case for case in result.cases if case.case_id == "loyal")
    assert loyal.max_probability_error == pytest.approx(0.02)
    assert "probabilities [0.88, 0.12], expected [0.9, 0.1]: they differ by up to 0.02 > tolerance 0.01" in (
        loyal.reason
    )
    assert (loyal.actual_probabilities, loyal.expected_probabilities) == ((0.88, 0.12), (0.9, 0.1))


def test_golden_gate_fails_a_case_the_candidate_gave_no_prediction_for_and_says_what_it_answered() -> None:
    outputs = exact_outputs() | {"unhappy": Unanswered(error="ModelError: Received server error (500)")}
    result = golden_gate(golden_cases(), outputs, GateSettings())
    assert result.status is GateStatus.FAILED and result.failed_cases == ("unhappy",)
    unhappy = next(case for case in result.cases if case.case_id == "unhappy")
    assert (unhappy.actual_label, unhappy.max_probability_error) == (None, None)
    assert "unhappy: no prediction: ModelError: Received server error (500)" in result.reason


def test_golden_gate_fails_when_probabilities_are_missing_or_of_another_length() -> None:
    outputs = exact_outputs() | {
        "loyal": Prediction(label=0),
        "unhappy": Prediction(label=1, probabilities=(0.2, 0.7, 0.1)),
    }
    result = golden_gate(golden_cases(), outputs, GateSettings())
    assert result.failed_cases == ("loyal", "unhappy")
    assert "loyal: no probabilities returned" in result.reason
    assert "unhappy: 3 probabilities returned, expected 2" in result.reason


def test_golden_labels_compare_exactly_so_a_string_never_matches_an_integer() -> None:
    golden = GoldenSet(cases=(GoldenCase(case_id="a", record=[1.0], expected_label=1),))
    result = golden_gate(golden, {"a": Prediction(label="1")}, GateSettings())
    assert result.status is GateStatus.FAILED
    assert "label '1', expected 1" in result.reason


def test_no_golden_cases_blocks_when_required_and_is_reported_either_way() -> None:
    required = golden_gate(GoldenSet(), {}, GateSettings())
    assert required.status is GateStatus.INSUFFICIENT_DATA and required.blocks_promotion
    assert "no golden cases (golden cases are required)" in required.reason
    optional = golden_gate(GoldenSet(), {}, GateSettings(require_golden_cases=False))
    assert optional.status is GateStatus.INSUFFICIENT_DATA and not optional.blocks_promotion
    assert "not required" in optional.reason


def test_outputs_that_do_not_cover_exactly_the_golden_cases_are_an_error() -> None:
    outputs = exact_outputs()
    del outputs["loyal"]
    outputs["stranger"] = Prediction(label=0)
    with pytest.raises(ValueError, match=r"missing \['loyal'\], unknown \['stranger'\]"):
        golden_gate(golden_cases(), outputs, GateSettings())


def test_golden_cases_reject_duplicate_ids_nan_inputs_and_bad_probabilities() -> None:
    case = GoldenCase(case_id="a", record=[1.0], expected_label=0)
    with pytest.raises(ValidationError, match=r"repeated: \['a'\]"):
        GoldenSet(cases=(case, case))
    with pytest.raises(ValidationError, match="finite"):
        GoldenCase(case_id="b", record={"tenure_months": math.nan}, expected_label=0)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        GoldenCase(case_id="c", record=[1.0], expected_label=0, expected_probabilities=(1.2, -0.2))
    with pytest.raises(ValidationError, match="at least 1 item"):
        GoldenCase(case_id="d", record=[1.0], expected_label=0, expected_probabilities=())
    with pytest.raises(ValidationError, match="at least 1 item"):
        GoldenCase(case_id="e", record={}, expected_label=0)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_golden_gate_result_does_not_depend_on_the_order_of_cases_or_outputs(data: st.DataObject) -> None:
    golden = golden_cases()
    outputs = exact_outputs() | {"unhappy": Prediction(label=0, probabilities=(0.2, 0.8))}
    expected = golden_gate(golden, outputs, GateSettings())
    cases = data.draw(st.permutations(golden.cases))
    output_order = data.draw(st.permutations(sorted(outputs)))
    shuffled = golden_gate(
        GoldenSet(cases=tuple(cases)), {key: outputs[key] for key in output_order}, GateSettings()
    )
    assert shuffled == expected


# -- metric thresholds -------------------------------------------------------------------------------


def test_metric_gate_passes_a_candidate_above_minimums_and_close_to_the_champion() -> None:
    candidate = {**CHAMPION_METRICS, "accuracy": 0.91, "auc": 0.915, "log_loss": 0.3}
    result = metric_gate(candidate, CHAMPION_METRICS, GateSettings(minimum_metrics={"auc": 0.85}))
    assert result.status is GateStatus.PASSED and not result.blocks_promotion
    assert [check.metric for check in result.checks] == ["accuracy", "precision", "recall", "f1", "auc"]
    auc = result.checks[-1]
    assert auc.relative_drop == pytest.approx((0.92 - 0.915) / 0.92)
    assert auc.minimum == 0.85
    assert result.reason == "5 metric(s) checked, all within limits"


def test_metric_below_its_absolute_minimum_fails_the_gate_by_name() -> None:
    candidate = {**CHAMPION_METRICS, "recall": 0.55}
    result = metric_gate(candidate, None, GateSettings(minimum_metrics={"recall": 0.6, "auc": 0.8}))
    assert result.status is GateStatus.FAILED and result.blocks_promotion
    assert "recall 0.55 is below the minimum 0.6" in result.reason
    assert [check.metric for check in result.checks if not check.passed] == ["recall"]


def test_a_drop_beyond_the_allowed_share_of_the_champion_fails_and_exactly_the_limit_passes() -> None:
    gate = GateSettings(max_relative_drop=0.01)
    at_limit = metric_gate({**CHAMPION_METRICS, "accuracy": 0.891}, CHAMPION_METRICS, gate)
    assert at_limit.status is GateStatus.PASSED
    beyond = metric_gate({**CHAMPION_METRICS, "accuracy": 0.89}, CHAMPION_METRICS, gate)
    assert beyond.status is GateStatus.FAILED
    assert "accuracy 0.89 is 1.11% below the champion's 0.9 (at most 1.00% allowed)" in beyond.reason


def test_a_metric_required_but_not_registered_by_the_candidate_fails_naming_it() -> None:
    candidate = {name: value for name, value in CHAMPION_METRICS.items() if name != "f1"}
    by_minimum = metric_gate(candidate, None, GateSettings(minimum_metrics={"f1": 0.5}))
    assert by_minimum.status is GateStatus.FAILED
    assert "f1: missing from the candidate's metrics but required by a minimum" in by_minimum.reason
    by_champion = metric_gate(candidate, CHAMPION_METRICS, GateSettings())
    assert by_champion.status is GateStatus.FAILED
    assert "f1: missing from the candidate's metrics but required by the champion's" in by_champion.reason


def test_a_champion_without_metrics_skips_the_relative_check_with_a_note() -> None:
    for champion in (None, {}, {"log_loss": 0.2}):
        result = metric_gate({"accuracy": 0.5}, champion, GateSettings(minimum_metrics={"accuracy": 0.4}))
        assert result.status is GateStatus.PASSED
        assert "the champion has no registered metrics: relative check skipped" in result.reason
        assert [check.champion for check in result.checks] == [None]


def test_a_candidate_without_metrics_fails_even_with_nothing_configured() -> None:
    result = metric_gate({"log_loss": 0.3}, None, GateSettings())
    assert result.status is GateStatus.FAILED
    assert result.reason == "the candidate has no registered classification metrics"


def test_metric_gate_rejects_non_finite_and_out_of_range_metrics() -> None:
    with pytest.raises(ValueError, match="candidate metric 'auc' must be a finite number"):
        metric_gate({"auc": math.nan}, None, GateSettings())
    with pytest.raises(ValueError, match="champion metrics must be within 0-1"):
        metric_gate({"auc": 0.9}, {"auc": 90.0}, GateSettings())


# -- PSI ---------------------------------------------------------------------------------------------


def test_psi_matches_the_hand_computed_value_without_and_with_smoothing() -> None:
    baseline = [float(x) for x in range(1, 11)]  # median edge 5: bins (-inf, 5] and (5, inf)
    captured = [1.0, 2.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]  # 2 below, 6 above: q = (0.25, 0.75)
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 3
    assert population_stability_index(baseline, captured, bins=2, smoothing=0) == pytest.approx(
        0.25 * math.log(3), rel=1e-12
    )
    # Counts + 0.5: p = (5.5, 5.5) / 11, q = (2.5, 6.5) / 9, so PSI = (2/9) ln(13/5).
    assert population_stability_index(baseline, captured, bins=2, smoothing=0.5) == pytest.approx(
        2 / 9 * math.log(13 / 5), rel=1e-12
    )


def test_psi_of_a_bin_empty_on_one_side_is_infinite_unsmoothed_and_large_smoothed() -> None:
    baseline = [float(x) for x in range(1, 11)]
    beyond = [20.0] * 4
    assert population_stability_index(baseline, beyond, bins=2, smoothing=0) == math.inf
    # q = (0.5, 4.5) / 5 = (0.1, 0.9) against p = (0.5, 0.5): 0.4 ln(0.9 / 0.1) = 0.4 ln 9.
    assert population_stability_index(baseline, beyond, bins=2) == pytest.approx(0.4 * math.log(9))


def test_psi_bins_of_a_binary_feature_collapse_to_its_values() -> None:
    baseline = [0.0] * 55 + [1.0] * 45
    assert quantile_edges(baseline, 10) == (0.0, 1.0)
    captured = [0.0] * 45 + [1.0] * 55
    # Bins (-inf, 0], (0, 1], (1, inf): counts 55/45/0 against 45/55/0, each + 0.5 over 101.5.
    expected = 2 * (10 / 101.5) * math.log(55.5 / 45.5)
    assert population_stability_index(baseline, captured) == pytest.approx(expected, rel=1e-12)


def test_quantile_edges_are_numpys_inverted_cdf_quantiles() -> None:
    rng = np.random.default_rng(7)
    for size in (10, 37, 100, 999):
        values = sorted(float(x) for x in rng.normal(0, 1, size).round(1))
        for bins in (2, 5, 10):
            levels = [k / bins for k in range(1, bins)]
            reference = np.unique(np.quantile(values, levels, method="inverted_cdf"))
            assert quantile_edges(values, bins) == tuple(float(x) for x in reference)


def test_psi_rejects_empty_and_non_finite_samples_and_too_few_bins() -> None:
    with pytest.raises(ValueError, match="baseline is empty"):
        population_stability_index([], [1.0])
    with pytest.raises(ValueError, match="captured sample is empty"):
        population_stability_index([1.0], [])
    with pytest.raises(ValueError, match=r"captured sample contains a non-finite value \(nan\)"):
        population_stability_index([1.0, 2.0], [math.nan])
    with pytest.raises(ValueError, match="at least 2 bins"):
        population_stability_index([1.0, 2.0], [1.0], bins=1)


# -- Kolmogorov-Smirnov ------------------------------------------------------------------------------


def test_ks_of_two_separated_samples_matches_the_hand_count() -> None:
    # D = 1; only 2 of the C(6, 3) = 20 orderings separate the samples completely.
    result = ks_two_sample([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert (result.statistic, result.method) == (1.0, "exact")
    assert result.pvalue == pytest.approx(0.1, abs=1e-15)
    assert ks_two_sample([1.0, 2.0], [2.0, 1.0]).pvalue == 1.0


def test_kolmogorov_tail_equals_scipys_kstwobign() -> None:
    for x in [0.0, 0.05, 0.3, 0.8, 1.0, 1.17, 1.18, 1.19, 1.36, 1.63, 2.0, 3.0, 6.0]:
        assert kolmogorov_sf(x) == pytest.approx(float(stats.kstwobign.sf(x)), abs=1e-13)


def random_pair(rng: np.random.Generator, first: int, second: int) -> tuple[list[float], list[float]]:
    """Two normal samples, a random shift apart, rounded now and then so that ties occur."""
    digits = int(rng.integers(0, 4))
    a = rng.normal(0.0, 1.0, first).round(digits)
    b = rng.normal(rng.uniform(0.0, 0.6), 1.0, second).round(digits)
    return [float(x) for x in a], [float(x) for x in b]


def test_ks_exact_p_value_equals_scipys_exact_one_over_many_small_samples() -> None:
    # Tolerance 1e-9: both count lattice paths; only floating rounding may differ.
    rng = np.random.default_rng(11)
    for _ in range(300):
        first, second = int(rng.integers(1, 101)), int(rng.integers(1, 101))
        if first * second > EXACT_KS_MAX_CELLS:
            continue
        a, b = random_pair(rng, first, second)
        ours, theirs = ks_two_sample(a, b), stats.ks_2samp(a, b, method="exact")
        assert ours.method == "exact"
        assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
        assert ours.pvalue == pytest.approx(theirs.pvalue, abs=1e-9)


def test_ks_asymptotic_p_value_is_close_to_scipys_exact_one_over_many_larger_samples() -> None:
    # Stated tolerance: within 0.03 absolute everywhere, and within 10 % relative where it matters,
    # for p-values from 0.001 to 0.1 (measured worst cases: about 0.024 and 8 % for n near 10,
    # about 0.015 and 2.5 % from n = 200, the drift gate's minimum sample).
    rng = np.random.default_rng(12)
    for _ in range(300):
        first = int(rng.integers(11, 1000))
        second = int(rng.integers(EXACT_KS_MAX_CELLS // first + 1, 3000))
        a, b = random_pair(rng, first, second)
        ours, theirs = ks_two_sample(a, b), stats.ks_2samp(a, b, method="exact")
        assert ours.method == "asymptotic"
        assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
        assert ours.pvalue == pytest.approx(theirs.pvalue, abs=0.03)
        if 0.001 <= theirs.pvalue <= 0.1:
            assert ours.pvalue == pytest.approx(theirs.pvalue, rel=0.1)


def test_ks_rejects_empty_and_non_finite_samples() -> None:
    with pytest.raises(ValueError, match="first sample is empty"):
        ks_two_sample([], [1.0])
    with pytest.raises(ValueError, match="second sample contains a non-finite value"):
        ks_two_sample([1.0], [math.inf])


# -- drift monotonicity --------------------------------------------------------------------------------

values_strategy = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=10,
    max_size=150,
)


@PROPERTY_SETTINGS
@given(
    values=values_strategy,
    copies=st.integers(min_value=1, max_value=3),
    shifts=st.lists(st.floats(min_value=0, max_value=1e6), min_size=2, max_size=5),
)
def test_shifting_the_captured_data_further_never_lowers_ks_d_nor_raises_its_p_value(
    values: list[float], copies: int, shifts: list[float]
) -> None:
    # Family: the captured data are the baseline (repeated) moved right by d. For d1 < d2 every
    # captured value moves further, so the count below any x can only fall: D never decreases, and
    # for fixed sizes the p-value is a decreasing function of D.
    tests = [ks_two_sample(values, [x + shift for x in values * copies]) for shift in sorted(shifts)]
    for nearer, further in itertools.pairwise(tests):
        assert further.statistic >= nearer.statistic
        assert further.pvalue <= nearer.pvalue


@PROPERTY_SETTINGS
@given(values=values_strategy, order=st.randoms(use_true_random=False), bins=st.integers(2, 12))
def test_moving_more_requests_beyond_the_training_range_never_lowers_psi_nor_raises_ks_p(
    values: list[float], order: random.Random, bins: int
) -> None:
    # Family: the captured data are the baseline with a growing, nested set of values moved above the
    # baseline's maximum. Those land in the top bin, which only gains while every other bin only
    # loses, so each PSI term (q - p) ln(q / p) grows; the KS distance grows too.
    beyond = max(values) + 1.0
    positions = list(range(len(values)))
    order.shuffle(positions)
    steps = sorted({0, len(values) // 3, len(values) // 2, len(values)})
    psis, pvalues = [], []
    for moved in steps:
        captured = list(values)
        for position in positions[:moved]:
            captured[position] = beyond
        psis.append(population_stability_index(values, captured, bins=bins))
        pvalues.append(ks_two_sample(values, captured).pvalue)
    assert psis[0] == 0.0
    assert all(later >= earlier for earlier, later in itertools.pairwise(psis))
    assert all(later <= earlier for earlier, later in itertools.pairwise(pvalues))


# -- input drift gate ---------------------------------------------------------------------------------


def test_drift_gate_passes_captured_requests_from_the_training_distribution() -> None:
    baseline, captured = baseline_and_captured()
    result = drift_gate(baseline, captured, GateSettings())
    assert result.status is GateStatus.PASSED and not result.blocks_promotion
    assert [drift.feature for drift in result.features] == sorted(FEATURES)
    assert all(drift.psi < 0.2 and drift.ks_pvalue >= 0.01 for drift in result.features)
    assert (result.captured_samples, result.baseline_samples) == (400, BASELINE_MAX_VALUES)
    assert result.reason == "no drift in 3 features over 400 captured requests"


def test_drift_gate_fails_and_names_the_shifted_feature_with_its_numbers() -> None:
    baseline, captured = baseline_and_captured(shift={"support_calls_90d": 0.8})
    result = drift_gate(baseline, captured, GateSettings())
    assert result.status is GateStatus.FAILED and result.blocks_promotion
    assert result.drifted_features == ("support_calls_90d",)
    drifted = next(d for d in result.features if d.feature == "support_calls_90d")
    assert drifted.psi > 0.2 and drifted.ks_pvalue < 1e-6 and drifted.ks_method == "asymptotic"
    assert result.reason.startswith("1 of 3 features drifted: support_calls_90d: PSI ")
    assert "KS p-value" in result.reason


def test_a_feature_drifts_on_the_ks_test_alone_when_psi_stays_below_its_limit() -> None:
    baseline, captured = baseline_and_captured(rows=3000, shift={"tenure_months": 0.2})
    result = drift_gate(baseline, captured, GateSettings(psi_max=0.2, ks_pvalue_min=0.01))
    drifted = next(d for d in result.features if d.feature == "tenure_months")
    assert drifted.psi < 0.2 and drifted.ks_pvalue < 0.01 / len(baseline.features)
    assert result.drifted_features == ("tenure_months",)
    assert "PSI" not in drifted.reason and "KS p-value" in drifted.reason


def test_ks_level_is_shared_by_the_features_so_the_gate_keeps_its_family_wise_level() -> None:
    baseline, captured = baseline_and_captured(rows=3000, shift={"tenure_months": 0.2})
    level = 0.01 / len(baseline.features)
    result = drift_gate(baseline, captured, GateSettings(psi_max=10.0, ks_pvalue_min=0.01))
    drifted = next(d for d in result.features if d.feature == "tenure_months")
    assert f"< {level:.3g}" in drifted.reason
    # A p-value between the per-feature level and the family-wise one is not drift.
    lenient = drift_gate(
        baseline, captured, GateSettings(psi_max=10.0, ks_pvalue_min=drifted.ks_pvalue * 1.5)
    )
    assert lenient.drifted_features == ()


def test_too_few_captured_requests_is_insufficient_data_and_blocks_unless_not_required() -> None:
    baseline, captured = baseline_and_captured(rows=199)
    required = drift_gate(baseline, captured, GateSettings(drift_min_samples=200))
    assert required.status is GateStatus.INSUFFICIENT_DATA and required.blocks_promotion
    assert required.reason == (
        "199 captured requests, at least 200 needed to judge drift (drift data is required)"
    )
    assert required.features == ()
    optional = drift_gate(baseline, captured, GateSettings(drift_min_samples=200, require_drift_data=False))
    assert optional.status is GateStatus.INSUFFICIENT_DATA and not optional.blocks_promotion


def test_no_captured_requests_at_all_is_insufficient_data_not_an_error() -> None:
    baseline, _ = baseline_and_captured()
    result = drift_gate(baseline, CapturedFeatures(features={key: [] for key in FEATURES}), GateSettings())
    assert result.status is GateStatus.INSUFFICIENT_DATA and result.captured_samples == 0


def test_a_baseline_smaller_than_the_minimum_sample_is_insufficient_data() -> None:
    baseline = TrainingBaseline(features={"x": sample(1, 50)})
    captured = CapturedFeatures(features={"x": sample(2, 500)})
    result = drift_gate(baseline, captured, GateSettings())
    assert result.status is GateStatus.INSUFFICIENT_DATA and result.blocks_promotion
    assert "the training baseline has 50 values for a feature, 200 needed" in result.reason


def test_captured_features_that_differ_from_the_baseline_are_an_error_naming_them() -> None:
    baseline, _ = baseline_and_captured()
    captured = CapturedFeatures(
        features={"monthly_charges": [1.0], "tenure_months": [1.0], "data_usage_gb": [1.0]}
    )
    with pytest.raises(
        ValueError, match=r"missing \['support_calls_90d'\], not in the baseline \['data_usage_gb'\]"
    ):
        drift_gate(baseline, captured, GateSettings())


def test_captured_features_reject_nan_unequal_columns_and_no_features() -> None:
    with pytest.raises(ValidationError, match=r"features\.x\.1"):
        CapturedFeatures(features={"x": [1.0, math.nan]})
    with pytest.raises(ValidationError, match=r"one value per request, got lengths \{'x': 2, 'y': 1\}"):
        CapturedFeatures(features={"x": [1.0, 2.0], "y": [1.0]})
    with pytest.raises(ValidationError, match="captured data must name at least one feature"):
        CapturedFeatures(features={})


def test_baseline_rejects_empty_features_nan_and_oversized_samples() -> None:
    with pytest.raises(ValidationError, match="baseline feature 'x' has no values"):
        TrainingBaseline(features={"x": []})
    with pytest.raises(ValidationError, match="finite"):
        TrainingBaseline(features={"x": [math.inf]})
    with pytest.raises(ValidationError, match="1001 values, at most 1000"):
        TrainingBaseline(features={"x": [0.0] * 1001})
    with pytest.raises(ValidationError, match="must name at least one feature"):
        TrainingBaseline(features={})


def test_baseline_from_columns_keeps_evenly_spaced_order_statistics_deterministically() -> None:
    column = sample(5, 10_000)
    baseline = TrainingBaseline.from_columns({"x": column, "small": [3.0, 1.0, 2.0]})
    kept = baseline.features["x"]
    assert len(kept) == BASELINE_MAX_VALUES and list(kept) == sorted(kept)
    assert (kept[0], kept[-1]) == (min(column), max(column))
    # Within one step of the full column's CDF everywhere: the KS distance is at most 1 / 1000.
    assert ks_two_sample(kept, column).statistic <= 1 / BASELINE_MAX_VALUES + 1e-12
    assert baseline.features["small"] == (1.0, 2.0, 3.0)
    assert TrainingBaseline.from_columns({"x": list(reversed(column))}).features["x"] == kept
    assert TrainingBaseline.model_validate_json(baseline.model_dump_json()) == baseline


@PROPERTY_SETTINGS
@given(
    columns=st.integers(min_value=10, max_value=60).flatmap(
        lambda rows: st.lists(
            st.lists(
                st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
                min_size=rows,
                max_size=rows,
            ),
            min_size=1,
            max_size=3,
        )
    ),
    copies=st.integers(min_value=1, max_value=3),
    order=st.randoms(use_true_random=False),
)
def test_captured_data_identical_to_the_baseline_never_fails_the_drift_gate(
    columns: list[list[float]], copies: int, order: random.Random
) -> None:
    rows = list(zip(*columns, strict=True)) * copies
    order.shuffle(rows)
    names = [f"feature_{index}" for index in range(len(columns))]
    baseline = TrainingBaseline(features=dict(zip(names, columns, strict=True)))
    captured = CapturedFeatures(
        features={name: [row[index] for row in rows] for index, name in enumerate(names)}
    )
    result = drift_gate(baseline, captured, GateSettings(drift_min_samples=10))
    assert result.status is GateStatus.PASSED, result.reason
    assert all(drift.ks_statistic == 0.0 and drift.ks_pvalue == 1.0 for drift in result.features)


# -- all gates ---------------------------------------------------------------------------------------


def evaluate(
    gate_settings: GateSettings,
    outputs: dict[str, Prediction] | None = None,
    candidate: dict[str, float] | None = None,
    shift: dict[str, float] | None = None,
    rows: int = 400,
) -> GatesReport:
    baseline, captured = baseline_and_captured(rows=rows, shift=shift)
    return evaluate_gates(
        settings=gate_settings,
        golden=golden_cases(),
        challenger_outputs=outputs or exact_outputs(),
        candidate_metrics=candidate or CHAMPION_METRICS,
        champion_metrics=CHAMPION_METRICS,
        baseline=baseline,
        captured=captured,
    )


def test_evaluate_gates_passes_when_every_gate_passes() -> None:
    report = evaluate(GateSettings(minimum_metrics={"auc": 0.9}))
    assert report.passed and report.blocking_gates == ()
    assert report.reason == "all gates passed"
    assert [r.status for r in report.results()] == [GateStatus.PASSED] * 3


def test_every_gate_runs_and_reports_even_when_the_first_ones_fail() -> None:
    report = evaluate(
        GateSettings(),
        outputs=exact_outputs() | {"loyal": Prediction(label=1, probabilities=(0.1, 0.9))},
        candidate={**CHAMPION_METRICS, "auc": 0.5},
        shift={"monthly_charges": 1.0},
    )
    assert not report.passed
    assert report.blocking_gates == (
        GateName.GOLDEN_INPUTS,
        GateName.METRIC_THRESHOLDS,
        GateName.INPUT_DRIFT,
    )
    assert report.golden_inputs.failed_cases == ("loyal",)
    assert report.input_drift.drifted_features == ("monthly_charges",)
    assert report.reason.startswith("blocked by golden_inputs: 1 of 3 golden cases failed")
    assert "metric_thresholds: auc 0.5 is 45.65% below the champion's 0.92" in report.reason


def test_a_non_blocking_gate_without_data_is_named_in_a_passing_verdict() -> None:
    report = evaluate(GateSettings(require_drift_data=False), rows=20)
    assert report.passed
    assert report.input_drift.status is GateStatus.INSUFFICIENT_DATA
    assert report.reason == (
        "all gates passed; input_drift not evaluated: 20 captured requests, at least 200 needed to "
        "judge drift (not required, so this does not block)"
    )


def test_the_report_round_trips_through_json_and_refuses_an_inconsistent_verdict() -> None:
    report = evaluate(GateSettings(), candidate={**CHAMPION_METRICS, "auc": 0.5})
    restored = type(report).model_validate_json(report.model_dump_json())
    assert restored == report
    with pytest.raises(ValidationError, match="must follow from the gate results"):
        type(report).model_validate({**report.model_dump(), "passed": True, "blocking_gates": []})
