"""The fault-injection matrix: every task state of the rollout state machine x every fault, a rollout on
moto with the real handlers, the invariants checked at its end (`tests/functional/fault_matrix.py`).

Each cell is a test; a cell that fails because of a known defect is an `xfail(strict=True)` naming it, so
that fixing the defect turns the cell into a pass the marker then refuses. The module's last run writes
`bench/results/fault_matrix.csv` and prints the table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lambdas.rollout.ledger import EntryKind, LedgerEntry
from localcloud.cloudformation.template import app_template, load_stacks, state_machine_definition
from tests.functional.fault_matrix import (
    ABORTED,
    LOCKED,
    PROMOTED,
    REFUSED,
    RESTORE_FAILS,
    RESTORE_IMPOSSIBLE,
    ROLLBACK_FUNCTION_BROKEN,
    ROLLED_BACK,
    TOO_LITTLE_DATA,
    CellResult,
    Fault,
    Observed,
    Rig,
    Scenario,
    broken_invariants,
    handler_modules,
    run_cell,
)
from tests.functional.rollout_cloud import STACK, rollout_template
from tests.functional.rollout_support import BOOTSTRAP_MODEL
from tests.infra.conftest import shared_outdir

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "fault_matrix.csv"

# Each task state, and the rollout that reaches it.
STATES: dict[str, Scenario] = {
    "Take the endpoint's lock": PROMOTED,
    "Run pre-traffic gates": PROMOTED,
    "Deploy the challenger at 0 %": PROMOTED,
    "Is the deployment done?": PROMOTED,
    "Shift traffic to the next step": PROMOTED,
    "Ask the judge": PROMOTED,
    "Promote the challenger": PROMOTED,
    "Is the promotion done?": PROMOTED,
    "Release the lock": PROMOTED,
    "Load the aborted rollout": ABORTED,
    "Roll back to the champion": ROLLED_BACK,
    "Is the champion restored?": ROLLED_BACK,
    "Release the lock after the rollback": ROLLED_BACK,
    "Release the lock after a failed rollback": RESTORE_IMPOSSIBLE,
    "Tell that another rollout holds the endpoint": LOCKED,
    "Tell why the rollout was refused": REFUSED,
}

# Cells that fail because of a defect not fixed yet: (state, fault) -> the defect, as a strict xfail.
# Every cell passes today; fixed since the matrix was written, each a cell that failed before: issue 14's
# defects 1 (the rollback gave up while a long update ran), 2 (a stopped execution's late task wrote the
# resumed rollback's ledger sequence), 3 (its late endpoint call landed after the rollback), 5 (silent
# ends; Sandbox.Timedout not retried), 6 (a failed start told nobody); a restoring update failing once;
# a release failing past its retries; a resume or a rollback function failing past its retries (tried
# again after a pause); a failed start whose telling fails (the workflow tells); every restoring update
# failing (the outcome `failed`, told, the candidate's variant at 0 % for a person).
KNOWN: dict[tuple[str, Fault], str] = {}
# The scenarios whose own run, without a fault, cannot end well: none.
KNOWN_SCENARIOS: dict[str, str] = {}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    template = rollout_template(app_template(load_stacks(shared_outdir(tmp_path_factory)), STACK))
    definition = json.loads(state_machine_definition(template.resolver, template.machine_id))
    bake_long_looks(definition, template.bake_seconds)
    for modules in handler_modules(template):
        rig = Rig(template, definition, modules)
        with rig.serving():
            yield rig


@pytest.fixture(scope="module")
def results() -> Iterator[list[CellResult]]:
    collected: list[CellResult] = []
    yield collected
    if len(collected) == len(STATES) * len(Fault):
        write_table(collected)


def bake_long_looks(definition: dict[str, Any], bake_seconds: int) -> None:
    """The Bake lasts the configured bake, as in the state-machine tests: one look per step, not one a
    minute. The judge's cadence is the judge's own business (unit-tested); a cell needs each state entered,
    and ten looks a step made the judge most of the matrix's time."""
    for state in definition["States"].values():
        if state["Type"] == "Wait" and state.get("SecondsPath") == "$.bake_seconds":
            del state["SecondsPath"]
            state["Seconds"] = bake_seconds


