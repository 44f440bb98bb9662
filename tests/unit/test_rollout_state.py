"""The workflow state, the rollout settings and the assembly of judge windows: pure code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.rollout.aws.metrics_reader import windows_from_series
from lambdas.rollout.payloads import StepAction
from lambdas.rollout.settings import SettingsError, load_rollout_settings
from lambdas.rollout.start import (
    UPDATE_ALLOWANCE_SECONDS,
    UPDATES_PER_ROLLOUT,
    initial_state,
    planned_lease_seconds,
)
from lambdas.rollout.state import RolloutState, TaskError

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlrollout-dev-churn/3"
ENDPOINT = {
    "endpoint_name": "mlrollout-dev-churn",
    "champion": "champion",
    "challenger": "challenger",
    "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
    "model_package_group": "mlrollout-dev-churn",
    "execution_role_arn": "arn:aws:iam::123456789012:role/sagemaker",
}
ENVIRONMENT = {
    "ENDPOINTS": json.dumps({"churn": ENDPOINT}),
    "LOCK_TABLE": "locks",
    "LEDGER_TABLE": "ledger",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notifications",
}


def state(**changes: Any) -> dict[str, Any]:
    return {
        "rollout_id": "exec-1",
        "endpoint": "churn",
        "request": {
            "endpoint": "churn",
            "endpoint_name": "mlrollout-dev-churn",
            "model_package_arn": PACKAGE,
            "model_package_group": "mlrollout-dev-churn",
        },
        "started_at": 1_700_000_000,
        "bake_seconds": 600,
        "execution_role_arn": "arn:aws:iam::123456789012:role/sagemaker",
        "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
    } | changes


def test_state_survives_the_round_trip_through_the_state_machine() -> None:
    parsed = RolloutState.model_validate(state(error={"Error": "States.Timeout", "Cause": "took too long"}))
    dumped = parsed.dump()
    assert dumped["error"] == {"Error": "States.Timeout", "Cause": "took too long"}
    assert dumped["bake_seconds"] == 600
    assert RolloutState.model_validate(json.loads(json.dumps(dumped))) == parsed


def test_state_refuses_unknown_keys_and_a_missing_request() -> None:
    with pytest.raises(ValidationError, match="surprise"):
        RolloutState.model_validate(state(surprise=True))
    with pytest.raises(ValidationError, match="request"):
        RolloutState.model_validate({key: value for key, value in state().items() if key != "request"})


def caught(error: str, cause: str) -> TaskError:
    return TaskError.model_validate({"Error": error, "Cause": cause})


def test_a_lambda_error_is_described_by_its_message() -> None:
    cause = json.dumps({"errorMessage": "endpoint gone", "errorType": "DeploymentFailed", "stackTrace": []})
    assert caught("DeploymentFailed", cause).describe() == "DeploymentFailed: endpoint gone"
    assert caught("States.Timeout", "").describe() == "States.Timeout"
    assert caught("States.Runtime", "not json").describe() == "States.Runtime: not json"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {
                "error": {"Error": "ClientError", "Cause": "boom"},
                "decision": {"action": "rollback", "reason": "judge: harm"},
            },
            "ClientError: boom",
        ),
        ({"decision": {"action": StepAction.ROLLBACK, "reason": "judge: harm"}}, "judge: harm"),
        ({"gates": {"passed": False, "reason": "blocked by input_drift"}}, "gates: blocked by input_drift"),
        (
            {"deployment": {"status": "failed", "config_name": "cfg", "reason": "rolled back"}},
            "deployment: rolled back",
        ),
    ],
)
def test_the_rollback_reason_is_the_failure_first_then_the_judge_gates_deployment(
    changes: dict[str, Any], reason: str
) -> None:
    assert RolloutState.model_validate(state(**changes)).failure_reason() == reason


def test_settings_take_the_endpoint_rollout_defaults() -> None:
    settings = load_rollout_settings(ENVIRONMENT)
    churn = settings.endpoints["churn"]
    assert churn.rollout.traffic_steps == (5, 25, 50, 100)
    assert churn.variants.challenger == "challenger"


def test_settings_problems_name_the_variable() -> None:
    broken = ENVIRONMENT | {"ENDPOINTS": json.dumps({"churn": ENDPOINT | {"execution_role_arn": "x"}})}
    with pytest.raises(SettingsError, match=r"ENDPOINTS\.churn\.execution_role_arn"):
        load_rollout_settings(broken)
    with pytest.raises(SettingsError, match="TOPIC_ARN"):
        load_rollout_settings({key: value for key, value in ENVIRONMENT.items() if key != "TOPIC_ARN"})
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_rollout_settings(ENVIRONMENT | {"ENDPOINTS": "{"})


def minute(index: int) -> datetime:
    return datetime.fromtimestamp(1_700_000_040 + 60 * index, UTC)


def test_windows_pair_up_by_minute_and_cap_late_counts() -> None:
    series = {
        ("champion", "requests"): {minute(0): 100.0, minute(1): 100.0},
        ("champion", "errors_5xx"): {minute(1): 120.0},  # counted before its requests arrived
        ("challenger", "requests"): {minute(1): 10.0},
        ("challenger", "latency_count"): {minute(1): 10.0},
        ("challenger", "latency_average"): {minute(1): 30_000.0},
        ("challenger", "outcome_trials"): {minute(1): 4.0},
        ("challenger", "outcome_successes"): {minute(1): 6.0},
    }
    windows = windows_from_series(series, "champion", "challenger")
    assert [w.requests for w in windows.champion] == [100, 100]
    assert [w.requests for w in windows.challenger] == [0, 10]
    assert windows.champion[1].errors_5xx == 100
    challenger = windows.challenger[1]
    assert (challenger.outcome_trials, challenger.outcome_successes) == (4, 4)
    assert challenger.latency is not None
    assert challenger.latency.average == 30_000.0
    assert windows.champion[0].latency is None


def test_windows_use_the_percentiles_when_the_judge_compares_one() -> None:
    series = {
        ("champion", "requests"): {minute(0): 10.0},
        ("champion", "latency_count"): {minute(0): 10.0},
        ("champion", "latency_average"): {minute(0): 20.0},
        ("champion", "p50"): {minute(0): 15.0},
        ("champion", "p90"): {minute(0): 40.0},
        ("champion", "p99"): {minute(0): 90.0},
    }
    latency = windows_from_series(series, "champion", "challenger", "p99").champion[0].latency
    assert latency is not None
    assert (latency.p50, latency.p90, latency.p99) == (15.0, 40.0, 90.0)


def test_no_data_is_no_windows() -> None:
    windows = windows_from_series({}, "champion", "challenger")
    assert windows.champion == windows.challenger == ()


def test_the_first_look_comes_one_look_after_the_first_step_and_the_lease_still_covers_every_bake() -> None:
    churn = load_rollout_settings(ENVIRONMENT).endpoints["churn"]
    started = initial_state("exec-1", "churn", churn, PACKAGE, {"bake_minutes": 15})
    # Harm is looked for after every window, the first one included: the first Wait is a look, not a bake.
    assert started.bake_seconds == started.judge.look_seconds < 15 * 60
    request = started.request
    every_bake = len(request.challenger_shares) * request.max_bakes_per_step * 15 * 60
    assert planned_lease_seconds(started) >= every_bake + UPDATES_PER_ROLLOUT * UPDATE_ALLOWANCE_SECONDS


def test_only_a_rollback_begun_by_the_judges_too_little_data_is_inconclusive() -> None:
    too_little = {"action": "inconclusive", "reason": "too little data: at 2 requests/s ..."}
    stopped = RolloutState.model_validate(state(decision=too_little))
    assert stopped.stopped_for_too_little_data()
    assert stopped.failure_reason() == too_little["reason"]
    kept = stopped.model_copy(update={"rollback_reason": too_little["reason"]})
    assert kept.stopped_for_too_little_data()
    abort = {"Error": "Aborted", "Cause": "x"}
    aborted = RolloutState.model_validate(state(decision=too_little, error=abort))
    assert not aborted.stopped_for_too_little_data()
    harm = RolloutState.model_validate(state(decision={"action": "rollback", "reason": "judge: errors"}))
    assert not harm.stopped_for_too_little_data()


def test_a_human_gate_that_timed_out_says_which_gate_and_how_long_it_waited() -> None:
    timed_out = RolloutState.model_validate(
        state(
            approval_needed="50 %",
            approval_timeout_seconds=3600,
            error={"Error": "States.Timeout", "Cause": ""},
        )
    )
    assert timed_out.failure_reason() == "no answer at the human gate before 50 % within 60 min"
