"""The router's choice: sticky, monotonic in the challenger's weight, flags first, champion on doubt."""

from __future__ import annotations

import itertools
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.flags import EndpointFlags, EndpointVariants, KillSwitch, SegmentPin, UserPin
from lambdas.serving.ports import TrafficSplit
from lambdas.serving.routing import (
    RouteReason,
    Unavailable,
    challenger_share,
    choose_variant,
    hash_point,
)

VARIANTS = EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")
SHADOW = EndpointVariants(endpoint="fraud", champion="champion", challenger=None)

user_ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.@", min_size=1, max_size=24).filter(
    lambda text: text[0].isalnum()
)
segments = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
percent = st.integers(min_value=0, max_value=100)
variant_names = st.sampled_from(VARIANTS.pinnable)


ROLLOUT = "mlrollout-dev-churn-deploy-0a1b2c3d4e"
HASH_OF_USER_1 = 0.8974511940183784


def traffic_for(challenger_percent: int, rollout_key: str = ROLLOUT) -> TrafficSplit:
    weights = {"champion": float(100 - challenger_percent), "challenger": float(challenger_percent)}
    return TrafficSplit(weights, rollout_key)


@st.composite
def endpoint_flags(draw: st.DrawFn) -> EndpointFlags:
    """Any flag state of the churn endpoint: kill switch on or off, pins on or off."""
    kill_on = draw(st.booleans())
    segment_pin = draw(
        st.none()
        | st.builds(
            SegmentPin, segments=st.lists(segments, min_size=1, max_size=3).map(tuple), variant=variant_names
        )
    )
    user_pin = draw(
        st.none()
        | st.builds(
            UserPin, users=st.lists(user_ids, min_size=1, max_size=3).map(tuple), variant=variant_names
        )
    )
    return EndpointFlags(
        endpoint=VARIANTS, kill_switch=KillSwitch(on=kill_on), segment_pin=segment_pin, user_pin=user_pin
    )


NO_FLAGS = EndpointFlags(endpoint=VARIANTS)
# Same examples on every run (no flaky CI), no deadline on a busy machine.
PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True)


@PROPERTIES
@given(user_id=user_ids, challenger_percent=percent)
def test_same_user_and_weights_get_the_same_variant(user_id: str, challenger_percent: int) -> None:
    choices = {
        choose_variant(
            flags=NO_FLAGS,
            variants=VARIANTS,
            traffic=traffic_for(challenger_percent),
            user_id=user_id,
            segment=None,
        )
        for _ in range(3)
    }
    assert len(choices) == 1
    assert next(iter(choices)).reason is RouteReason.STICKY_HASH


def test_hash_point_is_stable_across_processes() -> None:
    # A fixed value: Python's salted hash() would differ between Lambda containers and break stickiness.
    assert hash_point("churn", "user-1", ROLLOUT) == pytest.approx(HASH_OF_USER_1, abs=1e-15)
    assert hash_point("churn", "user-1", ROLLOUT) != hash_point("fraud", "user-1", ROLLOUT)
    assert hash_point("churn", "user-1", ROLLOUT) != hash_point("churn", "user-1", ROLLOUT + "x")


def cohort(rollout_key: str, challenger_percent: int, users: list[str]) -> set[str]:
    """The users a rollout sends to the challenger at this weight."""
    return {
        user
        for user in users
        if choose_variant(
            flags=NO_FLAGS,
            variants=VARIANTS,
            traffic=traffic_for(challenger_percent, rollout_key),
            user_id=user,
            segment=None,
        ).target_variant
        == "challenger"
    }


def test_two_rollouts_first_five_percent_overlap_as_chance_says_not_entirely() -> None:
    users = [f"user-{number:06d}" for number in range(100_000)]
    first = cohort("mlrollout-dev-churn-deploy-1111111111", 5, users)
    second = cohort("mlrollout-dev-churn-deploy-2222222222", 5, users)
    assert len(first) == pytest.approx(5_000, rel=0.06)
    assert len(second) == pytest.approx(5_000, rel=0.06)
    # Independent 5 % draws share 5 % of a cohort: about 250 users (binomial sd about 15), not 5 000.
    shared = len(first & second) / len(first)
    assert shared == pytest.approx(0.05, abs=0.01)


def test_within_a_rollout_the_cohort_only_grows() -> None:
    users = [f"user-{number:06d}" for number in range(20_000)]
    cohorts = [cohort(ROLLOUT, percent, users) for percent in (5, 25, 50, 100)]
    assert all(smaller <= larger for smaller, larger in itertools.pairwise(cohorts))
    assert cohorts[-1] == set(users)


@PROPERTIES
@given(user_id=user_ids, rollout_key=st.text(max_size=63), challenger_percent=percent)
def test_a_pinned_user_gets_its_variant_in_every_rollout(
    user_id: str, rollout_key: str, challenger_percent: int
) -> None:
    flags = EndpointFlags(endpoint=VARIANTS, user_pin=UserPin(users=(user_id,), variant="champion"))
    decision = choose_variant(
        flags=flags,
        variants=VARIANTS,
        traffic=traffic_for(challenger_percent, rollout_key),
        user_id=user_id,
        segment=None,
    )
    assert (decision.target_variant, decision.reason) == ("champion", RouteReason.USER_PIN)


@PROPERTIES
@given(user_id=user_ids, low=percent, high=percent)
def test_a_challenger_user_stays_in_the_challenger_as_its_weight_grows(
    user_id: str, low: int, high: int
) -> None:
    low, high = sorted((low, high))
    before = choose_variant(
        flags=NO_FLAGS, variants=VARIANTS, traffic=traffic_for(low), user_id=user_id, segment=None
    )
    after = choose_variant(
        flags=NO_FLAGS, variants=VARIANTS, traffic=traffic_for(high), user_id=user_id, segment=None
    )
    if before.target_variant == "challenger":
        assert after.target_variant == "challenger"
    if after.target_variant == "champion":
        assert before.target_variant == "champion"