def write_table(results: list[CellResult]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["state", "fault", "runs", "passed", "broken_invariant"])
        for result in results:
            writer.writerow(
                [result.state, result.fault, 1, 0 if result.broken else 1, "; ".join(result.broken)]
            )
    width = max(len(state) for state in STATES)
    faults = list(Fault)
    print("\nfault matrix: passed/runs per state x fault")
    print(" " * width + " | " + " | ".join(f"F{i + 1}" for i in range(len(faults))))
    for state in STATES:
        row = {r.fault: r for r in results if r.state == state}
        cells = [("1/1" if not row[f.value].broken else "0/1") if f.value in row else " - " for f in faults]
        print(f"{state:<{width}} | " + " | ".join(cells))
    for index, fault in enumerate(faults):
        print(f"F{index + 1}: {fault.value}")


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(
            scenario,
            id=scenario.name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_SCENARIOS[scenario.name])]
            if scenario.name in KNOWN_SCENARIOS
            else [],
        )
        for scenario in (
            PROMOTED,
            ROLLED_BACK,
            ABORTED,
            RESTORE_FAILS,
            RESTORE_IMPOSSIBLE,
            ROLLBACK_FUNCTION_BROKEN,
            TOO_LITTLE_DATA,
            LOCKED,
            REFUSED,
        )
    ],
)
def test_each_scenario_without_a_fault_ends_well(rig: Rig, scenario: Scenario) -> None:
    result = run_cell(rig, scenario, "", None)
    assert result.broken == (), (result.broken, result.ends)


def test_too_little_traffic_ends_inconclusive_not_rolled_back(rig: Rig) -> None:
    result = run_cell(rig, TOO_LITTLE_DATA, "", None)
    assert result.broken == (), (result.broken, result.ends)
    # The execution ends in the Fail state "Too little data" (error Inconclusive), not "Rolled back".
    assert result.ends == ("rollout: FAILED Inconclusive",), result.ends


def test_a_rollback_that_cannot_restore_ends_told_with_the_endpoint_freed(rig: Rig) -> None:
    result = run_cell(rig, RESTORE_IMPOSSIBLE, "", None)
    assert result.ends == ("rollout: FAILED RollbackFailed",), result.ends
    assert result.broken == (), result.broken


def test_a_rollback_function_failing_on_every_try_ends_told_with_the_traffic_on_the_champion(
    rig: Rig,
) -> None:
    result = run_cell(rig, ROLLBACK_FUNCTION_BROKEN, "", None)
    assert result.ends == ("rollout: FAILED RollbackFailed",), result.ends
    assert result.broken == (), result.broken


def test_a_rollback_giving_up_where_sagemaker_would_restore_breaks_an_invariant() -> None:
    """The candidate left at 0 % with the outcome `failed` passes only where no restoring update can land."""
    seen = Observed(
        rollout_id="rollout",
        candidate_model="candidate",
        executions=[],
        ledger=[
            LedgerEntry(
                rollout_id="rollout",
                sequence=0,
                recorded_at=0,
                kind=EntryKind.OUTCOME,
                payload={"status": "failed"},
            )
        ],
        package={
            "ModelApprovalStatus": "Rejected",
            "CustomerMetadataProperties": {"rollout.outcome": "failed"},
        },
        running=[("champion", BOOTSTRAP_MODEL, 1.0), ("challenger", "candidate", 0.0)],
        running_config="config",
        lock_holder=None,
        notifications=[{"rollout_id": "rollout", "reason": "every restoring update failed"}],
        abort_accepted_before_promotion=False,
        abort_errors=[],
    )
    assert broken_invariants(replace(seen, restore_impossible=True)) == []
    assert broken_invariants(seen) == [
        "the candidate is left in a variant of config",
        "the rollback gave up (outcome failed) although SageMaker would restore the champion",
    ]
    serving = replace(
        seen, restore_impossible=True, running=[*seen.running[:1], ("challenger", "candidate", 0.05)]
    )
    assert broken_invariants(serving)[:1] == [
        "the endpoint serves [('challenger', 'candidate'), ('champion', 'churn-v1')], not churn-v1 alone"
    ]


def _cells() -> Iterator[Any]:
    for state in STATES:
        for fault in Fault:
            marks = []
            if (state, fault) in KNOWN:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[state, fault]))
            yield pytest.param(state, fault, marks=marks, id=f"{state} x {fault.value}")


@pytest.mark.parametrize(("state", "fault"), list(_cells()))
def test_the_rollout_ends_well_whatever_fails_where(
    rig: Rig, results: list[CellResult], state: str, fault: Fault
) -> None:
    result = run_cell(rig, STATES[state], state, fault)
    results.append(result)
    assert result.broken == (), f"{state} x {fault.value}: {'; '.join(result.broken)} ({result.ends})"
