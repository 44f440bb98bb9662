"""What `mlrollout status` and `history` make of a ledger, and the judge of `promote`: pure code."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.rollout.judge import Verdict
from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.overrides import PersonPromotion, overridden
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.report import report_html
from lambdas.rollout.state import RolloutState
from lambdas.rollout.views import describe_entry, history_row, rollout_status
from tests.unit.test_rollout_state import state

STARTED = 1_700_000_000
STEP_SET = STARTED + 300
JUDGED = STEP_SET + 120


def entry(sequence: int, at: int, kind: EntryKind, **payload: Any) -> LedgerEntry:
    return LedgerEntry(rollout_id="exec-1", sequence=sequence, recorded_at=at, kind=kind, payload=payload)


def evidence(metric: str, outcome: str, champion: int, challenger: int) -> dict[str, Any]:
    return {
        "metric": metric,
        "outcome": outcome,
        "estimate": 1.02,
        "lower_bound": 0.9,
        "upper_bound": 1.2,
        "bounds_computed": True,
        "harm_threshold": 1.1,
        "promote_threshold": 1.25,
        "champion_samples": champion,
        "challenger_samples": challenger,
        "rule": "r",
    }


def ledger(*, outcome: str | None = None) -> list[LedgerEntry]:
    started = RolloutState.model_validate(state()).dump()
    entries = [
        entry(0, STARTED, EntryKind.DEPLOYMENT, action="rollout_started", endpoint_config="c", state=started),
        entry(1, STARTED + 10, EntryKind.GATE_RESULT, gate="golden_inputs", status="passed", detail={}),
        entry(2, STARTED + 20, EntryKind.DEPLOYMENT, action="deploy_challenger", endpoint_config="c1"),
        entry(
            3,
            STEP_SET,
            EntryKind.DEPLOYMENT,
            action="set_weights",
            endpoint_config="c1",
            step=0,
            challenger_percent=5,
        ),
        entry(
            4,
            JUDGED,
            EntryKind.JUDGE_VERDICT,
            step=0,
            bake=2,
            challenger_percent=5,
            verdict="continue",
            reason="no metric decided",
            action="bake",
            action_reason="the step bakes 10 min",
            champion_requests=900,
            challenger_requests=40,
            evidence=[
                evidence("errors", "undecided", 900, 600),
                evidence("conversion", "insufficient_data", 400, 30),
            ],
        ),
    ]
    if outcome is not None:
        entries.append(entry(5, JUDGED + 60, EntryKind.OUTCOME, status=outcome, reason="aborted: by hand"))
    return entries


def test_a_running_step_shows_its_time_the_judges_numbers_what_it_lacks_and_when_it_looks_again() -> None:
    status = rollout_status(ledger(), weights={"champion": 0.95, "challenger": 0.05}, now=JUDGED + 30)
    assert status is not None
    assert (status.phase, status.step_index, status.challenger_percent) == ("step", 0, 5)
    assert status.seconds_in_step == JUDGED + 30 - STEP_SET
    assert status.next_look_at == JUDGED + 60  # the judge's look_seconds after its last look
    assert status.may_advance_at == STEP_SET + 10 * 60  # a step lasts at least its bake
    errors, conversion = status.metrics
    assert (errors.estimate, errors.lower_bound, errors.upper_bound) == (1.02, 0.9, 1.2)
    assert errors.still_needs is not None and "narrower bounds" in errors.still_needs
    assert conversion.still_needs == "970 more trials per variant (has 30 of 1000)"
    assert status.judge_needs == [f"errors: {errors.still_needs}", f"conversion: {conversion.still_needs}"]


def test_an_ended_rollout_has_its_outcome_and_no_next_look() -> None:
    status = rollout_status(ledger(outcome="rolled_back"), weights={"champion": 1.0}, now=JUDGED + 600)
    assert status is not None
    assert (status.phase, status.outcome, status.outcome_reason) == (
        "rolled_back",
        "rolled_back",
        "aborted: by hand",
    )
    assert (status.next_look_at, status.may_advance_at, status.seconds_in_step) == (None, None, None)
    row = history_row(ledger(outcome="rolled_back"))
    assert row is not None and (row.outcome, row.reached_percent, row.endpoint) == ("rolled_back", 5, "churn")


def test_a_ledger_that_is_not_a_rollouts_is_no_status_and_no_history() -> None:
    gate_only = [entry(0, STARTED, EntryKind.GATE_RESULT, gate="golden_inputs", status="passed")]
    assert rollout_status(gate_only, weights={}, now=STARTED) is None
    assert history_row([]) is None


def test_each_entry_reads_as_one_line() -> None:
    lines = [describe_entry(e) for e in ledger(outcome="promoted")]
    assert lines[1] == "gate golden_inputs: passed"
    assert lines[3] == "weights set: challenger at 5 % (step 0)"
    assert lines[4].startswith(
        "step 0 at 5 %, look 2: judge says continue (no metric decided); workflow: bake"
    )
    assert lines[5] == "outcome: promoted: aborted: by hand"


def test_a_resume_and_a_gates_approval_read_as_the_persons() -> None:
    person = "arn:aws:sts::123456789012:assumed-role/ops/dana"
    resumed = entry(
        7,
        STARTED + 600,
        EntryKind.JUDGE_VERDICT,
        step=0,
        bake=1,
        challenger_percent=5,
        verdict="continue",
        reason="no metric decided",
        action="bake",
        action_reason="judge: continue",
        resumed={"by": person, "reason": "data team done", "step_started_at": STARTED + 600},
    )
    approved = entry(8, STARTED + 900, EntryKind.APPROVAL, gate="25 %", by=person, reason="fine", step=0)
    assert describe_entry(resumed).startswith(
        f"step 0 at 5 %, look 1: resumed by a person ({person}): data team done; judge says continue"
    )
    assert describe_entry(approved) == f"gate before 25 % approved by a person ({person}): fine"


def test_a_persons_promotion_overrides_a_bake_or_too_little_data_but_never_harm() -> None:
    promotion = PersonPromotion(by="arn:aws:iam::123456789012:user/ana", reason="checked", requested_at=1)
    for action in (StepAction.BAKE, StepAction.ADVANCE, StepAction.INCONCLUSIVE):
        step = StepOutcome(
            step_index=0, challenger_percent=5, bake=1, verdict=Verdict.CONTINUE, action=action, reason="r"
        )
        promoted = overridden(step, promotion)
        assert promoted.action is StepAction.PROMOTE
        assert (
            promoted.reason
            == "promoted by a person (arn:aws:iam::123456789012:user/ana): checked; the judge said: r"
        )
    harm = StepOutcome(
        step_index=0,
        challenger_percent=5,
        bake=1,
        verdict=Verdict.ROLLBACK,
        action=StepAction.ROLLBACK,
        reason="h",
    )
    assert overridden(harm, promotion) == harm
    assert overridden(harm.model_copy(update={"action": StepAction.BAKE}), None).action is StepAction.BAKE


def test_the_report_page_shows_the_share_over_time_each_decision_and_each_metric_against_its_thresholds() -> (
    None
):
    page = report_html(ledger(outcome="rolled_back"))
    assert page.startswith("<!doctype html>") and page.count("<svg") == 3  # the share, errors, conversion
    assert "<td>gate_golden_inputs</td>" not in page and "<td>golden_inputs</td><td>passed</td>" in page
    assert "<td>5 %</td><td>2</td><td>continue</td><td>bake</td>" in page
    assert "<h3>errors</h3>" in page and "<h3>conversion</h3>" in page
    assert "rolled_back" in page and "aborted: by hand" in page
    assert "<td>challenger</td><td>0</td>" in page  # no traffic step recorded: nothing counted


def test_a_ledger_without_a_start_has_no_report() -> None:
    with pytest.raises(ValueError, match="no rollout start"):
        report_html([])
