"""The rollout's one decision path: what the judge sees at a look and what the rollout does next."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.rollout.decision import (
    SAMPLE_RATIO_MISMATCH,
    TOO_LITTLE_DATA,
    Look,
    decide_look,
    evidence_range,
    next_action,
    step_windows,
)
from lambdas.rollout.judge import (
    JudgeResult,
    JudgeSettings,
    LatencyStats,
    RolloutWindows,
    VariantWindow,
    Verdict,
)
from lambdas.rollout.payloads import RolloutRequest, StepAction, parse_rollout_request

GROUP = "mlrollout-dev-churn"
BAKE = 600
SETTINGS = JudgeSettings(metrics=("errors",), min_requests=200)


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


def result(verdict: Verdict, reason: str = "the judge's reason") -> JudgeResult:
    return JudgeResult(verdict=verdict, reason=reason, evidence=())


def served(challenger_requests: int, minutes: int = 10, start: int = 0) -> RolloutWindows:
    """This step's minutes: the champion 2000 requests a minute, the challenger its share."""
    per_minute = challenger_requests // minutes

    def minute(requests: int) -> VariantWindow:
        latency = LatencyStats(sample_count=requests, average=90.0, p50=80.0, p90=150.0, p99=250.0)
        return VariantWindow(requests=requests, latency=latency if requests else None)

    return RolloutWindows(
        champion=tuple(minute(2000) for _ in range(minutes)),
        challenger=tuple(minute(per_minute) for _ in range(minutes)),
        period_starts=tuple(start + 60 * m for m in range(minutes)),
    )


def at(step: int, elapsed: int = BAKE, looks: int = 1) -> Look:
    return Look(
        rollout_started_at=0, step_index=step, step_started_at=1000, looks_done=looks, now=1000 + elapsed
    )


ENOUGH = served(5000)


# --- what the judge sees --------------------------------------------------------------------------


def test_the_evidence_runs_from_the_rollouts_start_to_the_last_whole_minute() -> None:
    look = Look(rollout_started_at=120, step_index=2, step_started_at=3000, looks_done=4, now=3725)
    assert evidence_range(look) == (120, 3720)


def test_a_look_refuses_times_out_of_order() -> None:
    with pytest.raises(ValueError, match="rollout start <= step start <= now"):
        Look(rollout_started_at=0, step_index=0, step_started_at=100, looks_done=0, now=50)


def test_the_step_windows_are_those_since_the_step_started() -> None:
    windows = served(600, minutes=6, start=0)
    step = step_windows(windows, 180)
    assert step.period_starts == (180, 240, 300)
    assert len(step.challenger) == 3


# --- canary / linear ------------------------------------------------------------------------------


def test_harm_rolls_back_at_any_look_even_before_the_bake_ends() -> None:
    action, _, reason = next_action(
        CANARY, SETTINGS, at(1, elapsed=60), result(Verdict.ROLLBACK, "errors"), ENOUGH
    )
    assert action is StepAction.ROLLBACK
    assert reason == "judge: errors"


@pytest.mark.parametrize("verdict", [Verdict.PROMOTE, Verdict.CONTINUE, Verdict.INCONCLUSIVE])
def test_no_step_ends_before_its_bake(verdict: Verdict) -> None:
    action, index, _ = next_action(CANARY, SETTINGS, at(0, elapsed=BAKE - 60), result(verdict), ENOUGH)
    assert (action, index) == (StepAction.BAKE, 0)


def test_a_promote_verdict_after_the_bake_advances_then_promotes_at_the_last_judged_step() -> None:
    assert next_action(CANARY, SETTINGS, at(0), result(Verdict.PROMOTE), ENOUGH)[:2] == (
        StepAction.ADVANCE,
        1,
    )
    assert next_action(CANARY, SETTINGS, at(2), result(Verdict.PROMOTE), ENOUGH)[:2] == (
        StepAction.PROMOTE,
        3,
    )


def test_below_the_last_judged_step_a_step_ends_once_it_served_its_minimum_samples() -> None:
    action, index, reason = next_action(CANARY, SETTINGS, at(0), result(Verdict.CONTINUE), ENOUGH)
    assert (action, index) == (StepAction.ADVANCE, 1)
    assert "minimum samples" in reason
    short = served(150)
    assert next_action(CANARY, SETTINGS, at(0), result(Verdict.CONTINUE), short)[0] is StepAction.BAKE


def test_the_last_judged_step_needs_a_promote_verdict() -> None:
    assert next_action(CANARY, SETTINGS, at(2), result(Verdict.CONTINUE), ENOUGH)[0] is StepAction.BAKE
    # The earlier steps took their longest bakes: the last one has its own, 30 min.
    spent = Look(rollout_started_at=0, step_index=2, step_started_at=3600, looks_done=29, now=3600 + 3 * BAKE)
    action, _, reason = next_action(CANARY, SETTINGS, spent, result(Verdict.CONTINUE), ENOUGH)
    assert action is StepAction.ROLLBACK
    assert reason.startswith("not shown non-inferior at 50 % after 30 min")


