"""The weight plan."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.rollout.payloads import (
    WEIGHT_WHOLE,
    RolloutRequest,
    VariantNames,
    parse_rollout_request,
)
from lambdas.rollout.traffic import (
    DesiredWeight,
    InvalidWeights,
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