@PROPERTIES
@given(
    flags=endpoint_flags(),
    user_id=st.none() | user_ids,
    segment=st.none() | segments,
    challenger_percent=percent,
)
def test_kill_switch_sends_everything_to_the_champion(
    flags: EndpointFlags, user_id: str | None, segment: str | None, challenger_percent: int
) -> None:
    killed = flags.model_copy(update={"kill_switch": KillSwitch(on=True, reason="bad model")})
    decision = choose_variant(
        flags=killed,
        variants=VARIANTS,
        traffic=traffic_for(challenger_percent),
        user_id=user_id,
        segment=segment,
    )
    assert decision.target_variant == "champion"
    assert decision.reason is RouteReason.KILL_SWITCH
    assert "bad model" in decision.detail


@PROPERTIES
@given(user_id=user_ids, segment=segments, pinned=variant_names, challenger_percent=percent)
def test_an_allow_listed_user_gets_the_pinned_variant_whatever_the_weights(
    user_id: str, segment: str, pinned: str, challenger_percent: int
) -> None:
    other = "champion" if pinned == "challenger" else "challenger"
    flags = EndpointFlags(
        endpoint=VARIANTS,
        user_pin=UserPin(users=(user_id,), variant=pinned),
        segment_pin=SegmentPin(segments=(segment,), variant=other),
    )
    decision = choose_variant(
        flags=flags,
        variants=VARIANTS,
        traffic=traffic_for(challenger_percent),
        user_id=user_id,
        segment=segment,
    )
    assert (decision.target_variant, decision.reason) == (pinned, RouteReason.USER_PIN)


@PROPERTIES
@given(user_id=st.none() | user_ids, segment=segments, pinned=variant_names, challenger_percent=percent)
def test_a_pinned_segment_beats_the_hash(
    user_id: str | None, segment: str, pinned: str, challenger_percent: int
) -> None:
    flags = EndpointFlags(endpoint=VARIANTS, segment_pin=SegmentPin(segments=(segment,), variant=pinned))
    decision = choose_variant(
        flags=flags,
        variants=VARIANTS,
        traffic=traffic_for(challenger_percent),
        user_id=user_id,
        segment=segment,
    )
    assert (decision.target_variant, decision.reason) == (pinned, RouteReason.SEGMENT_PIN)


@PROPERTIES
@given(user_id=st.none() | user_ids, segment=st.none() | segments, challenger_percent=percent)
def test_unreadable_flags_fail_safe_to_the_champion(
    user_id: str | None, segment: str | None, challenger_percent: int
) -> None:
    decision = choose_variant(
        flags=Unavailable("AppConfig timed out"),
        variants=VARIANTS,
        traffic=traffic_for(challenger_percent),
        user_id=user_id,
        segment=segment,
    )
    assert (decision.target_variant, decision.reason) == ("champion", RouteReason.FLAGS_UNAVAILABLE)
    assert "AppConfig timed out" in decision.detail


@pytest.mark.parametrize("challenger_percent", [5, 25, 50, 90])
def test_share_of_hashed_users_in_the_challenger_matches_its_weight(challenger_percent: int) -> None:
    rng = random.Random(20261125 + challenger_percent)
    users = [f"user-{rng.getrandbits(64):016x}" for _ in range(20_000)]
    in_challenger = sum(
        choose_variant(
            flags=NO_FLAGS,
            variants=VARIANTS,
            traffic=traffic_for(challenger_percent),
            user_id=user,
            segment=None,
        ).target_variant
        == "challenger"
        for user in users
    )
    # 20 000 users: the binomial standard deviation is at most 0.0036; 0.015 is over four of them.
    assert in_challenger / len(users) == pytest.approx(challenger_percent / 100, abs=0.015)


def test_without_a_user_id_sagemaker_splits() -> None:
    decision = choose_variant(
        flags=NO_FLAGS, variants=VARIANTS, traffic=traffic_for(25), user_id=None, segment="x"
    )
    assert (decision.target_variant, decision.reason) == (None, RouteReason.SAGEMAKER_SPLIT)


def test_unreadable_weights_let_sagemaker_split() -> None:
    decision = choose_variant(
        flags=NO_FLAGS, variants=VARIANTS, traffic=Unavailable("throttled"), user_id="u-1", segment=None
    )
    assert (decision.target_variant, decision.reason) == (None, RouteReason.WEIGHTS_UNAVAILABLE)


def test_a_shadow_endpoint_is_not_targeted() -> None:
    decision = choose_variant(
        flags=EndpointFlags(endpoint=SHADOW),
        variants=SHADOW,
        traffic=TrafficSplit({"champion": 1.0}, ROLLOUT),
        user_id="u",
        segment=None,
    )
    assert (decision.target_variant, decision.reason) == (None, RouteReason.NO_CHALLENGER)


@pytest.mark.parametrize(
    ("weights", "share"),
    [
        ({"champion": 95.0, "challenger": 5.0}, 0.05),
        ({"champion": 1.0}, 0.0),
        ({"challenger": 2.0}, 1.0),
        ({"champion": 0.0, "challenger": 0.0}, None),
        ({"champion": 3.0, "challenger": 1.0, "other": 96.0}, 0.25),
    ],
)
def test_challenger_share_counts_only_champion_and_challenger(
    weights: dict[str, float], share: float | None
) -> None:
    assert challenger_share(weights, VARIANTS) == share
