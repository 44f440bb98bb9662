"""Guardrails beyond the model: the alarms outside the stack in the config, and the cost arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from infra.config import ConfigError, load_config
from infra.endpoint_settings import endpoint_settings_document
from lambdas.rollout.abort import AlarmEvent, InvalidAbortTrigger, targets_for_alarm
from lambdas.rollout.guardrails import (
    COST_REASON,
    CostBasis,
    CostFromWindows,
    GuardrailSettings,
    alarm_name,
    compare_cost,
    cost_over_windows,
    cost_per_thousand,
)
from lambdas.rollout.judge import LatencyStats, RolloutWindows, VariantWindow, Verdict
from lambdas.rollout.ledger import EntryKind, LedgerEntry, summarize
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.settings import RolloutEndpoint
from lambdas.rollout.tasks.judge import _with_cost
from tests.unit.test_config import dev_document, write_env

DB_ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-db-cpu-high"


# --- cost arithmetic ----------------------------------------------------------------------------------


def test_cost_per_thousand_is_instance_hours_over_thousands_of_predictions() -> None:
    # Two ml.m5.large at $0.115 an hour serving 46,000 predictions an hour: $0.23 for 46 thousand.
    assert cost_per_thousand(0.115, 2, 46_000) == pytest.approx(0.005)


@pytest.mark.parametrize("predictions", [0.0, -1.0])
def test_cost_per_thousand_needs_predictions(predictions: float) -> None:
    with pytest.raises(ValueError, match="needs predictions"):
        cost_per_thousand(0.115, 1, predictions)


def test_a_model_forty_times_slower_needs_forty_times_the_instances() -> None:
    basis = CostBasis(instance_type="ml.m5.large", champion_instances=2, price_per_hour=0.115)
    compared = compare_cost(
        basis=basis,
        predictions_per_hour=36_000,
        champion_latency=2.0,
        challenger_latency=80.0,
        max_increase=0.2,
    )
    assert compared.challenger_instances == pytest.approx(80)
    assert compared.champion_cost_per_1000 == pytest.approx(0.115 * 2 * 1000 / 36_000)
    assert compared.challenger_cost_per_1000 == pytest.approx(40 * compared.champion_cost_per_1000)
    assert compared.increase == pytest.approx(39)
    assert compared.over_tolerance
    assert compared.reason().startswith(f"{COST_REASON}: ")
    assert "+3900%" in compared.reason()


def test_a_model_within_the_tolerance_passes_and_without_one_is_only_recorded() -> None:
    basis = CostBasis(instance_type="ml.m5.large", champion_instances=1, price_per_hour=0.115)
    within = compare_cost(
        basis=basis, predictions_per_hour=1000, champion_latency=10, challenger_latency=11.9, max_increase=0.2
    )
    assert within.increase == pytest.approx(0.19)
    assert not within.over_tolerance
    # A single-instance fleet is compared on the capacity it uses, not rounded up to 2 instances.
    assert within.whole_instances_needed == 2
    unjudged = compare_cost(
        basis=basis, predictions_per_hour=1000, champion_latency=10, challenger_latency=50, max_increase=None
    )
    assert unjudged.increase == pytest.approx(4)
    assert not unjudged.over_tolerance
    assert unjudged.figures()["max_increase"] is None


def test_comparing_a_type_without_a_price_names_it() -> None:
    basis = CostBasis(instance_type="ml.p5.48xlarge", champion_instances=1)
    with pytest.raises(ValueError, match=r"no on-demand price for ml\.p5\.48xlarge"):
        compare_cost(
            basis=basis, predictions_per_hour=10, champion_latency=1, challenger_latency=1, max_increase=0.2
        )


def window(requests: int, latency_us: float) -> VariantWindow:
    stats = LatencyStats(
        sample_count=requests, average=latency_us, p50=latency_us, p90=latency_us, p99=latency_us
    )
    return VariantWindow(requests=requests, latency=stats)


def test_cost_over_windows_takes_the_endpoints_load_and_each_variants_average_latency() -> None:
    # Three minutes at 75/25: 100 predictions a minute is 6,000 an hour.
    windows = RolloutWindows(
        champion=(window(75, 2_000), window(75, 2_000), window(75, 2_000)),
        challenger=(window(25, 60_000), window(25, 100_000), window(25, 80_000)),
    )
    basis = CostBasis(instance_type="ml.m5.large", champion_instances=1, price_per_hour=0.115)
    cost = cost_over_windows(windows, basis=basis, max_increase=0.2, min_latency_samples=50)
    compared = cost.comparison
    assert compared is not None
    assert compared.predictions_per_hour == pytest.approx(6000)
    assert compared.champion_latency_ms == pytest.approx(2.0)
    assert compared.challenger_latency_ms == pytest.approx(80.0)
    assert compared.over_tolerance
    record = cost.record()
    assert record["challenger_instances"] == pytest.approx(40)
    assert record["champion_cost_per_1000"] == pytest.approx(round(0.115 * 1000 / 6000, 6))


def test_cost_over_windows_waits_for_the_latency_samples() -> None:
    windows = RolloutWindows(champion=(window(75, 2_000),), challenger=(window(25, 80_000),))
    basis = CostBasis(instance_type="ml.m5.large", champion_instances=1, price_per_hour=0.115)
    cost = cost_over_windows(windows, basis=basis, max_increase=0.2, min_latency_samples=50)
    assert cost.comparison is None
    assert cost.record() == {"note": cost.note}
    assert "25 challenger latency samples, 50 each needed" in cost.note


# --- guardrail alarms ---------------------------------------------------------------------------------


def test_an_alarm_is_named_by_its_name_or_its_arn() -> None:
    settings = GuardrailSettings(alarms=("payments-api-5xx", DB_ALARM_ARN))
    assert settings.alarm_names == ("payments-api-5xx", "orders-db-cpu-high")
    assert alarm_name(DB_ALARM_ARN) == "orders-db-cpu-high"


@pytest.mark.parametrize(
    ("alarms", "problem"),
    [
        (["arn:aws:sns:us-east-1:123456789012:topic"], "is not a CloudWatch alarm ARN"),
        (["arn:aws:cloudwatch:us-east-1:1234:alarm:x"], "is not a CloudWatch alarm ARN"),
        ([" padded "], "leading or trailing blanks"),
        (["x" * 256], "longer than 255"),
        (["db-cpu", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu"], "named more than once"),
    ],
)
def test_bad_alarm_references_are_refused_naming_them(alarms: list[str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        GuardrailSettings.model_validate({"alarms": alarms})


def load_with(tmp_path: Path, **guardrails: Any) -> Any:
    document = dev_document()
    document["rollout"]["guardrails"] = guardrails
    write_env(tmp_path, document)
    return load_config("dev", tmp_path)


@pytest.mark.parametrize(
    ("guardrails", "problem"),
    [
        ({"alarms": ["mlrollout-dev-churn-unhealthy"]}, "named like this environment's own alarms"),
        (
            {"alarms": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:db"]},
            "is in eu-west-1, the stack in us-east-1",
        ),
        ({"max_cost_increase": -0.1}, "rollout.guardrails.max_cost_increase"),
        ({"alarm": ["db"]}, "rollout.guardrails.alarm"),
    ],
)
def test_bad_guardrails_fail_the_config_naming_the_field(
    tmp_path: Path, guardrails: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_with(tmp_path, **guardrails)


def test_a_cost_tolerance_needs_a_price_for_the_endpoints_instance_type(tmp_path: Path) -> None:
    document = dev_document()
    document["endpoints"][0]["instance_type"] = "ml.p5.48xlarge"
    document["rollout"]["guardrails"] = {"max_cost_increase": 0.2}
    write_env(tmp_path, document)
    with pytest.raises(
        ConfigError, match=r"no on-demand price for ml\.p5\.48xlarge: add it to instance_prices"
    ):
        load_config("dev", tmp_path)
    document["instance_prices"] = {"ml.p5.48xlarge": 63.0}
    write_env(tmp_path, document)
    assert load_config("dev", tmp_path).prices["ml.p5.48xlarge"] == 63.0


@pytest.mark.parametrize(
    ("prices", "problem"),
    [
        ({"m5.large": 0.1}, "not SageMaker instance types (ml.<family>.<size>): ['m5.large']"),
        ({"ml.m5.large": 0}, "prices must be positive USD per hour below 1000, got {'ml.m5.large': 0"),
    ],
)
def test_bad_instance_prices_are_refused(tmp_path: Path, prices: dict[str, float], problem: str) -> None:
    document = dev_document()
    document["instance_prices"] = prices
    write_env(tmp_path, document)
    with pytest.raises(ConfigError) as raised:
        load_config("dev", tmp_path)
    assert problem in str(raised.value)


def test_an_endpoint_overrides_the_environments_guardrails_and_its_settings_carry_them(
    tmp_path: Path,
) -> None:
    document = dev_document()
    document["rollout"]["guardrails"] = {"alarms": ["shared-network-errors"], "max_cost_increase": 0.2}
    document["endpoints"][0]["rollout"] = {"guardrails": {"alarms": [DB_ALARM_ARN], "max_cost_increase": 0.5}}
    document["instance_prices"] = {"ml.m5.large": 0.2}
    write_env(tmp_path, document)
    config = load_config("dev", tmp_path)
    endpoint = config.endpoints[0]
    assert config.rollout_for(endpoint).guardrails == GuardrailSettings(
        alarms=(DB_ALARM_ARN,), max_cost_increase=0.5
    )
    settings = RolloutEndpoint.model_validate(
        endpoint_settings_document(
            config,
            endpoint,
            endpoint_name="mlrollout-dev-churn",
            champion="champion",
            challenger="challenger",
            model_package_group="mlrollout-dev-churn-classifier",
            execution_role_arn="arn:aws:iam::123456789012:role/x",
            rollback_alarm_names=[],
        )
    )
    assert settings.rollout.guardrails.alarm_names == ("orders-db-cpu-high",)
    assert settings.instance_prices == {"ml.m5.large": 0.2}
    assert settings.cost_basis("ml.m5.large", 3).price_per_hour == 0.2


def alarm_event(name: str, state: str = "ALARM") -> AlarmEvent:
    return AlarmEvent.model_validate(
        {
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed"}},
        }
    )


def endpoint_guarded_by(*alarms: str) -> RolloutEndpoint:
    return RolloutEndpoint.model_validate(
        {
            "endpoint_name": "mlrollout-dev-churn",
            "champion": "champion",
            "challenger": "challenger",
            "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
            "model_package_group": "mlrollout-dev-churn-classifier",
            "execution_role_arn": "arn:aws:iam::123456789012:role/x",
            "abort_alarm_name": "mlrollout-dev-churn-unhealthy",
            "rollout": {"guardrails": {"alarms": list(alarms)}},
        }
    )


def test_a_guardrail_alarm_in_alarm_aborts_every_endpoint_it_guards_naming_it() -> None:
    endpoints = {
        "churn": endpoint_guarded_by(DB_ALARM_ARN),
        "upsell": endpoint_guarded_by("orders-db-cpu-high", "other"),
        "fraud": endpoint_guarded_by("other"),
    }
    targets = targets_for_alarm(alarm_event("orders-db-cpu-high"), endpoints)
    assert [t.endpoint for t in targets] == ["churn", "upsell"]
    assert targets[0].reason == "guardrail alarm orders-db-cpu-high in ALARM: Threshold Crossed"
    assert targets_for_alarm(alarm_event("orders-db-cpu-high", state="OK"), endpoints) == []


def test_an_alarm_guarding_nothing_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(InvalidAbortTrigger, match="orders-db-cpu-high"):
        targets_for_alarm(alarm_event("unrelated"), {"churn": endpoint_guarded_by("orders-db-cpu-high")})


# --- the judge task's use of it -----------------------------------------------------------------------


def slow_challenger_cost(max_increase: float | None) -> CostFromWindows:
    windows = RolloutWindows(champion=(window(300, 2_000),), challenger=(window(100, 80_000),))
    basis = CostBasis(instance_type="ml.m5.large", champion_instances=1, price_per_hour=0.115)
    return cost_over_windows(windows, basis=basis, max_increase=max_increase, min_latency_samples=100)


def step(action: StepAction, reason: str) -> StepOutcome:
    return StepOutcome(
        step_index=0, challenger_percent=25, bake=1, verdict=Verdict.CONTINUE, action=action, reason=reason
    )


@pytest.mark.parametrize(
    "action", [StepAction.BAKE, StepAction.ADVANCE, StepAction.PROMOTE, StepAction.INCONCLUSIVE]
)
def test_a_challenger_over_the_cost_tolerance_is_rolled_back_for_cost_whatever_the_judge_said(
    action: StepAction,
) -> None:
    decided = _with_cost(step(action, "judge: undecided"), slow_challenger_cost(0.2))
    assert decided.action is StepAction.ROLLBACK
    assert decided.reason.startswith("cost: ")


def test_the_judges_own_rollback_is_named_after_the_cost() -> None:
    decided = _with_cost(step(StepAction.ROLLBACK, "judge: latency harm"), slow_challenger_cost(0.2))
    assert decided.action is StepAction.ROLLBACK
    assert decided.reason.startswith("cost: ")
    assert decided.reason.endswith("; and judge: latency harm")


def test_without_a_tolerance_or_a_comparison_the_judge_decides() -> None:
    bake = step(StepAction.BAKE, "judge: undecided")
    assert _with_cost(bake, slow_challenger_cost(None)) == bake
    assert _with_cost(bake, None) == bake


def test_the_packages_metadata_carries_the_last_cost_comparison() -> None:
    cost = slow_challenger_cost(0.2).record()
    entries = [
        LedgerEntry(
            rollout_id="r",
            sequence=0,
            recorded_at=1,
            kind=EntryKind.JUDGE_VERDICT,
            payload={"cost": {"note": "not yet"}},
        ),
        LedgerEntry(
            rollout_id="r", sequence=1, recorded_at=2, kind=EntryKind.JUDGE_VERDICT, payload={"cost": cost}
        ),
    ]
    summary = summarize(entries)
    assert summary["rollout.cost"] == (
        f"usd_per_1000 challenger={cost['challenger_cost_per_1000']} "
        f"champion={cost['champion_cost_per_1000']} increase=+3900pct instances=40.0/1 ml.m5.large"
    )
    assert "rollout.cost" not in summarize(entries[:1])
