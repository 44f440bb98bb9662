"""The weight plan and the decision after each judge verdict."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.rollout.judge import Verdict
from lambdas.rollout.payloads import (
    WEIGHT_WHOLE,
    RolloutRequest,
    StepAction,
    VariantNames,
    parse_rollout_request,
)
from lambdas.rollout.traffic import (
    DesiredWeight,
    InvalidWeights,
    StepPosition,
    decide,
    step_weights,
    validate_weights,
    weight_plan,
)

GROUP = "mlrollout-dev-churn"
VARIANTS = VariantNames()


def rollout(**overrides: Any) -> RolloutRequest:
    return parse_rollout_request(
        {
            "endpoint": "churn",
            "endpoint_name": "mlrollout-dev-churn",
            "model_package_arn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/2",
            "model_package_group": GROUP,
            "max_bakes_per_step": 3,
            **overrides,
        }
    )


CANARY = rollout(traffic_steps=[5, 25, 50, 100])


def at(step: int, bakes: int = 1, champion: int = 0, challenger: int = 0) -> StepPosition:
    return StepPosition(step, bakes, champion, challenger)


# --- the weight plan ------------------------------------------------------------------------------

increasing_plans = st.lists(st.integers(1, 99), min_size=1, max_size=8, unique=True).map(
    lambda shares: [*sorted(shares), 100]
)


@settings(derandomize=True, deadline=None)
@given(increasing_plans)
def test_every_step_of_the_plan_sums_to_the_whole(shares: list[int]) -> None:
    for champion, challenger in weight_plan(rollout(traffic_steps=shares)):
        assert champion.weight + challenger.weight == WEIGHT_WHOLE


@settings(derandomize=True, deadline=None)
@given(increasing_plans)
def test_the_challenger_share_never_decreases_along_the_plan(shares: list[int]) -> None:
    plan = weight_plan(rollout(traffic_steps=shares))
    assert all(later[1].weight >= earlier[1].weight for earlier, later in pairwise(plan))


@settings(derandomize=True, deadline=None)
@given(increasing_plans)
def test_the_final_step_gives_the_challenger_everything(shares: list[int]) -> None:
    champion, challenger = weight_plan(rollout(traffic_steps=shares))[-1]
    assert (champion.weight, challenger.weight) == (0.0, float(WEIGHT_WHOLE))


@settings(derandomize=True, deadline=None)
@given(st.integers(0, 100))
def test_step_weights_name_champion_then_challenger(share: int) -> None:
    champion, challenger = step_weights(share, VARIANTS)
    assert (champion.variant_name, challenger.variant_name) == ("champion", "challenger")
    assert challenger.weight == share


def test_step_weights_refuse_a_share_outside_0_to_100() -> None:
    with pytest.raises(InvalidWeights, match="within 0-100"):
        step_weights(101, VARIANTS)


def test_weights_are_requested_as_sagemaker_takes_them() -> None:
    assert DesiredWeight("challenger", 5.0).as_request() == {
        "VariantName": "challenger",
        "DesiredWeight": 5.0,
    }


@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        ([DesiredWeight("champion", 90.0), DesiredWeight("blue", 10.0)], "unknown variant"),
        ([DesiredWeight("champion", 90.0), DesiredWeight("champion", 10.0)], "more than once"),
        ([DesiredWeight("champion", 110.0), DesiredWeight("challenger", -10.0)], "within 0-100"),
        ([DesiredWeight("champion", 90.0), DesiredWeight("challenger", 20.0)], "add up to 100"),
    ],
)
def test_invalid_weights_are_refused_with_the_reason(weights: list[DesiredWeight], problem: str) -> None:
    with pytest.raises(InvalidWeights, match=problem):
        validate_weights(weights, VARIANTS)


# --- canary / linear ------------------------------------------------------------------------------


def test_rollback_verdict_rolls_back_at_any_step() -> None:
    decision = decide(CANARY, at(1), Verdict.ROLLBACK, "errors: rate ratio above tolerance")
    assert decision.action is StepAction.ROLLBACK
    assert "errors: rate ratio above tolerance" in decision.reason


def test_promote_verdict_before_the_last_judged_step_advances() -> None:
    decision = decide(CANARY, at(0), Verdict.PROMOTE)
    assert (decision.action, decision.next_step_index) == (StepAction.ADVANCE, 1)


def test_promote_verdict_at_the_last_judged_step_promotes() -> None:
    decision = decide(CANARY, at(2), Verdict.PROMOTE)
    assert (decision.action, decision.next_step_index) == (StepAction.PROMOTE, 3)


@pytest.mark.parametrize("verdict", [Verdict.CONTINUE, Verdict.INCONCLUSIVE])
def test_undecided_verdicts_keep_baking_while_bakes_remain(verdict: Verdict) -> None:
    decision = decide(CANARY, at(1, bakes=2), verdict)
    assert (decision.action, decision.next_step_index) == (StepAction.BAKE, 1)


def test_continue_with_bakes_spent_moves_to_the_next_step() -> None:
    decision = decide(CANARY, at(1, bakes=3), Verdict.CONTINUE)
    assert (decision.action, decision.next_step_index) == (StepAction.ADVANCE, 2)


def test_continue_with_bakes_spent_at_the_last_judged_step_rolls_back() -> None:
    decision = decide(CANARY, at(2, bakes=3), Verdict.CONTINUE)
    assert decision.action is StepAction.ROLLBACK
    assert "not shown non-inferior" in decision.reason


def test_inconclusive_with_bakes_spent_rolls_back_because_no_data_is_no_pass() -> None:
    decision = decide(CANARY, at(0, bakes=3), Verdict.INCONCLUSIVE)
    assert decision.action is StepAction.ROLLBACK
    assert "too little data" in decision.reason


def test_the_final_100_percent_step_is_not_judged() -> None:
    with pytest.raises(ValueError, match="not a judged step"):
        decide(CANARY, at(3), Verdict.PROMOTE)


def test_a_decision_needs_a_judged_bake() -> None:
    with pytest.raises(ValueError, match="bakes_done"):
        decide(CANARY, at(0, bakes=0), Verdict.PROMOTE)


# --- ab_test, shadow, blue_green ------------------------------------------------------------------

AB_TEST = rollout(strategy="ab_test", sample_budget=1000)


def test_ab_test_keeps_the_split_until_the_budget_is_spent() -> None:
    decision = decide(AB_TEST, at(0, bakes=50, champion=999, challenger=5000), Verdict.CONTINUE)
    assert (decision.action, decision.next_step_index) == (StepAction.BAKE, 0)


def test_ab_test_with_the_budget_spent_and_no_answer_keeps_the_champion() -> None:
    decision = decide(AB_TEST, at(0, bakes=2, champion=1000, challenger=1200), Verdict.INCONCLUSIVE)
    assert decision.action is StepAction.ROLLBACK
    assert "sample budget of 1000" in decision.reason


def test_ab_test_promotes_on_a_promote_verdict() -> None:
    assert decide(AB_TEST, at(0, bakes=9), Verdict.PROMOTE).action is StepAction.PROMOTE


def test_shadow_bakes_then_rolls_back_when_still_undecided() -> None:
    shadow = rollout(strategy="shadow")
    assert decide(shadow, at(0, bakes=2), Verdict.CONTINUE).action is StepAction.BAKE
    assert decide(shadow, at(0, bakes=3), Verdict.CONTINUE).action is StepAction.ROLLBACK
    assert decide(shadow, at(0, bakes=1), Verdict.PROMOTE).action is StepAction.PROMOTE


def test_blue_green_is_not_judged_step_by_step() -> None:
    blue_green = rollout(strategy="blue_green", blue_green={"rollback_alarm_names": ["a"]})
    with pytest.raises(ValueError, match="guardrails"):
        decide(blue_green, at(0), Verdict.CONTINUE)
    assert decide(blue_green, at(0), Verdict.ROLLBACK).action is StepAction.ROLLBACK


# --- properties of the decisions ------------------------------------------------------------------


def run_to_the_end(request: RolloutRequest, verdicts: list[Verdict]) -> tuple[StepAction, int]:
    """Drive a stepped rollout with a verdict per bake (repeating the last); the final action and bakes."""
    step, bakes, total = 0, 0, 0
    while total < 1000:  # far beyond any plan's bakes: a rollout that never ends fails here
        bakes += 1
        verdict = verdicts[min(total, len(verdicts) - 1)]
        total += 1
        decision = decide(request, at(step, bakes=bakes), verdict)
        if decision.action in (StepAction.PROMOTE, StepAction.ROLLBACK):
            return decision.action, total
        if decision.action is StepAction.ADVANCE:
            step, bakes = decision.next_step_index, 0
    raise AssertionError(f"no end after {total} bakes")


@settings(derandomize=True, deadline=None)
@given(increasing_plans, st.lists(st.sampled_from(list(Verdict)), min_size=1, max_size=40))
def test_a_stepped_rollout_always_ends_and_promotes_only_on_a_promote_verdict(
    shares: list[int], verdicts: list[Verdict]
) -> None:
    request = (
        rollout(traffic_steps=[*shares[:-1], 100]) if len(shares) > 1 else rollout(traffic_steps=[50, 100])
    )
    action, bakes = run_to_the_end(request, verdicts)
    judged_steps = len(request.challenger_shares) - 1
    assert bakes <= judged_steps * request.max_bakes_per_step
    if action is StepAction.PROMOTE:
        assert verdicts[min(bakes, len(verdicts)) - 1] is Verdict.PROMOTE


@settings(derandomize=True, deadline=None)
@given(increasing_plans)
def test_always_non_inferior_promotes_after_one_bake_per_judged_step(shares: list[int]) -> None:
    request = rollout(traffic_steps=shares)
    assert run_to_the_end(request, [Verdict.PROMOTE]) == (
        StepAction.PROMOTE,
        len(request.challenger_shares) - 1,
    )


@settings(derandomize=True, deadline=None)
@given(increasing_plans)
def test_never_enough_data_rolls_back_at_the_first_step(shares: list[int]) -> None:
    request = rollout(traffic_steps=shares)
    assert run_to_the_end(request, [Verdict.INCONCLUSIVE]) == (
        StepAction.ROLLBACK,
        request.max_bakes_per_step,
    )
