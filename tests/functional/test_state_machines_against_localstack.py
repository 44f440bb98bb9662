"""Both synthesized state machines (rollout, retraining) on LocalStack's Step Functions and on moto's
interpreter, with the same inputs: the same states entered, in the same order, and the same output.

LocalStack's free edition runs Lambda only in Docker, so each task is replaced by a `Pass` state whose
`Result` is the task's result written down (its state after the handler, as `lambdas/*/tasks/` return it,
and `{"Payload": ...}` where the task is `lambda:invoke`), keeping the task's `InputPath`, `ResultPath` and
`OutputPath`; a task's `Parameters`, `ResultSelector`, `Retry` and `Catch` go (a `Pass` state has none of
them: what they do is not compared), and every `Wait` waits 0 s. What is compared is the definition's
control flow as each interpreter reads it: the Choice rules, the paths, the Pass states' `Parameters` with
the context object and intrinsic functions, Succeed and Fail with their error and cause.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.cloudformation.template import load_stacks, local_resolver
from tests.functional.localstack import ACCOUNT as LOCALSTACK_ACCOUNT
from tests.infra.conftest import shared_outdir

STACK = "MlRollout-local"
MOTO_ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = "arn:aws:iam::{account}:role/state-machine"
DEADLINE_SECONDS = 60
ROLLOUT_INPUT = {
    "request": {"endpoint": "churn", "strategy": "canary", "model_package_arn": "arn:pkg/2"},
    "bake_seconds": 180,
}
RETRAINING_INPUT = {"family": "churn-classifier", "trigger": "new_data"}


def _rollout_state(**extra: Any) -> dict[str, Any]:
    return {**ROLLOUT_INPUT, "rollout_id": "r-1", "lock": {"taken": True}, **extra}


# Per case: the machine, its input, and each task's result on that path (a task not on it has none).
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "rollout promoted": (
        "Rollout",
        ROLLOUT_INPUT,
        {
            "Take the endpoint's lock": {"StatusCode": 200, "Payload": _rollout_state()},
            "Deploy the challenger at 0 %": _rollout_state(deployment={"status": "updating"}),
            "Is the deployment done?": _rollout_state(deployment={"status": "in_service"}, gates=None),
            "Run pre-traffic gates": _rollout_state(
                deployment={"status": "in_service"}, gates={"passed": True, "failed": []}
            ),
            "Shift traffic to the next step": _rollout_state(challenger_percent=25, step=0),
            "Ask the judge": _rollout_state(
                challenger_percent=25, decision={"action": "promote", "verdict": "promote"}
            ),
            "Promote the challenger": _rollout_state(outcome={"status": "promoted", "reason": "judge"}),
            "Release the lock": _rollout_state(outcome={"status": "promoted"}, lock={"released": True}),
        },
    ),
    "rollout rolled back by its gates": (
        "Rollout",
        ROLLOUT_INPUT,
        {
            "Take the endpoint's lock": {"StatusCode": 200, "Payload": _rollout_state()},
            "Deploy the challenger at 0 %": _rollout_state(deployment={"status": "updating"}),
            "Is the deployment done?": _rollout_state(deployment={"status": "in_service"}),
            "Run pre-traffic gates": _rollout_state(gates={"passed": False, "failed": ["golden_inputs"]}),
            "Roll back to the champion": _rollout_state(outcome="rolled_back", reason="gates: golden_inputs"),
            "Release the lock after the rollback": {
                "outcome": "rolled_back",
                "error": {"Error": "RolledBack", "Cause": "gates: golden_inputs failed"},
            },
        },
    ),
    "retraining handed to the rollout": (
        "Retraining",
        RETRAINING_INPUT,
        {
            "Take the family's lock": {"StatusCode": 200, "Payload": {"run": "r-1", "lock": {"taken": True}}},
            "Start the preprocessing": {"run": "r-1", "job": {"name": "pre", "status": "InProgress"}},
            "Is the preprocessing done?": {"run": "r-1", "job": {"name": "pre", "status": "Completed"}},
            "Start the training": {"run": "r-1", "job": {"name": "train", "status": "InProgress"}},
            "Is the training done?": {"run": "r-1", "job": {"name": "train", "status": "Completed"}},
            "Start the evaluation": {"run": "r-1", "job": {"name": "eval", "status": "InProgress"}},
            "Is the evaluation done?": {"run": "r-1", "job": {"name": "eval", "status": "Completed"}},
            "Gate and register the model": {"run": "r-1", "registration": {"approval_status": "Approved"}},
            "Release the lock": {"run": "r-1", "registration": {"approval_status": "Approved"}},
        },
    ),
    "retraining already running": (
        "Retraining",
        RETRAINING_INPUT,
        {"Take the family's lock": {"StatusCode": 200, "Payload": {"run": "r-1", "lock": {"taken": False}}}},
    ),
}


def definitions(outdir: Path) -> dict[str, dict[str, Any]]:
    """The stack's state machine definitions by construct (`Rollout`, `Retraining`), resolved as deployed."""
    template = load_stacks(outdir)[STACK]
    resolver = local_resolver(template)
    found = {}
    for logical_id, resource in template.resources_of_type("AWS::StepFunctions::StateMachine").items():
        for construct in ("Rollout", "Retraining"):
            if logical_id.startswith(f"{construct}StateMachine"):
                found[construct] = json.loads(resolver.resolve(resource["Properties"]["DefinitionString"]))
    assert set(found) == {"Rollout", "Retraining"}, sorted(found)
    return found


