"""The rollout workflow's payloads: what a request may say, and the clear errors when it may not."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.rollout.judge import Verdict
from lambdas.rollout.payloads import (
    InvalidRolloutRequest,
    OutcomeStatus,
    RolloutOutcome,
    RolloutRequest,
    StepAction,
    StepOutcome,
    TrafficStep,
    package_group_of,
    parse_rollout_request,
)

GROUP = "mlrollout-dev-churn"
PACKAGE = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/3"


def request(**overrides: Any) -> dict[str, Any]:
    return {
        "endpoint": "churn",
        "endpoint_name": "mlrollout-dev-churn",
        "model_package_arn": PACKAGE,
        "model_package_group": GROUP,
        **overrides,
    }


def problems(raw: Any) -> str:
    with pytest.raises(InvalidRolloutRequest) as error:
        parse_rollout_request(raw)
    return str(error.value)


def test_challenger_shares_become_weights_that_make_the_whole() -> None:
    parsed = parse_rollout_request(request(traffic_steps=[5, 25, 100]))
    assert parsed.traffic_steps[0].weights == {"champion": 95, "challenger": 5}
    assert parsed.challenger_shares == (5, 25, 100)


def test_canary_without_steps_takes_the_default_plan() -> None:
    assert parse_rollout_request(request()).challenger_shares == (5, 25, 50, 100)


def test_full_weight_maps_are_accepted() -> None:
    steps = [{"weights": {"champion": 90, "challenger": 10}}, {"weights": {"champion": 0, "challenger": 100}}]
    assert parse_rollout_request(request(traffic_steps=steps)).challenger_shares == (10, 100)


def test_weights_that_do_not_add_up_are_refused() -> None:
    steps = [{"weights": {"champion": 90, "challenger": 20}}, 100]
    assert "add up to 100 percent, got 110" in problems(request(traffic_steps=steps))


def test_weights_outside_0_to_100_are_refused() -> None:
    steps = [{"weights": {"champion": 120, "challenger": -20}}, 100]
    assert "within 0-100 percent" in problems(request(traffic_steps=steps))


def test_a_step_for_an_unknown_variant_names_it() -> None:
    steps = [{"weights": {"champion": 90, "blue": 10}}, 100]
    message = problems(request(traffic_steps=steps))
    assert "unknown variant(s) ['blue']" in message
    assert "'champion' and 'challenger'" in message


def test_a_package_from_another_family_is_refused() -> None:
    other = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlrollout-dev-fraud/1"
    message = problems(request(model_package_arn=other))
    assert "belongs to group 'mlrollout-dev-fraud'" in message
    assert GROUP in message


def test_an_unversioned_package_arn_is_refused() -> None:
    unversioned = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-model"
    assert "not a versioned model package ARN" in problems(request(model_package_arn=unversioned))


def test_malformed_input_lists_every_problem_by_field() -> None:
    message = problems({"endpoint": "churn", "bake_minutes": "soon", "colour": "blue"})
    assert "endpoint_name: Field required" in message
    assert "bake_minutes:" in message
    assert "colour: unknown key" in message


def test_malformed_strategy_and_variants_are_reported_by_field() -> None:
    assert "strategy: Input should be" in problems(request(strategy=["canary"]))
    assert "variant names must be distinct" in problems(request(variants={"challenger": "champion"}))


def test_a_non_mapping_input_is_refused() -> None:
    assert "invalid rollout request" in problems(["churn"])


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([100], "at least one judged step below 100"),
        ([25, 5, 100], "strictly increase"),
        ([0, 100], "must give the challenger some traffic"),
        ([5, 50], "last step must give the challenger 100"),
    ],
)
def test_stepped_plans_must_rise_to_100(steps: list[int], expected: str) -> None:
    assert expected in problems(request(traffic_steps=steps))


def test_ab_test_takes_one_split_and_a_budget() -> None:
    parsed = parse_rollout_request(request(strategy="ab_test", sample_budget=5000))
    assert parsed.challenger_shares == (50,)
    assert "needs a sample_budget" in problems(request(strategy="ab_test"))
    assert "one fixed split" in problems(
        request(strategy="ab_test", sample_budget=10, traffic_steps=[50, 100])
    )


def test_shadow_runs_the_candidate_in_the_shadow_slot_without_steps() -> None:
    parsed = parse_rollout_request(request(strategy="shadow"))
    assert parsed.challenger_slot == "shadow"
    assert "takes no traffic_steps" in problems(request(strategy="shadow", traffic_steps=[5, 100]))


def test_blue_green_needs_rollback_alarms() -> None:
    assert "rollback_alarm_names" in problems(request(strategy="blue_green"))
    parsed = parse_rollout_request(
        request(strategy="blue_green", blue_green={"rollback_alarm_names": ["churn-unhealthy"]})
    )
    assert parsed.challenger_slot == "challenger"


def test_renamed_variants_are_used_for_the_shares() -> None:
    parsed = parse_rollout_request(
        request(variants={"champion": "blue", "challenger": "green"}, traffic_steps=[10, 100])
    )
    assert parsed.traffic_steps[0].weights == {"blue": 90, "green": 10}


def test_the_request_is_frozen() -> None:
    parsed = parse_rollout_request(request())
    with pytest.raises(ValidationError):
        parsed.bake_minutes = 1  # type: ignore[misc]


def test_traffic_step_share_of_an_absent_variant_is_zero() -> None:
    assert TrafficStep(weights={"champion": 100}).share("challenger") == 0


def test_package_group_is_read_from_the_arn() -> None:
    assert package_group_of(PACKAGE) == GROUP
    assert package_group_of("not-an-arn") is None


def test_rolled_back_and_failed_outcomes_need_a_reason() -> None:
    step = StepOutcome(
        step_index=0,
        challenger_percent=5,
        bake=1,
        verdict=Verdict.ROLLBACK,
        action=StepAction.ROLLBACK,
        reason="x",
    )
    with pytest.raises(ValidationError, match="needs a reason"):
        RolloutOutcome(
            status=OutcomeStatus.ROLLED_BACK, endpoint_name="e", model_package_arn=PACKAGE, steps=(step,)
        )
    with pytest.raises(ValidationError, match="needs a reason"):
        RolloutOutcome(status=OutcomeStatus.FAILED, endpoint_name="e", model_package_arn=PACKAGE, reason=" ")
    promoted = RolloutOutcome(status=OutcomeStatus.PROMOTED, endpoint_name="e", model_package_arn=PACKAGE)
    assert promoted.reason == ""


def test_request_round_trips_through_json() -> None:
    parsed = parse_rollout_request(request(traffic_steps=[10, 100]))
    assert RolloutRequest.model_validate_json(parsed.model_dump_json()) == parsed
