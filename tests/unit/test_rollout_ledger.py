"""The evidence ledger's rules (append once, keep what is recorded) and its summary for the registry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.rollout.judge import JudgeResult, Verdict
from lambdas.rollout.ledger import (
    METADATA_VALUE_MAX,
    EntryKind,
    Ledger,
    LedgerConflict,
    LedgerEntry,
    deployment_payload,
    gate_payload,
    metadata_value,
    outcome_payload,
    summarize,
    traffic_payload,
    verdict_payload,
)
from lambdas.rollout.payloads import OutcomeStatus, RolloutOutcome, StepAction, StepOutcome

ROLLOUT = "exec-1"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlrollout-dev-churn/2"
# SageMaker's rule for metadata values, with \p{L}\p{N} read as str.isalnum().
ALLOWED = re.compile(r"^[\w\s.:/=+\-@]*$")


@dataclass
class FakeLedgerStore:
    rows: dict[tuple[str, int], LedgerEntry] = field(default_factory=dict)

    def put_if_absent(self, entry: LedgerEntry) -> bool:
        key = (entry.rollout_id, entry.sequence)
        if key in self.rows:
            return False
        self.rows[key] = entry
        return True

    def get(self, rollout_id: str, sequence: int) -> LedgerEntry | None:
        return self.rows.get((rollout_id, sequence))

    def entries(self, rollout_id: str) -> list[LedgerEntry]:
        return [entry for (rid, _), entry in sorted(self.rows.items()) if rid == rollout_id]


def entry(sequence: int, kind: EntryKind, payload: Mapping[str, object], at: int = 100) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {"rollout_id": ROLLOUT, "sequence": sequence, "recorded_at": at, "kind": kind, "payload": payload}
    )


def step(percent: int, action: StepAction, verdict: Verdict) -> StepOutcome:
    return StepOutcome(
        step_index=0, challenger_percent=percent, bake=1, verdict=verdict, action=action, reason="r"
    )


def test_append_records_a_new_entry() -> None:
    store = FakeLedgerStore()
    assert Ledger(store).append(entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed"))) is True
    assert list(store.rows) == [(ROLLOUT, 0)]


def test_a_retried_entry_is_not_recorded_twice_even_with_a_later_timestamp() -> None:
    ledger = Ledger(FakeLedgerStore())
    ledger.append(entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed"), at=100))
    assert ledger.append(entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed"), at=160)) is False
    assert [e.recorded_at for e in ledger.entries(ROLLOUT)] == [100]


def test_a_different_entry_under_a_recorded_sequence_is_refused_and_the_first_kept() -> None:
    ledger = Ledger(FakeLedgerStore())
    first = entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed"))
    ledger.append(first)
    with pytest.raises(LedgerConflict, match="sequence 0 already holds gate_result"):
        ledger.append(entry(0, EntryKind.OUTCOME, {"status": "promoted"}))
    assert ledger.entries(ROLLOUT) == [first]


def test_summary_names_outcome_reason_gates_verdicts_and_traffic() -> None:
    judged = JudgeResult(verdict=Verdict.ROLLBACK, reason="errors: harm", evidence=())
    outcome = RolloutOutcome(
        status=OutcomeStatus.ROLLED_BACK,
        endpoint_name="mlrollout-dev-churn",
        model_package_arn=PACKAGE,
        reason="judge: errors (rate ratio 3.2 > 1.1)",
    )
    entries = [
        entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed")),
        entry(1, EntryKind.GATE_RESULT, gate_payload("drift", "passed", {"psi": 0.01})),
        entry(2, EntryKind.DEPLOYMENT, deployment_payload("deploy_challenger", "cfg-1")),
        entry(3, EntryKind.TRAFFIC_STEP, traffic_payload(0, 5, 9500, 500)),
        entry(
            4,
            EntryKind.JUDGE_VERDICT,
            verdict_payload(step(5, StepAction.ROLLBACK, Verdict.ROLLBACK), judged),
        ),
        entry(5, EntryKind.OUTCOME, outcome_payload(outcome)),
    ]
    assert summarize(list(reversed(entries))) == {
        "rollout.id": ROLLOUT,
        "rollout.entries": "6",
        "rollout.outcome": "rolled_back",
        "rollout.reason": "judge: errors rate ratio 3.2 1.1",
        "rollout.gates": "golden=passed drift=passed",
        "rollout.verdicts": "5pct=rollback",
        "rollout.traffic": "5pct:9500/500",
    }


def test_summary_of_a_promoted_rollout_carries_no_reason() -> None:
    promoted = RolloutOutcome(status=OutcomeStatus.PROMOTED, endpoint_name="e", model_package_arn=PACKAGE)
    summary = summarize([entry(0, EntryKind.OUTCOME, outcome_payload(promoted))])
    assert summary["rollout.outcome"] == "promoted"
    assert "rollout.reason" not in summary


def test_summary_of_a_rollout_without_outcome_says_in_progress() -> None:
    assert summarize([])["rollout.outcome"] == "in progress"


def test_long_verdict_history_keeps_the_latest_verdicts() -> None:
    verdicts = [
        entry(i, EntryKind.JUDGE_VERDICT, {"challenger_percent": 5 if i < 90 else 50, "verdict": "continue"})
        for i in range(100)
    ]
    value = summarize(verdicts)["rollout.verdicts"]
    assert len(value) == METADATA_VALUE_MAX
    assert value.startswith("...")
    assert value.endswith("50pct=continue")


@settings(derandomize=True, deadline=None)
@given(st.text(max_size=600))
def test_metadata_values_are_short_and_use_only_allowed_characters(text: str) -> None:
    value = metadata_value(text)
    assert 1 <= len(value) <= METADATA_VALUE_MAX
    assert ALLOWED.match(value)