def with_recorded_results(definition: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Each task a Pass state with its written-down result; Waits of 0 s."""
    states: dict[str, Any] = {}
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            kept = {
                key: state[key]
                for key in ("Next", "End", "InputPath", "ResultPath", "OutputPath")
                if key in state
            }
            # A task off the case's path keeps a result that no Choice reads: it is never entered.
            states[name] = {"Type": "Pass", "Result": results.get(name, {"not_on_this_path": name}), **kept}
        elif state["Type"] == "Wait":
            kept = {key: state[key] for key in ("Next", "End", "InputPath", "OutputPath") if key in state}
            states[name] = {"Type": "Wait", "Seconds": 0, **kept}
        else:
            states[name] = state
    return {**definition, "States": states}


def run(
    client: Any, account: str, name: str, definition: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    """The execution's states entered (in order), status, output, error and cause."""
    machine = client.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE.format(account=account)
    )["stateMachineArn"]
    execution = client.start_execution(stateMachineArn=machine, name="compared", input=json.dumps(given))[
        "executionArn"
    ]
    deadline = time.monotonic() + DEADLINE_SECONDS
    described = client.describe_execution(executionArn=execution)
    while described["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still running after {DEADLINE_SECONDS} s"
        time.sleep(0.2)
        described = client.describe_execution(executionArn=execution)
    events = client.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in sorted(events, key=lambda e: e["id"])
        if "stateEnteredEventDetails" in e
    ]
    output = described.get("output")
    return {
        "entered": entered,
        "status": described["status"],
        # The context object names the execution: the same but for the account.
        "output": json.loads(output.replace(account, "<account>")) if output else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return definitions(shared_outdir(tmp_path_factory, "local"))


@pytest.fixture
def localstack_states(localstack_endpoint: str) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=localstack_endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def moto_states() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


@pytest.mark.parametrize("case", sorted(CASES))
def test_localstack_and_moto_run_the_synthesized_definition_through_the_same_states(
    case: str, machines: dict[str, dict[str, Any]], localstack_states: Any, moto_states: Any
) -> None:
    machine, given, results = CASES[case]
    definition = with_recorded_results(machines[machine], results)
    name = f"compared-{case.replace(' ', '-')}-{time.time_ns()}"
    on_localstack = run(localstack_states, LOCALSTACK_ACCOUNT, name, definition, given)
    on_moto = run(moto_states, MOTO_ACCOUNT, name, definition, given)
    assert on_localstack == on_moto
    # The written-down results steer the machine as intended: every task on the path entered, to its end.
    assert set(results) <= set(on_moto["entered"]), sorted(set(results) - set(on_moto["entered"]))
    assert (on_moto["entered"][-1], on_moto["status"]) == ENDS[case]


ENDS = {
    "rollout promoted": ("Promoted", "SUCCEEDED"),
    "rollout rolled back by its gates": ("Rolled back", "FAILED"),
    "retraining handed to the rollout": ("Handed to the rollout", "SUCCEEDED"),
    "retraining already running": ("Already retraining", "SUCCEEDED"),
}
