"""The policy per situation, and what a look does under it and under a hold."""

from __future__ import annotations

import pytest

from lambdas.rollout.decision import TOO_LITTLE_DATA, next_action, policy_stop
from lambdas.rollout.hold import POLICY, Hold, held_step
from lambdas.rollout.judge import JudgeResult, Metric, MetricEvidence, MetricOutcome, Verdict
from lambdas.rollout.overrides import PersonPause, PersonPromotion, overridden
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.policy import DEFAULT_POLICY, Response, Situation, SituationPolicy, gate_name
from tests.unit.test_rollout_decision import CANARY, ENOUGH, SETTINGS, at, served


def harm_on(*metrics: Metric) -> JudgeResult:
    evidence = tuple(
        MetricEvidence(
            metric=metric,
            outcome=MetricOutcome.HARM,
            estimate=2.0,
            lower_bound=1.5,
            upper_bound=2.5,
            harm_threshold=1.1,
            promote_threshold=1.25,
            champion_samples=1000,
            challenger_samples=1000,
            rule=f"{metric.value}: worse",
        )
        for metric in metrics
    )
    return JudgeResult(verdict=Verdict.ROLLBACK, reason="errors: worse", evidence=evidence)


def test_the_default_policy_rolls_back_on_harm_and_stops_on_too_little_data() -> None:
    for situation in Situation:
        assert DEFAULT_POLICY.response(situation, [Metric.ERRORS]) is Response.ROLLBACK
    assert next_action(CANARY, SETTINGS, at(0), harm_on(Metric.ERRORS), ENOUGH)[0] is StepAction.ROLLBACK


def test_harm_per_metric_takes_the_strictest_response_of_the_metrics_that_show_it() -> None:
    policy = SituationPolicy(harm={Metric.LATENCY: Response.HOLD, Metric.CONVERSION: Response.WARN})
    assert policy.response(Situation.HARM, [Metric.CONVERSION]) is Response.WARN
    assert policy.response(Situation.HARM, [Metric.CONVERSION, Metric.LATENCY]) is Response.HOLD
    # A metric the table does not name rolls back.
    assert policy.response(Situation.HARM, [Metric.ERRORS, Metric.CONVERSION]) is Response.ROLLBACK


def test_an_empty_harm_table_is_refused() -> None:
    with pytest.raises(ValueError, match="name at least one metric"):
        SituationPolicy(harm={})


def test_harm_under_hold_holds_at_the_same_step_saying_why() -> None:
    policy = SituationPolicy(harm=Response.HOLD)
    action, index, reason = next_action(
        CANARY, SETTINGS, at(1), harm_on(Metric.ERRORS), ENOUGH, policy=policy
    )
    assert (action, index) == (StepAction.HOLD, 1)
    assert reason == "held on harm: judge: errors: worse"


def test_harm_under_warn_goes_on_as_the_other_rules_say_but_never_promotes() -> None:
    policy = SituationPolicy(harm=Response.WARN)
    action, index, reason = next_action(
        CANARY, SETTINGS, at(0), harm_on(Metric.ERRORS), ENOUGH, policy=policy
    )
    assert (action, index) == (StepAction.ADVANCE, 1)
    assert reason.startswith("warning, harm: judge: errors: worse; no harm shown")
    # At the last judged step with its bakes spent: not shown non-inferior, rolled back.
    spent = at(2, elapsed=BAKE_SPENT)
    assert next_action(CANARY, SETTINGS, spent, harm_on(Metric.ERRORS), ENOUGH, policy=policy)[0] is (
        StepAction.ROLLBACK
    )


BAKE_SPENT = 600 * 9  # past the last judged step's longest bake and the time earlier steps left


def test_too_little_data_under_hold_holds_and_under_warn_moves_to_the_next_step() -> None:
    few = served(30)
    spent = at(0, elapsed=600 * 3)
    stopped = next_action(
        CANARY, SETTINGS, spent, JudgeResult(verdict=Verdict.INCONCLUSIVE, reason="few", evidence=()), few
    )
    assert stopped[0] is StepAction.INCONCLUSIVE and stopped[2].startswith(TOO_LITTLE_DATA)
    inconclusive = JudgeResult(verdict=Verdict.INCONCLUSIVE, reason="few", evidence=())
    hold = SituationPolicy(too_little_data=Response.HOLD)
    action, _, reason = next_action(CANARY, SETTINGS, spent, inconclusive, few, policy=hold)
    assert action is StepAction.HOLD and reason.startswith(f"held: {TOO_LITTLE_DATA}")
    warn = SituationPolicy(too_little_data=Response.WARN)
    action, index, reason = next_action(CANARY, SETTINGS, spent, inconclusive, few, policy=warn)
    assert (action, index) == (StepAction.ADVANCE, 1)
    assert reason.startswith(f"warning, {TOO_LITTLE_DATA}")