def test_the_last_judged_step_may_use_the_time_earlier_steps_did_not_need() -> None:
    # The first two steps took 10 min each: the judged plan (3 x 30 min) leaves the last one 70 min.
    early = Look(rollout_started_at=0, step_index=2, step_started_at=1200, looks_done=29, now=1200 + 3 * BAKE)
    assert next_action(CANARY, SETTINGS, early, result(Verdict.CONTINUE), ENOUGH)[0] is StepAction.BAKE
    late = Look(rollout_started_at=0, step_index=2, step_started_at=1200, looks_done=69, now=1200 + 7 * BAKE)
    assert next_action(CANARY, SETTINGS, late, result(Verdict.CONTINUE), ENOUGH)[0] is StepAction.ROLLBACK


def test_a_step_without_its_samples_at_its_longest_bake_stops_for_too_little_data() -> None:
    action, _, reason = next_action(
        CANARY, SETTINGS, at(1, elapsed=3 * BAKE), result(Verdict.INCONCLUSIVE), served(150)
    )
    assert action is StepAction.INCONCLUSIVE
    assert reason.startswith(f"{TOO_LITTLE_DATA} at 25 % after 30 min")
    assert "150/200 requests" in reason
    assert "what would fit: longer bakes" in reason


def test_the_first_look_says_when_the_traffic_cannot_meet_the_plan_and_what_would() -> None:
    # 20 challenger requests a minute at 5 %: 200 requests take 10 min; 1000 would take 50 min > 30 min.
    strict = JudgeSettings(metrics=("errors",), min_requests=1000)
    few = RolloutWindows(
        champion=tuple(VariantWindow(requests=380) for _ in range(10)),
        challenger=tuple(VariantWindow(requests=20) for _ in range(10)),
        period_starts=tuple(1000 + 60 * m for m in range(10)),
    )
    action, _, reason = next_action(CANARY, strict, at(0, looks=0), result(Verdict.INCONCLUSIVE), few)
    assert action is StepAction.INCONCLUSIVE
    assert reason.startswith(f"{TOO_LITTLE_DATA}: at 6.67 requests/s the first step (5 %) needs about 50 min")
    assert "bake_minutes >= 17" in reason
    assert "a first step of >= 9 %" in reason
    assert (
        next_action(CANARY, SETTINGS, at(0, looks=0), result(Verdict.INCONCLUSIVE), few)[0] is StepAction.BAKE
    )


def test_the_plan_is_checked_on_the_first_whole_minute_the_step_served() -> None:
    # The step began mid-minute: its first look (a minute later) reads no whole minute of it, the second
    # reads one. The rate is over the minutes read (400 requests in 60 s), not the step's age (120 s).
    strict = JudgeSettings(metrics=("errors",), min_requests=1000)
    one_minute = RolloutWindows(
        champion=(VariantWindow(requests=380),),
        challenger=(VariantWindow(requests=20),),
        period_starts=(1080,),
    )
    second_look = Look(rollout_started_at=0, step_index=0, step_started_at=1030, looks_done=1, now=1150)
    action, _, reason = next_action(CANARY, strict, second_look, result(Verdict.INCONCLUSIVE), one_minute)
    assert action is StepAction.INCONCLUSIVE
    assert reason.startswith(f"{TOO_LITTLE_DATA}: at 6.67 requests/s the first step (5 %)")


def test_after_the_first_bake_the_plan_check_gives_way_to_the_steps_longest_bake() -> None:
    strict = JudgeSettings(metrics=("errors",), min_requests=1000)
    few = served(200, minutes=11, start=1000)
    later = at(0, elapsed=BAKE + 60, looks=10)
    assert next_action(CANARY, strict, later, result(Verdict.INCONCLUSIVE), few)[0] is StepAction.BAKE


def test_without_any_traffic_yet_the_first_look_bakes_on() -> None:
    empty = served(0)
    quiet = RolloutWindows(champion=(), challenger=(), period_starts=())
    for windows in (empty, quiet):
        assert next_action(CANARY, SETTINGS, at(0, looks=0), result(Verdict.INCONCLUSIVE), windows)[0] is (
            StepAction.BAKE
        )


def test_the_final_100_percent_step_is_not_judged() -> None:
    with pytest.raises(ValueError, match="not a judged step"):
        next_action(CANARY, SETTINGS, at(3), result(Verdict.CONTINUE), ENOUGH)


# --- ab_test, shadow, blue_green ------------------------------------------------------------------


def test_ab_test_keeps_the_split_until_the_budget_is_spent() -> None:
    ab = rollout(strategy="ab_test", traffic_steps=[50], sample_budget=4000)
    assert next_action(ab, SETTINGS, at(0), result(Verdict.CONTINUE), served(2000))[0] is StepAction.BAKE
    action, _, reason = next_action(ab, SETTINGS, at(0), result(Verdict.CONTINUE), served(5000))
    assert action is StepAction.ROLLBACK
    assert "sample budget of 4000" in reason
    assert next_action(ab, SETTINGS, at(0, elapsed=60), result(Verdict.PROMOTE), served(100))[0] is (
        StepAction.PROMOTE
    )


