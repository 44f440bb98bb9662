"""Hold instead of roll back, a person's pause and resume, and a human gate, end to end: the synthesized
rollout workflow on moto's executor with its real functions (tests/functional/rollout_cloud.py), driven by
the `mlrollout` command as a person would.

The endpoint's settings parameter is written with a policy that holds on harm (a 2-hour hold timeout, 24 s
here) and a gate before 25 %, before any function of this module reads it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.shared.operations import operations_parameter_name
from localcloud.cloudformation.template import parameter_values
from mlrollout_cli.errors import ExitCode
from tests.functional.rollout_cloud import (
    Deployment,
    EmulatedAws,
    deploy,
)
from tests.functional.rollout_support import FAILING, HEALTHY
from tests.functional.test_cli import PREFIX, mlrollout, printed, wait_until

# Each test acts while its rollout waits (pauses, resumes, answers a gate, watches a hold's timeout).
pytestmark = pytest.mark.real_waits

POLICY = {"harm": "hold", "hold_timeout_minutes": 120}
GATES = [25]


@pytest.fixture
def cloud(aws: EmulatedAws, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    for deployment in deploy(aws, request.node):
        ssm = boto3.client("ssm")
        name = operations_parameter_name(PREFIX)
        operations = parameter_values(aws.rollout.template, aws.rollout.resolver, name)
        ssm.put_parameter(Name=name, Value=operations[name], Type="String")
        for parameter, value in aws.rollout.parameters.items():
            document = json.loads(value)
            document["rollout"] |= {"policy": POLICY, "approval_before": GATES}
            ssm.put_parameter(Name=parameter, Value=json.dumps(document), Type="String", Overwrite=True)
        yield deployment


def wait_for(cloud: Deployment, condition: Any, what: str) -> None:
    try:
        wait_until(condition, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cloud.progress()}") from None


def verdicts(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in entries if e.kind is EntryKind.JUDGE_VERDICT]


def held(cloud: Deployment, rollout_id: str) -> bool:
    return any(v["action"] == "hold" for v in verdicts(cloud.ledger(rollout_id)))


def all_notifications(cloud: Deployment) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while batch := cloud.notifications():
        found += batch
    return found


def test_harm_under_a_hold_policy_freezes_the_step_tells_the_commands_and_rolls_back_at_the_timeout(
    cloud: Deployment,
) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=FAILING)
    rollout_id = printed(mlrollout(cloud, "start", "churn", package, "--json"))["rollout_id"]
    wait_for(cloud, lambda: held(cloud, rollout_id), "the hold")
    assert cloud.weights() == {"champion": 95.0, "challenger": 5.0}  # frozen at the first step
    shown = mlrollout(cloud, "show", rollout_id.rsplit(":", 1)[1])
    assert "workflow: hold: held on harm: judge: errors" in shown.output
    wait_for(cloud, lambda: cloud.lock_holder() is None, "the hold's timeout")
    entries = cloud.ledger(rollout_id)
    holds = [v for v in verdicts(entries) if v["action"] == "hold"]
    assert holds and holds[0]["hold"]["by"] == "policy" and holds[0]["hold"]["situation"] == "harm"
    assert {v["challenger_percent"] for v in holds} == {5}
    last = verdicts(entries)[-1]
    assert last["action"] == "rollback"
    # The timeout is seen at the first look after it (a look per bake here: the test's Bake is the bake).
    assert re.match(
        r"hold timed out after \d+ min with no resume, promote or abort \(held by the policy: held on harm",
        str(last["action_reason"]),
    )
    assert int(str(last["action_reason"]).split()[4]) >= 120
    [outcome] = [e.payload for e in entries if e.kind is EntryKind.OUTCOME]
    assert outcome["status"] == "rolled_back"
    told = [n for n in all_notifications(cloud) if n.get("event") == "rollout_held"]
    assert len(told) == 1, "a hold is told once"
    assert told[0]["commands"] == {
        "resume": "mlrollout --env dev resume churn",
        "promote": 'mlrollout --env dev promote churn --reason "..."',
        "abort": 'mlrollout --env dev abort churn --reason "..."',
    }
    assert "with no answer within 120 min the rollout ends: rollback" in told[0]["timeout"]


def test_a_persons_pause_holds_the_step_until_resume_and_a_gate_waits_for_approval_then_promotes(
    cloud: Deployment,
) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    rollout_id = printed(mlrollout(cloud, "start", "churn", package, "--json"))["rollout_id"]
    wait_for(cloud, lambda: cloud.lock_holder() == rollout_id, "the rollout's lock")
    nothing_held = mlrollout(cloud, "resume", "churn")
    assert nothing_held.exit_code == ExitCode.NOT_FOUND and "is not held" in nothing_held.output
    paused = mlrollout(cloud, "pause", "churn", "--reason", "waiting for the data team")
    assert paused.exit_code == 0, paused.output
    wait_for(
        cloud,
        lambda: sum(v["action"] == "hold" for v in verdicts(cloud.ledger(rollout_id))) >= 2,
        "looks held",
    )
    assert cloud.weights() == {"champion": 95.0, "challenger": 5.0}
    holds = [v for v in verdicts(cloud.ledger(rollout_id)) if v["action"] == "hold"]
    assert str(holds[0]["action_reason"]).startswith("held by a person (arn:aws:sts::")
    assert "waiting for the data team; the judge said:" in str(holds[0]["action_reason"])
    resumed = mlrollout(cloud, "resume", "churn", "--reason", "data team done")
    assert resumed.exit_code == 0, resumed.output

    def waiting_at_the_gate() -> bool:
        return any(n.get("event") == "rollout_approval_needed" for n in all_notifications(cloud))

    wait_for(cloud, waiting_at_the_gate, "the gate before 25 %")
    assert cloud.weights() == {"champion": 95.0, "challenger": 5.0}  # the gate holds the traffic
    approved = mlrollout(cloud, "approve", "churn", "--reason", "dashboards fine", "--json")
    assert approved.exit_code == 0, approved.output
    assert printed(approved)["approval"]["gate"] == "25 %"
    wait_for(cloud, lambda: cloud.lock_holder() is None, "the promotion")
    entries = cloud.ledger(rollout_id)
    [outcome] = [e.payload for e in entries if e.kind is EntryKind.OUTCOME]
    assert outcome["status"] == "promoted"
    resumed_look = next(v for v in verdicts(entries) if "resumed" in v)
    assert resumed_look["resumed"]["reason"] == "data team done"
    assert str(resumed_look["resumed"]["by"]).startswith("arn:aws:sts::")
    [approval] = [e.payload for e in entries if e.kind is EntryKind.APPROVAL]
    assert (approval["gate"], approval["reason"]) == ("25 %", "dashboards fine")
    assert str(approval["by"]).startswith("arn:aws:sts::")
    shares = [e.payload["challenger_percent"] for e in entries if e.kind is EntryKind.TRAFFIC_STEP]
    assert shares[:2] == [5, 25]


def test_a_rejected_gate_rolls_the_rollout_back_naming_who_and_why(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    rollout_id = printed(mlrollout(cloud, "start", "churn", package, "--json"))["rollout_id"]
    wait_for(cloud, lambda: cloud.lock_holder() == rollout_id, "the rollout's lock")
    early = mlrollout(cloud, "approve", "churn")
    assert early.exit_code == ExitCode.NOT_FOUND and "waits at no gate" in early.output

    def gate_waiting() -> bool:
        return mlrollout(cloud, "reject", "churn", "--reason", "conversion looks off").exit_code == 0

    wait_for(cloud, gate_waiting, "the gate before 25 %")
    wait_for(cloud, lambda: cloud.lock_holder() is None, "the rollback")
    [outcome] = [e.payload for e in cloud.ledger(rollout_id) if e.kind is EntryKind.OUTCOME]
    assert outcome["status"] == "rolled_back"
    reason = str(outcome["reason"])
    assert reason.startswith("rejected at the human gate before 25 % by a person (arn:aws:sts::")
    assert reason.endswith("): conversion looks off")
    [answer] = [e.payload for e in cloud.ledger(rollout_id) if e.kind is EntryKind.APPROVAL]
    assert (answer["gate"], answer["approved"], answer["reason"]) == ("25 %", False, "conversion looks off")
