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
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloudformation.template import load_stacks, state_machine_definition
from tests.functional.fault_matrix import (
    ABORTED,
    LOCKED,
    PROMOTED,
    REFUSED,
    RESTORE_FAILS,
    RESTORE_IMPOSSIBLE,
    ROLLED_BACK,
    TOO_LITTLE_DATA,
    CellResult,
    Fault,
    Rig,
    Scenario,
    handler_modules,
    run_cell,
)
from tests.functional.rollout_cloud import STACK, rollout_template
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

# The defects the matrix finds (issue 14's numbers where it has one).
BUSY_ROLLBACK = (
    "defect 1: the rollback gives up after its EndpointBusy retries (~15 min) while an update runs for "
    "longer; it ends 'Rollback failed' and SageMaker then finishes the update"
)
LATE_LEDGER = (
    "defect 2: a stopped execution's late task writes the resumed rollback's ledger sequence; the "
    "rollback fails on LedgerConflict"
)
LATE_DEPLOY = (
    "defect 3: a stopped execution's late endpoint call lands after the rollback recorded its outcome"
)
SILENT_FAILURE = "defect 5: a rollback that fails ends 'Rollback failed' without an outcome or notification"
TIMEOUT_NOT_RETRIED = "defect 5: Sandbox.Timedout is not retried; the task's Catch ends the rollout"
REFUSED_SILENTLY = "defect 6: a start that fails ends without a notification; the approval is lost"
RELEASE_FAILS = (
    "a release task that fails past its retries ends 'lock not released': the lease blocks the endpoint "
    "until it expires"
)
RESUME_FAILS = (
    "a resume that fails ends 'Aborted rollout not found': the aborted rollout is never rolled back"
)
RESTORE_NOT_RETRIED = (
    "a restoring update that fails or is rolled back by SageMaker ends 'Rollback failed': the candidate "
    "stays in the challenger slot"
)
RESTORE_IMPOSSIBLE_END = (
    "SageMaker fails every restoring update: the rollout ends 'Rollback failed', told on the topic, and "
    "the candidate stays in the challenger slot at 0 % for a person (no workflow can restore it)"
)
TELL_FAILS = (
    "the release function failing past its retries cannot tell that the start failed; the execution "
    "still ends with the start's error as its cause"
)
ROLLBACK_BROKEN = (
    "a rollback function that fails on every try cannot restore the champion; the end needs a person"
)

# Cells that fail because of a defect not fixed yet: (state, fault) -> the defect. Fixed since the matrix
# was written (each a cell that failed before): defect 1 (BUSY_ROLLBACK), 2 (LATE_LEDGER), 3
# (LATE_DEPLOY), 5 (SILENT_FAILURE, TIMEOUT_NOT_RETRIED), 6 (REFUSED_SILENTLY), RESTORE_NOT_RETRIED and
# RELEASE_FAILS.
KNOWN: dict[tuple[str, Fault], str] = {
    ("Load the aborted rollout", Fault.RAISES): RESUME_FAILS,
    ("Load the aborted rollout", Fault.THROTTLED): RESUME_FAILS,
    ("Roll back to the champion", Fault.RAISES): ROLLBACK_BROKEN,
    ("Roll back to the champion", Fault.THROTTLED): ROLLBACK_BROKEN,
    ("Tell that another rollout holds the endpoint", Fault.RAISES): TELL_FAILS,
    ("Tell that another rollout holds the endpoint", Fault.THROTTLED): TELL_FAILS,
    ("Tell why the rollout was refused", Fault.RAISES): TELL_FAILS,
    ("Tell why the rollout was refused", Fault.THROTTLED): TELL_FAILS,
    **{("Release the lock after a failed rollback", fault): RESTORE_IMPOSSIBLE_END for fault in Fault},
}
# The scenarios whose own run, without a fault, cannot end well.
KNOWN_SCENARIOS = {RESTORE_IMPOSSIBLE.name: RESTORE_IMPOSSIBLE_END}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    template = rollout_template(load_stacks(shared_outdir(tmp_path_factory))[STACK])
    definition = json.loads(state_machine_definition(template.resolver, template.machine_id))
    for modules in handler_modules(template):
        yield Rig(template, definition, modules)


@pytest.fixture(scope="module")
def results() -> Iterator[list[CellResult]]:
    collected: list[CellResult] = []
    yield collected
    if len(collected) == len(STATES) * len(Fault):
        write_table(collected)


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
            TOO_LITTLE_DATA,
            ABORTED,
            RESTORE_FAILS,
            RESTORE_IMPOSSIBLE,
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
    assert any("RollbackFailed" in end for end in result.ends), result.ends
    assert not any("notification" in broken or "lock" in broken for broken in result.broken), result.broken
    assert any("candidate is left" in broken for broken in result.broken), result.broken


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