def test_shadow_bakes_then_stops_when_still_undecided() -> None:
    shadow = rollout(strategy="shadow")
    assert next_action(shadow, SETTINGS, at(0), result(Verdict.CONTINUE), ENOUGH)[0] is StepAction.BAKE
    assert next_action(shadow, SETTINGS, at(0), result(Verdict.PROMOTE), ENOUGH)[0] is StepAction.PROMOTE
    action, _, reason = next_action(
        shadow, SETTINGS, at(0, elapsed=3 * BAKE), result(Verdict.CONTINUE), ENOUGH
    )
    assert action is StepAction.ROLLBACK
    assert "mirrored traffic" in reason


def test_blue_green_is_not_judged_step_by_step() -> None:
    blue_green = rollout(strategy="blue_green", blue_green={"rollback_alarm_names": ["a"]})
    with pytest.raises(ValueError, match="guardrails"):
        decide_look(blue_green, SETTINGS, at(0), ENOUGH)


# --- properties of the decisions ------------------------------------------------------------------

increasing_plans = st.lists(st.integers(1, 99), min_size=1, max_size=6, unique=True).map(
    lambda shares: [*sorted(shares), 100]
)


def run_to_the_end(request: RolloutRequest, verdicts: list[Verdict]) -> tuple[StepAction, int]:
    """Drive a stepped rollout with a verdict per look (repeating the last); the final action and looks."""
    step, started, looks, now, total = 0, 0, 0, BAKE, 0
    while total < 10_000:  # far beyond any plan's looks: a rollout that never ends fails here
        verdict = verdicts[min(total, len(verdicts) - 1)]
        total += 1
        look = Look(0, step, started, looks, now)
        action, index, _ = next_action(request, SETTINGS, look, result(verdict), ENOUGH)
        if action in (StepAction.PROMOTE, StepAction.ROLLBACK, StepAction.INCONCLUSIVE):
            return action, total
        if action is StepAction.ADVANCE:
            step, started, looks = index, now, 0
        else:
            looks += 1
        now += SETTINGS.look_seconds
    raise AssertionError(f"no end after {total} looks")


@settings(derandomize=True, deadline=None, max_examples=50)
@given(increasing_plans, st.lists(st.sampled_from(list(Verdict)), min_size=1, max_size=40))
def test_a_stepped_rollout_always_ends_and_promotes_only_on_a_promote_verdict(
    shares: list[int], verdicts: list[Verdict]
) -> None:
    request = (
        rollout(traffic_steps=[*shares[:-1], 100]) if len(shares) > 1 else rollout(traffic_steps=[50, 100])
    )
    action, looks = run_to_the_end(request, verdicts)
    judged_steps = len(request.challenger_shares) - 1
    assert looks <= judged_steps * request.max_bakes_per_step * BAKE // SETTINGS.look_seconds + 1
    if action is StepAction.PROMOTE:
        assert verdicts[min(looks, len(verdicts)) - 1] is Verdict.PROMOTE


# --- the sample-ratio check -----------------------------------------------------------------------


def split_minutes(champion: int, challenger: int, minutes: int, start: int) -> RolloutWindows:
    def minute(requests: int) -> VariantWindow:
        latency = LatencyStats(sample_count=requests, average=90.0, p50=80.0, p90=150.0, p99=250.0)
        return VariantWindow(requests=requests, latency=latency)

    return RolloutWindows(
        champion=tuple(minute(champion) for _ in range(minutes)),
        challenger=tuple(minute(challenger) for _ in range(minutes)),
        period_starts=tuple(start + 60 * m for m in range(minutes)),
    )


def test_a_sample_ratio_mismatch_rolls_back_whatever_the_metrics_say() -> None:
    # At 25 % the challenger serves 20 % of the requests: its metrics alone would let it advance.
    windows = split_minutes(2400, 600, minutes=10, start=1000)
    decision = decide_look(CANARY, SETTINGS, at(1), windows)
    assert decision.result.verdict is not Verdict.ROLLBACK
    assert decision.action is StepAction.ROLLBACK
    assert decision.sample_ratio_mismatch
    assert decision.reason.startswith(f"{SAMPLE_RATIO_MISMATCH}: challenger expected 25.00 % of requests")
    assert "observed 20.00 %" in decision.reason


def test_the_right_split_lets_the_metrics_decide() -> None:
    windows = split_minutes(2250, 750, minutes=10, start=1000)
    decision = decide_look(CANARY, SETTINGS, at(1), windows)
    assert decision.sample_ratio is not None and not decision.sample_ratio.mismatch
    assert decision.action is StepAction.ADVANCE


def test_a_shadow_rollout_has_no_split_to_check() -> None:
    shadow = rollout(strategy="shadow")
    windows = split_minutes(3000, 600, minutes=10, start=1000)
    decision = decide_look(shadow, SETTINGS, at(0), windows)
    assert decision.sample_ratio is None
    assert not decision.reason.startswith(SAMPLE_RATIO_MISMATCH)