def step(action: StepAction, reason: str = "judge: continue") -> StepOutcome:
    return StepOutcome(
        step_index=0, challenger_percent=5, bake=1, verdict=Verdict.CONTINUE, action=action, reason=reason
    )


PAUSE = PersonPause(
    by="arn:aws:sts::123456789012:assumed-role/ops/dana", reason="data team", requested_at=100
)


def test_a_policy_hold_begins_with_its_timeout_and_the_stop_it_stands_for() -> None:
    outcome, hold = held_step(
        step(StepAction.HOLD, "held: too little data"),
        held=None,
        pause=None,
        situation=Situation.TOO_LITTLE_DATA,
        now=1000,
        timeout_minutes=30,
    )
    assert outcome.action is StepAction.HOLD
    assert hold == Hold(
        since=1000,
        timeout_at=2800,
        by=POLICY,
        reason="held: too little data",
        situation=Situation.TOO_LITTLE_DATA,
        on_timeout=StepAction.INCONCLUSIVE,
    )


def test_a_pause_freezes_advance_and_promote_but_not_the_judges_stop() -> None:
    for action in (StepAction.BAKE, StepAction.ADVANCE, StepAction.PROMOTE):
        outcome, hold = held_step(
            step(action), held=None, pause=PAUSE, situation=None, now=1000, timeout_minutes=30
        )
        assert outcome.action is StepAction.HOLD and hold is not None
        assert outcome.reason.startswith(f"held by a person ({PAUSE.by}): data team; the judge said:")
    outcome, hold = held_step(
        step(StepAction.ROLLBACK, "judge: harm"),
        held=None,
        pause=PAUSE,
        situation=None,
        now=1000,
        timeout_minutes=30,
    )
    assert (outcome.action, hold) == (StepAction.ROLLBACK, None)


def test_a_hold_ends_at_its_timeout_as_its_situation_would_have() -> None:
    hold = Hold(since=1000, timeout_at=2800, by=PAUSE.by, reason="data team")
    outcome, kept = held_step(
        step(StepAction.BAKE), held=hold, pause=PAUSE, situation=None, now=2799, timeout_minutes=30
    )
    assert outcome.action is StepAction.HOLD and kept == hold
    outcome, kept = held_step(
        step(StepAction.BAKE), held=hold, pause=PAUSE, situation=None, now=2800, timeout_minutes=30
    )
    assert (outcome.action, kept) == (StepAction.ROLLBACK, None)
    assert outcome.reason.startswith("hold timed out after 30 min with no resume, promote or abort")


def test_a_persons_promotion_promotes_a_held_rollout() -> None:
    promotion = PersonPromotion(by="arn:aws:iam::123456789012:user/dana", reason="verified", requested_at=1)
    promoted = overridden(step(StepAction.HOLD, "held on harm: judge: latency"), promotion)
    assert promoted.action is StepAction.PROMOTE
    assert promoted.reason.startswith("promoted by a person (arn:aws:iam::123456789012:user/dana): verified")


def test_gates_are_named_as_the_commands_print_them() -> None:
    assert (gate_name(50), gate_name("promote")) == ("50 %", "promote")


def test_a_sample_ratio_mismatch_is_one_more_situation_answered_the_same_way() -> None:
    said = "sample ratio mismatch: 3.1 % served, 5 % set"
    stop = policy_stop(Situation.SAMPLE_RATIO_MISMATCH, StepAction.ROLLBACK, 0, said, policy=DEFAULT_POLICY)
    assert stop is not None and (stop.action, stop.reason) == (StepAction.ROLLBACK, said)
    hold = SituationPolicy(sample_ratio_mismatch=Response.HOLD)
    held = policy_stop(Situation.SAMPLE_RATIO_MISMATCH, StepAction.ROLLBACK, 0, said, policy=hold)
    assert held is not None and (held.action, held.reason) == (StepAction.HOLD, f"held: {said}")
    warn = SituationPolicy(sample_ratio_mismatch=Response.WARN)
    assert policy_stop(Situation.SAMPLE_RATIO_MISMATCH, StepAction.ROLLBACK, 0, said, policy=warn) is None
