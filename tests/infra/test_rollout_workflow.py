"""The rollout workflow: its state machine (validated as ASL), least privilege per function, tables, rules."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Match
from moto import mock_aws

from infra.nag import render
from infra.rollout_targets import name_patterns
from infra.rollout_workflow import (
    ABORT_MODULE,
    ABORTING_STATUSES,
    ENDPOINT_BUSY,
    ENDPOINT_LOCKED,
    HANDLER_MODULES,
    MAX_BAKES_PER_STEP,
    ORDINARY_FAILED_ENDS,
    TIMED_OUT,
    workflow_timeout,
)
from infra.workflow_task import NAMED_INPUT, START_PAYLOAD_PATH, TRANSIENT_ERRORS, handler_name
from lambdas.rollout.aws.endpoint_ops import config_name_for, model_name_for
from lambdas.rollout.settings import RolloutEndpoint, load_rollout_settings
from lambdas.rollout.start import parse_input
from lambdas.shared.endpoint_store import SettingsCatalog
from tests.infra.conftest import REPO_ROOT, Synthesized

ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"
DUMMY_ACCOUNT = "123456789012"
ENTRY = "Abort or new rollout?"
NAME = "Name the rollout after this execution"
START = "Take the endpoint's lock"
RESUME = "Load the aborted rollout"
ROLLBACK = "Roll back to the champion"
ROLLBACK_AGAIN = "Roll back to the champion again"
RESUME_AGAIN = "Load the aborted rollout again"
PROMOTE = "Promote the challenger"
ROLLBACK_PATH = {
    ROLLBACK,
    "Pause before rolling back again",
    ROLLBACK_AGAIN,
    "Tell from the workflow that the rollback failed",
    "Send all traffic to the champion, from the workflow",
    "Is the rollback recorded?",
    "Wait for the rollback",
    "Is the champion restored?",
    "Is the champion back in service?",
    "Release the lock after the rollback",
    "Release the lock after a failed rollback",
    "Rolled back",
    "Rolled back or too little data?",
    "Too little data",
    "Rolled back, lock not released",
    "Rollback failed",
}
TASK_HANDLERS = {
    START: "rollout_start",
    "Run pre-traffic gates": "rollout_gates",
    "Deploy the challenger at 0 %": "rollout_deploy",
    "Deploy the challenger for its strategy": "rollout_deploy",
    "Is the deployment done?": "rollout_check_deployment",
    "Shift traffic to the next step": "rollout_set_traffic",
    "Ask the judge": "rollout_judge",
    PROMOTE: "rollout_promote",
    "Is the promotion done?": "rollout_check_deployment",
    ROLLBACK: "rollout_rollback",
    ROLLBACK_AGAIN: "rollout_rollback",
    "Is the champion restored?": "rollout_check_deployment",
    RESUME: "rollout_resume",
    RESUME_AGAIN: "rollout_resume",
    "Release the lock": "rollout_release",
    "Release the lock after the rollback": "rollout_release",
    "Release the lock after a failed rollback": "rollout_release",
    "Tell that another rollout holds the endpoint": "rollout_release",
    "Tell why the rollout was refused": "rollout_release",
    "Record the approval": "rollout_gate",
}
# The human gate's task waits on a task token: the gate function gets the state and the token.
ASK_APPROVAL = "Ask a person to approve"
# After a failed start: the release function is told with the state the start's Catch left.
NOT_STARTED_TELLERS = {
    "Tell that another rollout holds the endpoint": "Another rollout holds this endpoint",
    "Tell why the rollout was refused": "Rollout refused",
}
# When a telling function fails past its retries (or none can tell), Step Functions publishes to the topic
# itself: which rollout, why, and what a person does.
WORKFLOW_TELLERS = {
    "Tell that another rollout holds the endpoint, from the workflow": "Another rollout holds this endpoint",
    "Tell why the rollout was refused, from the workflow": "Rollout refused",
    "Tell from the workflow that the rollback failed": "Rollback failed",
    "Tell that the aborted rollout was not rolled back": "Aborted rollout not rolled back",
}
# When the rollback function has failed twice, Step Functions moves the traffic to the champion itself.
TRAFFIC_BACK = "Send all traffic to the champion, from the workflow"
# The tasks that run no function of the stack.
WORKFLOW_CALLS = {*WORKFLOW_TELLERS, TRAFFIC_BACK}
# Where each task's last Catch puts the caught error (None: dropped): the rollback's own failure beside the
# reason it rolls back for; a teller's beside the error it tells; a resume tried again gets its input as it
# was.
CAUGHT_INTO = {
    ROLLBACK: "$.rollback_error",
    ROLLBACK_AGAIN: "$.rollback_error",
    "Release the lock after a failed rollback": "$.telling_error",
    "Tell that another rollout holds the endpoint": "$.telling_error",
    "Tell why the rollout was refused": "$.telling_error",
    RESUME: None,
    **dict.fromkeys(WORKFLOW_CALLS, None),
}
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LEDGER_ACTIONS = {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"}
ALL_MODULES = (*HANDLER_MODULES, ABORT_MODULE)
# One of each in the stack: the flags' application, stage and profile.
FLAG_KINDS = ("Application", "Environment", "ConfigurationProfile")


def _state_machine(dev: Synthesized) -> dict[str, Any]:
    machine = dev.resources[_single(dev, "AWS::StepFunctions::StateMachine", "RolloutStateMachine")]
    properties: dict[str, Any] = machine["Properties"]
    return properties


def _resolve_for_validation(value: Any) -> str:
    """The definition with every function's GetAtt replaced by a well-formed dummy Lambda ARN."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_resolve_for_validation(part) for part in parts)
    if "Fn::GetAtt" in value:
        logical_id = value["Fn::GetAtt"][0]
        return f"arn:aws:lambda:us-east-1:{DUMMY_ACCOUNT}:function:{logical_id}"
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if "Ref" in value:
        # The definition's one other reference: the notifications topic, whose Ref is its ARN.
        return f"arn:aws:sns:us-east-1:{DUMMY_ACCOUNT}:{value['Ref']}"
    raise ValueError(f"cannot resolve {value!r}")


@pytest.fixture(scope="module")
def definition(dev: Synthesized) -> dict[str, Any]:
    resolved: dict[str, Any] = json.loads(_resolve_for_validation(_state_machine(dev)["DefinitionString"]))
    return resolved


def _function_ids(dev: Synthesized) -> dict[str, str]:
    """Handler module -> logical id of its function."""
    by_handler = {
        function["Properties"]["Handler"]: logical_id
        for logical_id, function in dev.of_type("AWS::Lambda::Function").items()
    }
    return {module: by_handler[handler_name(module)] for module in ALL_MODULES}


def _validate(tmp_path: Path, definition: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    assert ASL_VALIDATOR.exists(), "asl-validator is missing: run `make setup` (npm ci installs it)"
    path = tmp_path / "definition.asl.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _successors(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    yield from (choice["Next"] for choice in state.get("Choices", []))
    if "Default" in state:
        yield state["Default"]
    yield from (catch["Next"] for catch in state.get("Catch", []))


def _reachable(definition: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_successors(definition["States"][name]))
    return seen


# --- The definition --------------------------------------------------------------------------------------


def test_definition_is_valid_amazon_states_language(definition: dict[str, Any], tmp_path: Path) -> None:
    result = _validate(tmp_path, definition)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_a_transition_to_a_missing_state(
    definition: dict[str, Any], tmp_path: Path
) -> None:
    broken = json.loads(json.dumps(definition))
    broken["States"]["Bake"]["Next"] = "Ask the oracle"
    result = _validate(tmp_path, broken)
    assert result.returncode != 0
    assert "MISSING_TRANSITION_TARGET" in result.stdout + result.stderr


def test_states_are_named_for_people_reading_the_console(definition: dict[str, Any]) -> None:
    assert definition["StartAt"] == ENTRY
    states = definition["States"]
    # The abort function starts the machine with {"abort": ...}; anything else is a new rollout.
    assert _choices(states[ENTRY]) == {("$.abort", True): RESUME}
    assert states[ENTRY]["Default"] == NAME
    assert states[RESUME]["Next"] == ROLLBACK
    assert states[NAME] == {"Type": "Pass", "Parameters": NAMED_INPUT, "Next": START}
    assert set(TASK_HANDLERS) <= set(states)
    assert states["Run pre-traffic gates"]["Next"] == "Did the gates pass?"
    assert states["Deploy the challenger at 0 %"]["Next"] == "Wait for the endpoint"
    assert states["Wait for the endpoint"] == {
        "Type": "Wait",
        "Seconds": 60,
        "Next": "Is the deployment done?",
    }
    assert states["Is the deployment done?"]["Next"] == "Is the endpoint in service?"
    assert states["Shift traffic to the next step"]["Next"] == "Bake"
    assert states["Bake"] == {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": "Ask the judge"}
    assert states["Ask the judge"]["Next"] == "What did the judge say?"
    assert states["Release the lock"]["Next"] == "Promoted"
    assert states["Promoted"]["Type"] == "Succeed"
    assert states["Release the lock after the rollback"]["Next"] == "Rolled back or too little data?"
    # Stopped for too little data, the champion is restored on the same path but the run ends as what it is.
    assert _choices(states["Rolled back or too little data?"]) == {
        ("$.outcome", "inconclusive"): "Too little data"
    }
    assert states["Rolled back or too little data?"]["Default"] == "Rolled back"
    assert (
        states["Too little data"]["Type"] == "Fail" and states["Too little data"]["Error"] == "Inconclusive"
    )
    assert states["Rolled back"]["Type"] == "Fail" and states["Rolled back"]["Error"] == "RolledBack"


def test_promotion_and_rollback_wait_for_their_own_endpoint_update(definition: dict[str, Any]) -> None:
    """Each updates the endpoint, waits, checks, and comes back to record only once it is in service."""
    states = definition["States"]
    for task, recorded, wait, check, in_service, done, failed in (
        (
            PROMOTE,
            "Is the promotion recorded?",
            "Wait for the promotion",
            "Is the promotion done?",
            "Is the candidate in service?",
            "Release the lock",
            ROLLBACK,
        ),
        (
            ROLLBACK,
            "Is the rollback recorded?",
            "Wait for the rollback",
            "Is the champion restored?",
            "Is the champion back in service?",
            "Release the lock after the rollback",
            # The rollback looks again at whatever the update left: its restore is sent again, a few times.
            ROLLBACK,
        ),
    ):
        assert states[task]["Next"] == recorded
        *gave_up, outcome = states[recorded]["Choices"]
        assert outcome == {
            "And": [
                {"Variable": "$.outcome", "IsPresent": True},
                {"Variable": "$.outcome", "IsNull": False},
            ],
            "Next": done,
        }
        if task == ROLLBACK:
            # A rollback that gave up recorded the outcome "failed": it ends on the failed path.
            assert gave_up == [
                {
                    "Variable": "$.outcome",
                    "StringEquals": "failed",
                    "Next": "Release the lock after a failed rollback",
                }
            ]
            assert states[ROLLBACK_AGAIN]["Next"] == recorded
        else:
            assert gave_up == []
        assert states[recorded]["Default"] == wait
        assert states[wait] == {"Type": "Wait", "Seconds": 60, "Next": check}
        assert states[check]["Next"] == in_service
        assert _choices(states[in_service]) == {
            ("$.deployment.status", "in_service"): task,
            ("$.deployment.status", "failed"): failed,
        }
        assert states[in_service]["Default"] == wait


def _choices(state: dict[str, Any]) -> dict[tuple[str, Any], str]:
    assert state["Type"] == "Choice"
    found: dict[tuple[str, Any], str] = {}
    for choice in state["Choices"]:
        operator = next(key for key in choice if key not in ("Variable", "Next"))
        found[(choice["Variable"], choice[operator])] = choice["Next"]
    return found


def test_choices_follow_the_handlers_fields(definition: dict[str, Any]) -> None:
    states = definition["States"]
    # The gates run on the candidate deployed at 0 %: failed, roll back (it is removed); passed, shadow and
    # blue_green deploy their own way, the others take their first traffic step.
    gates_passed = states["Did the gates pass?"]
    failed, strategy = gates_passed["Choices"]
    assert failed == {"Variable": "$.gates.passed", "BooleanEquals": False, "Next": ROLLBACK}
    assert strategy == {
        "Or": [
            {"Variable": "$.request.strategy", "StringEquals": "blue_green"},
            {"Variable": "$.request.strategy", "StringEquals": "shadow"},
        ],
        "Next": "Deploy the challenger for its strategy",
    }
    assert gates_passed["Default"] == "Shift traffic to the next step"
    assert states["Run pre-traffic gates"]["Next"] == "Did the gates pass?"
    assert states["Take the endpoint's lock"]["Next"] == "Deploy the challenger at 0 %"
    for deploy in ("Deploy the challenger at 0 %", "Deploy the challenger for its strategy"):
        assert states[deploy]["Next"] == "Wait for the endpoint"
    in_service = states["Is the endpoint in service?"]
    gates_first, guarded, *stepped = in_service["Choices"]
    # In service before any gate ran: the candidate is at 0 %, the gates ask it.
    assert gates_first == {
        "And": [
            {"Variable": "$.deployment.status", "StringEquals": "in_service"},
            {
                "Not": {
                    "And": [
                        {"Variable": "$.gates", "IsPresent": True},
                        {"Variable": "$.gates", "IsNull": False},
                    ]
                }
            },
        ],
        "Next": "Run pre-traffic gates",
    }
    # blue_green: SageMaker's guardrails moved the traffic; once in service there is nothing to step.
    assert guarded == {
        "And": [
            {"Variable": "$.deployment.status", "StringEquals": "in_service"},
            {"Variable": "$.request.strategy", "StringEquals": "blue_green"},
        ],
        "Next": "Promote the challenger",
    }
    assert _choices({**in_service, "Choices": stepped}) == {
        ("$.deployment.status", "in_service"): "Shift traffic to the next step",
        ("$.deployment.status", "failed"): ROLLBACK,
    }
    assert states["Is the endpoint in service?"]["Default"] == "Wait for the endpoint"
    gate, advance, bake_or_hold, *judged = states["What did the judge say?"]["Choices"]
    # A human gate ahead comes first: the workflow waits on a person before it shifts or promotes.
    assert gate == {
        "And": [
            {"Variable": "$.approval_needed", "IsPresent": True},
            {"Variable": "$.approval_needed", "IsNull": False},
        ],
        "Next": "Ask a person to approve",
    }
    assert advance == {
        "Variable": "$.decision.action",
        "StringEquals": "advance",
        "Next": "Shift traffic to the next step",
    }
    # A hold bakes on: the judge keeps looking at the frozen step.
    assert bake_or_hold == {
        "Or": [
            {"Variable": "$.decision.action", "StringEquals": "bake"},
            {"Variable": "$.decision.action", "StringEquals": "hold"},
        ],
        "Next": "Bake",
    }
    assert _choices({"Type": "Choice", "Choices": judged}) == {
        ("$.decision.action", "promote"): "Promote the challenger",
    }
    # An unknown, "rollback" or "inconclusive" (too little data) answer is never a pass.
    assert states["What did the judge say?"]["Default"] == ROLLBACK


def test_a_human_gate_waits_on_a_task_token_with_the_policys_timeout_and_rolls_back_when_rejected(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    ask = states["Ask a person to approve"]
    assert ask["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert ask["Parameters"]["Payload"] == {"state.$": "$", "task_token.$": "$$.Task.Token"}
    assert ask["TimeoutSecondsPath"] == "$.approval_timeout_seconds"
    assert ask["ResultPath"] == "$.approval"
    assert ask["Next"] == "Record the approval"
    # A rejection (SendTaskFailure), the timeout or asking failing: rolled back, the reason kept in error.
    assert ask["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": ROLLBACK}]
    assert states["Record the approval"]["Next"] == "Approved: the next step or the promotion?"
    approved = states["Approved: the next step or the promotion?"]
    assert _choices(approved) == {
        ("$.decision.action", "rollback"): ROLLBACK,  # rejected: recorded as the person's, then rolled back
        ("$.decision.action", "advance"): "Shift traffic to the next step",
    }
    assert approved["Default"] == "Promote the challenger"


def test_every_task_invokes_its_handler_with_the_whole_state(
    dev: Synthesized, definition: dict[str, Any]
) -> None:
    function_ids = _function_ids(dev)
    tasks = {
        name: state
        for name, state in definition["States"].items()
        if state["Type"] == "Task" and name not in {*WORKFLOW_CALLS, ASK_APPROVAL}
    }
    assert set(tasks) == set(TASK_HANDLERS)
    for name, state in tasks.items():
        arn = f"arn:aws:lambda:us-east-1:{DUMMY_ACCOUNT}:function:{function_ids[TASK_HANDLERS[name]]}"
        assert "ResultPath" not in state and "InputPath" not in state, name
        if name == START:
            continue
        if name in NOT_STARTED_TELLERS:
            assert state["Resource"] == "arn:aws:states:::lambda:invoke", name
            assert state["Parameters"] == {"FunctionName": arn, "Payload": {"not_started.$": "$"}}, name
            # The handler hands the state back as it got it.
            assert state["OutputPath"] == "$.Payload", name
            continue
        assert state["Resource"] == arn, name
        assert "Parameters" not in state and "OutputPath" not in state, name
    # The start handler gets the execution's input with execution_id beside its keys, and returns the state.
    start = tasks[START]
    assert start["Resource"] == "arn:aws:states:::lambda:invoke"
    assert start["Parameters"] == {
        "FunctionName": f"arn:aws:lambda:us-east-1:{DUMMY_ACCOUNT}:function:{function_ids['rollout_start']}",
        "Payload.$": START_PAYLOAD_PATH,
    }
    assert start["OutputPath"] == "$.Payload"


def test_every_task_retries_transient_errors_with_backoff(definition: dict[str, Any]) -> None:
    for name, state in definition["States"].items():
        if state["Type"] != "Task" or name in {*WORKFLOW_CALLS, ASK_APPROVAL}:
            continue
        retries = {tuple(retry["ErrorEquals"]): retry for retry in state["Retry"]}
        assert set(retries) == {TRANSIENT_ERRORS, (ENDPOINT_BUSY,), (TIMED_OUT,)}, name
        assert set(TRANSIENT_ERRORS) >= {
            "Lambda.TooManyRequestsException",
            "Lambda.ServiceException",
            "ThrottlingException",
        }
        for retry in retries.values():
            assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] > 1, name
            assert retry["JitterStrategy"] == "FULL", name
        # SageMaker's updates take minutes: a busy endpoint is retried for much longer than a throttle.
        busy = retries[(ENDPOINT_BUSY,)]
        assert busy["IntervalSeconds"] >= 30 and busy["MaxDelaySeconds"] <= 300


def test_every_task_catches_everything_into_the_error_field(definition: dict[str, Any]) -> None:
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            last = state["Catch"][-1]
            where = CAUGHT_INTO.get(name, "$.error")
            assert last["ErrorEquals"] == ["States.ALL"] and last["ResultPath"] == where, name


def test_when_a_telling_function_fails_the_workflow_tells_the_topic_itself(
    dev: Synthesized, definition: dict[str, Any]
) -> None:
    states = definition["States"]
    topic = _single(dev, "AWS::SNS::Topic", "NotificationsTopic")
    for teller, end in WORKFLOW_TELLERS.items():
        state = states[teller]
        assert state["Resource"] == "arn:aws:states:::sns:publish", teller
        assert state["Parameters"]["TopicArn"] == f"arn:aws:sns:us-east-1:{DUMMY_ACCOUNT}:{topic}", teller
        message = state["Parameters"]["Message"]
        assert {"event", "rollout_id.$", "reason.$", "action"} <= set(message), teller
        assert state["ResultPath"] is None and state["Next"] == end, teller
        # Publishing that fails too still ends the execution where it was going.
        assert [(c["ErrorEquals"], c["Next"]) for c in state["Catch"]] == [(["States.ALL"], end)], teller
        assert any("SNS.ThrottledException" in retry["ErrorEquals"] for retry in state["Retry"]), teller
    # The aborted rollout's id, not the abort execution's.
    assert (
        states["Tell that the aborted rollout was not rolled back"]["Parameters"]["Message"]["rollout_id.$"]
        == "$.abort.rollout_id"
    )
    # The machine may publish to the encrypted topic: SNS asks KMS for a data key as the caller.
    grants = _grants(dev, _state_machine(dev)["RoleArn"]["Fn::GetAtt"][0])
    assert grants["sns:Publish"] == {f"<{topic}>"}
    key = _single(dev, "AWS::KMS::Key", "NotificationsTopicKey")
    assert grants["kms:GenerateDataKey"] == grants["kms:Decrypt"] == {f"<{key}.Arn>"}


def test_a_resume_or_a_rollback_failing_past_its_retries_is_tried_once_more_after_a_pause(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    for first, pause, again, given_up in (
        (
            ROLLBACK,
            "Pause before rolling back again",
            ROLLBACK_AGAIN,
            TRAFFIC_BACK,
        ),
        (
            RESUME,
            "Pause before loading the aborted rollout again",
            RESUME_AGAIN,
            "Tell that the aborted rollout was not rolled back",
        ),
    ):
        assert states[first]["Catch"][-1]["Next"] == pause
        assert states[pause] == {"Type": "Wait", "Seconds": 300, "Next": again}
        assert states[again]["Catch"][-1]["Next"] == given_up
        assert states[again]["Next"] == states[first]["Next"]
    # A rollout the ledger cannot resume (it never started) is not tried again.
    for resume in (RESUME, RESUME_AGAIN):
        not_resumable, _ = states[resume]["Catch"]
        assert not_resumable["ErrorEquals"] == ["RolloutNotResumable", "InvalidAbortTrigger"]
        assert not_resumable["Next"] == "Aborted rollout not found"


def test_failures_before_the_decision_lead_to_the_rollback(definition: dict[str, Any]) -> None:
    states = definition["States"]
    for name in (
        "Run pre-traffic gates",
        "Deploy the challenger at 0 %",
        "Is the deployment done?",
        "Shift traffic to the next step",
        "Ask the judge",
        PROMOTE,
        "Is the promotion done?",
    ):
        assert [catch["Next"] for catch in states[name]["Catch"]] == [ROLLBACK], name


def test_a_locked_endpoint_fails_without_touching_anything(definition: dict[str, Any]) -> None:
    states = definition["States"]
    locked, anything = states[START]["Catch"]
    assert locked["ErrorEquals"] == [ENDPOINT_LOCKED]
    assert anything["ErrorEquals"] == ["States.ALL"]
    # Either way a person is told, then the execution fails at once: nothing was deployed, no rollback.
    assert (locked["Next"], anything["Next"]) == tuple(NOT_STARTED_TELLERS)
    for teller, end in NOT_STARTED_TELLERS.items():
        assert states[teller]["Next"] == end
        # Telling that fails is told by the workflow, and ends the same way with the start's error kept
        # for the cause.
        [caught] = states[teller]["Catch"]
        told = f"{teller}, from the workflow"
        assert (caught["ErrorEquals"], caught["Next"]) == (["States.ALL"], told)
        assert states[told]["Next"] == end
    # The handler's message names the holder: the console shows it as the execution's cause.
    assert states["Another rollout holds this endpoint"] == {
        "Type": "Fail",
        "Error": ENDPOINT_LOCKED,
        "CausePath": "$.error.Cause",
    }
    assert states["Rollout refused"]["Type"] == "Fail"
    assert states["Rollout refused"]["Error"] == "RolloutRefused"
    assert states["Rollout refused"]["CausePath"] == "$.error.Cause"


def test_the_rollback_path_never_leaves_it_and_always_ends(definition: dict[str, Any]) -> None:
    reachable = _reachable(definition, ROLLBACK)
    assert reachable == ROLLBACK_PATH
    states = definition["States"]
    assert states[ROLLBACK]["Catch"][0]["Next"] == "Pause before rolling back again"
    assert states[ROLLBACK_AGAIN]["Catch"][0]["Next"] == TRAFFIC_BACK
    # The rollback function failed twice: the workflow sends every user to the champion itself, whether
    # SageMaker takes it or not (shadow and blue/green have no weighted challenger).
    traffic_back = states[TRAFFIC_BACK]
    assert traffic_back["Resource"] == (
        "arn:aws:states:::aws-sdk:sagemaker:updateEndpointWeightsAndCapacities"
    )
    assert traffic_back["Parameters"] == {
        "EndpointName.$": "$.request.endpoint_name",
        "DesiredWeightsAndCapacities": [
            {"VariantName.$": "$.request.variants.champion", "DesiredWeight": 1},
            {"VariantName.$": "$.request.variants.challenger", "DesiredWeight": 0},
        ],
    }
    assert traffic_back["ResultPath"] is None
    assert traffic_back["Next"] == "Release the lock after a failed rollback"
    assert traffic_back["Catch"][-1]["Next"] == "Release the lock after a failed rollback"
    # A failed check hands back to the rollback, which looks at the endpoint itself.
    assert states["Is the champion restored?"]["Catch"][0]["Next"] == ROLLBACK
    assert states["Release the lock after a failed rollback"]["Next"] == "Rollback failed"
    # Its only loop waits for the endpoint; every task on it is bounded by its retries.
    assert {states[name]["Type"] for name in reachable} == {"Task", "Fail", "Choice", "Wait"}
    # A rolled-back rollout shows as failed in the console and in the execution status events.
    assert {states[name]["Error"] for name in reachable if states[name]["Type"] == "Fail"} == {
        "RolledBack",
        "Inconclusive",
        "RollbackFailed",
        "LockNotReleased",
    }


def test_every_state_is_reachable_from_the_start(definition: dict[str, Any]) -> None:
    assert _reachable(definition, ENTRY) == set(definition["States"])


# --- The machine -----------------------------------------------------------------------------------------


def test_machine_is_standard_traced_logged_with_a_timeout_from_the_config(dev: Synthesized) -> None:
    properties = _state_machine(dev)
    rollout = dev.config.rollout
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["StateMachineName"] == f"{dev.config.prefix}-rollout"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is True
    log_group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert dev.resources[log_group]["Properties"]["RetentionInDays"] > 0
    assert dev.resources[log_group]["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")
    timeout = json.loads(_resolve_for_validation(properties["DefinitionString"]))["TimeoutSeconds"]
    assert timeout == workflow_timeout(dev.config).to_seconds()
    every_bake = len(rollout.traffic_steps) * rollout.bake_minutes * MAX_BAKES_PER_STEP * 60
    assert every_bake < timeout <= 24 * 3600


def test_machine_may_invoke_only_the_rollout_functions(dev: Synthesized) -> None:
    role = _state_machine(dev)["RoleArn"]["Fn::GetAtt"][0]
    grants = _grants(dev, role)
    functions = {f"<{_function_ids(dev)[module]}.Arn>" for module in HANDLER_MODULES}
    assert grants.pop("lambda:InvokeFunction") == functions | {f"{arn}:*" for arn in functions}
    # Telling the topic itself when a telling function fails (see the test of the workflow's tellers).
    arns = _Arns(dev)
    assert grants.pop("sns:Publish") == {arns.topic}
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert grants.pop(action) == {arns.topic_key}
    # Moving the traffic to the champion when the rollback function has failed twice: the endpoints only.
    assert grants.pop("sagemaker:UpdateEndpointWeightsAndCapacities") == {_Arns(dev).endpoint}
    # The rest is what Step Functions logging and X-Ray need, which has no resource-level permission.
    assert all(
        action.startswith(("logs:", "xray:")) and resources == {"*"} for action, resources in grants.items()
    )


# --- The functions ---------------------------------------------------------------------------------------


def _function(dev: Synthesized, module: str) -> dict[str, Any]:
    properties: dict[str, Any] = dev.resources[_function_ids(dev)[module]]["Properties"]
    return properties


def _grants(dev: Synthesized, role: str) -> dict[str, set[str]]:
    """Every action the role allows, with the rendered resources; a condition is rendered after '|'."""
    assert not dev.resources[role]["Properties"].get("ManagedPolicyArns"), "no managed policy on a role"
    grants: dict[str, set[str]] = {}
    for policy in dev.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            condition = (
                f"|{json.dumps(statement['Condition'], sort_keys=True)}" if "Condition" in statement else ""
            )
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                grants.setdefault(action, set()).update(
                    render(resource) + condition for resource in resources
                )
    return grants


def _own_grants(dev: Synthesized, module: str) -> dict[str, set[str]]:
    """The function's grants less its log group and X-Ray, which every ProjectFunction has."""
    properties = _function(dev, module)
    grants = _grants(dev, properties["Role"]["Fn::GetAtt"][0])
    log_group = f"<{properties['LoggingConfig']['LogGroup']['Ref']}.Arn>"
    for action in LOG_ACTIONS:
        assert grants.pop(action) == {log_group}
    for action in XRAY_ACTIONS:
        assert grants.pop(action) == {"*"}
    return grants


def _logical_id(dev: Synthesized, resource_type: str, properties: dict[str, Any]) -> str:
    found = dev.template.find_resources(resource_type, {"Properties": Match.object_like(properties)})
    assert len(found) == 1, f"expected one {resource_type} with {properties}, found {sorted(found)}"
    return next(iter(found))


def _lock(dev: Synthesized) -> str:
    return _logical_id(
        dev, "AWS::DynamoDB::Table", {"KeySchema": [{"AttributeName": "endpoint", "KeyType": "HASH"}]}
    )


def _ledger(dev: Synthesized) -> str:
    return _logical_id(
        dev,
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "rollout_id", "KeyType": "HASH"},
                {"AttributeName": "sequence", "KeyType": "RANGE"},
            ]
        },
    )


def _single(dev: Synthesized, resource_type: str, prefix: str) -> str:
    [logical_id] = [key for key in dev.of_type(resource_type) if key.startswith(prefix)]
    return logical_id


class _Arns:
    """The rendered ARNs the dev environment's roles may act on."""

    def __init__(self, dev: Synthesized) -> None:
        prefix = dev.config.prefix
        sagemaker = "arn:aws:sagemaker:us-east-1:<AWS::AccountId>"
        # The environment's names as patterns (infra/rollout_targets.py): one policy for any count.
        self.endpoint = f"{sagemaker}:endpoint/{prefix}-*"
        self.models = f"{sagemaker}:model/{prefix}-*"
        self.configs = f"{sagemaker}:endpoint-config/{prefix}-*"
        self.packages = f"{sagemaker}:model-package/{prefix}-*/*"
        self.ledger = f"<{_ledger(dev)}.Arn>"
        self.lock = f"<{_lock(dev)}.Arn>"
        self.artifact_key = f"<{_single(dev, 'AWS::KMS::Key', 'RegistryArtifactKey')}.Arn>"
        self.topic_key = f"<{_single(dev, 'AWS::KMS::Key', 'NotificationsTopicKey')}.Arn>"
        self.topic = f"<{_single(dev, 'AWS::SNS::Topic', 'NotificationsTopic')}>"
        self.bucket = f"<{_single(dev, 'AWS::S3::Bucket', 'RegistryArtifacts')}.Arn>"
        passed = json.dumps(
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, sort_keys=True
        )
        self.pass_role = f"arn:aws:iam::<AWS::AccountId>:role/{prefix}-*-sagemaker|{passed}"
        captures = json.dumps({"StringLike": {"s3:prefix": ["data-capture/*"]}}, sort_keys=True)
        self.list_captures = f"{self.bucket}|{captures}"
        self.machine = f"<{_single(dev, 'AWS::StepFunctions::StateMachine', 'RolloutStateMachine')}>"
        self.executions = f"arn:aws:states:us-east-1:<AWS::AccountId>:execution:{prefix}-rollout:*"
        self.undelivered_aborts = f"<{_single(dev, 'AWS::SQS::Queue', 'RolloutUndeliveredAborts')}.Arn>"
        flags = {kind: f"<{next(iter(dev.of_type(f'AWS::AppConfig::{kind}')))}>" for kind in FLAG_KINDS}
        self.flags = (
            f"arn:aws:appconfig:us-east-1:<AWS::AccountId>:application/{flags['Application']}"
            f"/environment/{flags['Environment']}/configuration/{flags['ConfigurationProfile']}"
        )
        self.alarms = {f"arn:aws:cloudwatch:us-east-1:<AWS::AccountId>:alarm:{prefix}-*"}


def _expected_grants(dev: Synthesized) -> dict[str, dict[str, set[str]]]:
    """What each handler calls (lambdas/handlers/rollout_*.py and the adapters they use), on which ARNs."""
    arns = _Arns(dev)
    ledger: dict[str, set[str]] = {action: {arns.ledger} for action in LEDGER_ACTIONS}
    # Every entry is written with a check of the lock's generation (lambdas/rollout/aws/fence.py).
    ledger["dynamodb:ConditionCheckItem"] = {arns.lock}
    # Renewing the lease: UpdateItem by the holder, GetItem to read who holds it.
    holds_lock = {"dynamodb:UpdateItem": {arns.lock}, "dynamodb:GetItem": {arns.ledger, arns.lock}}
    describe_endpoint = {"sagemaker:DescribeEndpoint": {arns.endpoint}}
    live_config = {**describe_endpoint, "sagemaker:DescribeEndpointConfig": {arns.configs}}
    describe_package = {"sagemaker:DescribeModelPackage": {arns.packages}}
    new_config = {
        "sagemaker:CreateEndpointConfig": {arns.configs},
        "sagemaker:UpdateEndpoint": {arns.endpoint, arns.configs},
        "kms:CreateGrant": {arns.artifact_key},
        "kms:DescribeKey": {arns.artifact_key},
    }
    verdict = {"sagemaker:UpdateModelPackage": {arns.packages}}
    # The rollout's report, written to the registry's bucket when it ends (lambdas/rollout/aws/reports.py).
    report = {"s3:PutObject": {f"{arns.bucket}/rollout-reports/*"}}
    weights = {"sagemaker:UpdateEndpointWeightsAndCapacities": {arns.endpoint}}
    return {
        "rollout_start": {
            **ledger,
            "dynamodb:PutItem": {arns.ledger, arns.lock},
            "dynamodb:GetItem": {arns.ledger, arns.lock},
            **describe_package,
            **live_config,
        },
        "rollout_gates": {
            **ledger,
            **holds_lock,
            **describe_package,
            **live_config,
            "sagemaker:DescribeModel": {arns.models},
            # The golden inputs go to the deployed candidate's variant (lambdas/gates/aws/candidate.py).
            "sagemaker:InvokeEndpoint": {arns.endpoint},
            # Retrained packages keep their gate files under retraining/ (infra/retraining_workflow.py).
            "s3:GetObject": {
                f"{arns.bucket}/models/*",
                f"{arns.bucket}/data-capture/*",
                f"{arns.bucket}/retraining/*/gates/*",
            },
            "s3:ListBucket": {arns.list_captures},
            "kms:Decrypt": {arns.artifact_key},
        },
        "rollout_deploy": {
            **ledger,
            **holds_lock,
            **describe_package,
            **live_config,
            **new_config,
            "sagemaker:CreateModel": {arns.models},
            "sagemaker:DescribeModel": {arns.models},
            "cloudwatch:DescribeAlarms": arns.alarms,
            "iam:PassRole": {arns.pass_role},
        },
        "rollout_check_deployment": {**ledger, **describe_endpoint},
        "rollout_set_traffic": {**ledger, **holds_lock, **describe_endpoint, **weights},
        # The judge tells a hold or a warning with the commands to answer it.
        "rollout_judge": {
            **ledger,
            **holds_lock,
            "cloudwatch:GetMetricData": {"*"},
            "sns:Publish": {arns.topic},
            "kms:Decrypt": {arns.topic_key},
            "kms:GenerateDataKey": {arns.topic_key},
        },
        # A human gate: the token on the lease, the commands on the topic, the approval in the ledger.
        "rollout_gate": {
            **ledger,
            **holds_lock,
            "sns:Publish": {arns.topic},
            "kms:Decrypt": {arns.topic_key},
            "kms:GenerateDataKey": {arns.topic_key},
        },
        "rollout_promote": {
            **ledger,
            **holds_lock,
            **describe_package,
            **live_config,
            **new_config,
            **verdict,
            # dev releases into prod: the promote offers the package, and tells when it cannot.
            "events:PutEvents": {
                "arn:aws:events:us-east-1:<AWS::AccountId>:event-bus/default"
                '|{"StringEquals": {"events:source": "mlrollout.release"}}'
            },
            **report,
            "sns:Publish": {arns.topic},
            "kms:Decrypt": {arns.topic_key},
            "kms:GenerateDataKey": {arns.topic_key, arns.artifact_key},
        },
        "rollout_rollback": {
            **ledger,
            **holds_lock,
            **describe_package,
            **live_config,
            **new_config,
            **verdict,
            **weights,
            **report,
            "sns:Publish": {arns.topic},
            "kms:Decrypt": {arns.topic_key},
            "kms:GenerateDataKey": {arns.topic_key, arns.artifact_key},
        },
        # A failed rollback is told by the release that ends its path.
        "rollout_release": {
            "dynamodb:DeleteItem": {arns.lock},
            "sns:Publish": {arns.topic},
            "kms:Decrypt": {arns.topic_key},
            "kms:GenerateDataKey": {arns.topic_key},
        },
        # The resumed rollback takes the lock over at a new generation.
        "rollout_resume": {"dynamodb:Query": {arns.ledger}, "dynamodb:UpdateItem": {arns.lock}},
        ABORT_MODULE: {
            "dynamodb:GetItem": {arns.lock},
            "dynamodb:DeleteItem": {arns.lock},
            "dynamodb:Query": {arns.ledger},
            "states:DescribeExecution": {arns.executions},
            "states:StopExecution": {arns.executions},
            "states:StartExecution": {arns.machine},
            # A running rollout whose lease expired is found from its execution.
            "states:ListExecutions": {arns.machine},
            "appconfig:StartConfigurationSession": {arns.flags},
            "appconfig:GetLatestConfiguration": {arns.flags},
            # Its dead-letter queue: an abort that failed after Lambda's retries.
            "sqs:SendMessage": {arns.undelivered_aborts},
        },
    }


# Every function reads the endpoints' settings (lambdas/shared/endpoint_store.py) under the env's path.
ENDPOINT_SETTINGS_READ = {
    "ssm:GetParametersByPath": {
        "arn:aws:ssm:us-east-1:<AWS::AccountId>:parameter/mlrollout-dev/endpoints",
        "arn:aws:ssm:us-east-1:<AWS::AccountId>:parameter/mlrollout-dev/endpoints/*",
    }
}


@pytest.mark.parametrize("module", ALL_MODULES)
def test_each_function_is_granted_exactly_the_calls_its_handler_makes(dev: Synthesized, module: str) -> None:
    assert _own_grants(dev, module) == _expected_grants(dev)[module] | ENDPOINT_SETTINGS_READ


def test_each_function_has_its_own_role(dev: Synthesized) -> None:
    roles = {_function(dev, module)["Role"]["Fn::GetAtt"][0] for module in HANDLER_MODULES}
    assert len(roles) == len(HANDLER_MODULES)


def _endpoints_document(dev: Synthesized) -> dict[str, Any]:
    # Each endpoint's parameter; the execution role's ARN is a token, rendered as <LogicalId.Arn>.
    path = _function(dev, "rollout_start")["Environment"]["Variables"]["ENDPOINT_SETTINGS_PATH"]
    return dev.settings_documents(path)


def test_functions_share_the_rollout_environment(dev: Synthesized) -> None:
    topic = _single(dev, "AWS::SNS::Topic", "NotificationsTopic")
    for module in HANDLER_MODULES:
        properties = _function(dev, module)
        variables = properties["Environment"]["Variables"]
        assert variables["LOCK_TABLE"] == {"Ref": _lock(dev)}
        assert variables["LEDGER_TABLE"] == {"Ref": _ledger(dev)}
        assert variables["TOPIC_ARN"] == {"Ref": topic}
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "mlrollout"
        assert variables["POWERTOOLS_SERVICE_NAME"] == module.replace("_", "-")
        assert variables["ENDPOINT_SETTINGS_PATH"] == "/mlrollout-dev/endpoints/"
        assert properties["TracingConfig"] == {"Mode": "Active"}


def test_promote_and_rollback_write_reports_to_the_registry_bucket(dev: Synthesized) -> None:
    bucket = _single(dev, "AWS::S3::Bucket", "RegistryArtifacts")
    writers = {"rollout_promote", "rollout_rollback"}
    for module in HANDLER_MODULES:
        variables = _function(dev, module)["Environment"]["Variables"]
        assert variables.get("REPORT_BUCKET") == ({"Ref": bucket} if module in writers else None), module


def test_endpoints_variable_names_what_each_endpoint_rolls_out_with(dev: Synthesized) -> None:
    config = dev.config
    [endpoint] = config.endpoints
    role = _single(dev, "AWS::IAM::Role", f"Endpoint{endpoint.name}ExecutionRole")
    entry = _endpoints_document(dev)[endpoint.name]
    assert entry["endpoint_name"] == config.endpoint_name(endpoint)
    assert entry["champion"] == endpoint.variants.champion
    assert entry["challenger"] == (None if endpoint.shadow else endpoint.variants.challenger)
    assert entry["model_package_group"] == f"{config.prefix}-{endpoint.model_family}"
    assert entry["execution_role_arn"] == f"<{role}.Arn>"
    # The stack's JSON leaves nulls out (an unset cost tolerance): the functions read the same default.
    assert entry["rollout"] == config.rollout.model_dump(mode="json", exclude_none=True)
    assert entry["instance_prices"] == {endpoint.instance_type: config.prices[endpoint.instance_type]}
    assert entry["business_metric"] == {
        "namespace": endpoint.business_metric.namespace,
        "name": endpoint.business_metric.name,
    }
    assert entry["rollback_alarm_names"], "the deploy step checks the alarms SageMaker rolls back on"
    assert all(
        name.startswith(f"{config.endpoint_name(endpoint)}-") for name in entry["rollback_alarm_names"]
    )


# --- Tables ----------------------------------------------------------------------------------------------


def test_lock_table_expires_leases_and_is_retained(dev: Synthesized) -> None:
    table = dev.resources[_lock(dev)]
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["Properties"]["AttributeDefinitions"] == [
        {"AttributeName": "endpoint", "AttributeType": "S"}
    ]
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_ledger_table_keeps_evidence_recoverable_and_retained(dev: Synthesized) -> None:
    table = dev.resources[_ledger(dev)]
    assert sorted(
        (a["AttributeName"], a["AttributeType"]) for a in table["Properties"]["AttributeDefinitions"]
    ) == [("rollout_id", "S"), ("sequence", "N")]
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


# --- Triggers --------------------------------------------------------------------------------------------


def test_an_approved_package_of_this_environment_starts_a_rollout_with_the_event(dev: Synthesized) -> None:
    machine = _single(dev, "AWS::StepFunctions::StateMachine", "Rollout")
    groups = sorted({f"{dev.config.prefix}-{e.model_family}" for e in dev.config.endpoints})
    rule = _logical_id(
        dev,
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {"ModelApprovalStatus": ["Approved"], "ModelPackageGroupName": groups},
            }
        },
    )
    [target] = dev.resources[rule]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": machine}
    assert "Input" not in target and "InputPath" not in target, "the execution's input is the event itself"
    role = target["RoleArn"]["Fn::GetAtt"][0]
    assert _grants(dev, role) == {"states:StartExecution": {f"<{machine}>"}}
    # A start EventBridge could not make (after its retries) waits in a queue only this rule may fill.
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert dev.resources[queue]["Properties"]["SqsManagedSseEnabled"] is True
    assert dev.resources[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev.of_type("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    [send] = [statement for statement in policy if statement["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}


def _abort_rules(dev: Synthesized) -> dict[str, dict[str, Any]]:
    """Rule logical id -> its pattern, for the rules whose target is the abort function."""
    abort = _function_ids(dev)[ABORT_MODULE]
    return {
        logical_id: rule["Properties"]["EventPattern"]
        for logical_id, rule in dev.of_type("AWS::Events::Rule").items()
        if [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [abort, "Arn"]}]
    }


def test_an_alarm_the_kill_switch_or_an_ended_execution_aborts_the_running_rollout(dev: Synthesized) -> None:
    [endpoint] = dev.config.endpoints
    composite = _single(dev, "AWS::CloudWatch::CompositeAlarm", f"Alarms{endpoint.name}Unhealthy")
    machine = _single(dev, "AWS::StepFunctions::StateMachine", "Rollout")
    patterns = sorted(_abort_rules(dev).values(), key=lambda pattern: str(pattern["source"]))
    assert patterns == [
        {"source": ["aws.appconfig"], "detail-type": ["On Deployment Complete"]},
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            # By name: the alarm lives in the endpoint's family stack.
            "resources": [
                {
                    "Fn::Join": [
                        "",
                        [
                            "arn:aws:cloudwatch:us-east-1:",
                            {"Ref": "AWS::AccountId"},
                            f":alarm:{dev.resources[composite]['Properties']['AlarmName']}",
                        ],
                    ]
                }
            ],
            "detail": {"state": {"value": ["ALARM"]}},
        },
        {
            "source": ["aws.states"],
            "detail-type": ["Step Functions Execution Status Change"],
            "detail": {"status": ABORTING_STATUSES, "stateMachineArn": [{"Ref": machine}]},
        },
    ]
    assert (
        dev.resources[composite]["Properties"]["AlarmName"]
        == f"{dev.config.prefix}-{endpoint.name}-unhealthy"
    )
    assert (
        _endpoints_document(dev)[endpoint.name]["abort_alarm_name"]
        == f"{dev.config.prefix}-{endpoint.name}-unhealthy"
    )
    for rule in _abort_rules(dev):
        [target] = dev.resources[rule]["Properties"]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert "DeadLetterConfig" in target
    # AppConfig sends deployment events only through its EventBridge extension, attached to the flags.
    [association] = dev.of_type("AWS::AppConfig::ExtensionAssociation").values()
    assert (
        association["Properties"]["ExtensionIdentifier"]
        == "AWS.AppConfig.DeploymentNotificationsToEventBridge"
    )
    abort = _function(dev, ABORT_MODULE)["Environment"]["Variables"]
    assert abort["STATE_MACHINE_ARN"] == {"Ref": machine}


def test_handlers_settings_accept_the_synthesized_environment(dev: Synthesized) -> None:
    # The handlers read their environment with this model: it must accept what CDK sets.
    variables = _function(dev, "rollout_start")["Environment"]["Variables"]
    dummies = {
        f"<{_lock(dev)}>": "mlrollout-dev-lock",
        f"<{_ledger(dev)}>": "mlrollout-dev-ledger",
        f"<{_single(dev, 'AWS::SNS::Topic', 'NotificationsTopic')}>": (
            f"arn:aws:sns:us-east-1:{DUMMY_ACCOUNT}:mlrollout-dev-notifications"
        ),
    }
    environ = {name: dummies.get(render(value), render(value)) for name, value in variables.items()}
    [endpoint] = dev.config.endpoints
    role = _single(dev, "AWS::IAM::Role", f"Endpoint{endpoint.name}ExecutionRole")
    parameters = dev.parameters({f"<{role}.Arn>": f"arn:aws:iam::{DUMMY_ACCOUNT}:role/sagemaker-execution"})
    loaded = load_rollout_settings(environ)
    assert isinstance(loaded.endpoints, SettingsCatalog)
    loaded = loaded.model_copy(
        update={"endpoints": SettingsCatalog(RolloutEndpoint, loaded.endpoints.path, client=parameters)}
    )
    assert not loaded.endpoints.problems  # type: ignore[attr-defined]
    assert loaded.endpoints[endpoint.name].endpoint_name == dev.config.endpoint_name(endpoint)
    assert list(loaded.endpoints[endpoint.name].rollout.traffic_steps) == dev.config.rollout.traffic_steps


def _run_on_moto(definition: dict[str, Any], execution_input: dict[str, Any]) -> dict[str, Any]:
    """Run a definition with moto's Step Functions interpreter (in-process) and describe the execution."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        machine = client.create_state_machine(
            name="probe",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{DUMMY_ACCOUNT}:role/probe",
        )["stateMachineArn"]
        execution = client.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))
        described = client.describe_execution(executionArn=execution["executionArn"])
        for _ in range(200):
            if described["status"] != "RUNNING":
                break
            time.sleep(0.05)
            described = client.describe_execution(executionArn=execution["executionArn"])
    return dict(described)


def test_start_handler_receives_the_input_with_the_execution_id_beside_its_keys(
    definition: dict[str, Any],
) -> None:
    """The first state and the start task's payload expression, run by moto's interpreter (no Lambda)."""
    states = definition["States"]
    probe = {
        "StartAt": NAME,
        "States": {
            NAME: states[NAME],
            START: {
                "Type": "Pass",
                "Parameters": {"Payload.$": START_PAYLOAD_PATH},
                "OutputPath": "$.Payload",
                "End": True,
            },
        },
    }
    event = {
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelApprovalStatus": "Approved",
            "ModelPackageGroupName": "mlrollout-dev-churn-classifier",
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:{DUMMY_ACCOUNT}:model-package/x/1",
        },
    }
    described = _run_on_moto(probe, event)
    assert described["status"] == "SUCCEEDED", described
    delivered = json.loads(described["output"])
    assert delivered == {**event, "execution_id": described["executionArn"]}
    assert parse_input(delivered).execution_id == described["executionArn"]


@pytest.mark.parametrize(
    "endpoint_name", ["mlrollout-dev-churn", "mlrollout-staging-" + "a-very-long-endpoint-name-x" + "y" * 8]
)
def test_name_patterns_cover_every_model_and_config_the_rollout_creates(endpoint_name: str) -> None:
    patterns = name_patterns(endpoint_name)
    package = f"arn:aws:sagemaker:us-east-1:{DUMMY_ACCOUNT}:model-package/group/3"
    created = [
        f"{endpoint_name}-bootstrap",
        model_name_for(endpoint_name, package),
        *(
            config_name_for(endpoint_name, "arn:aws:states:execution:x", purpose)
            for purpose in ("deploy", "promote", "rollback")
        ),
    ]
    for name in created:
        assert any(fnmatchcase(name, pattern) for pattern in patterns), (name, patterns)
    assert all(pattern.startswith(endpoint_name[:42]) for pattern in patterns)


def test_the_whole_definition_runs_on_moto_and_a_failed_start_shows_its_cause(
    definition: dict[str, Any],
) -> None:
    # The functions do not exist here: the start task fails, and nothing but "Rollout refused" follows.
    described = _run_on_moto(definition, {"endpoint": "churn", "model_package_arn": "unknown"})
    assert described["status"] == "FAILED"
    assert described["error"] == "RolloutRefused"
    assert "Function not found" in described["cause"]


# --- Nothing ends silently -------------------------------------------------------------------------------


def test_failing_aborts_rollbacks_dead_letters_and_timeouts_alarm_on_the_topic(dev: Synthesized) -> None:
    prefix = dev.config.prefix
    topic = _single(dev, "AWS::SNS::Topic", "NotificationsTopic")
    alarms = {
        props["Properties"]["AlarmName"]: props["Properties"]
        for key, props in dev.of_type("AWS::CloudWatch::Alarm").items()
        if key.startswith("Rollout")
    }
    assert set(alarms) == {
        f"{prefix}-abort-errors",
        f"{prefix}-rollback-errors",
        f"{prefix}-undelivered-aborts",
        f"{prefix}-undelivered-approvals",
        f"{prefix}-rollout-timed-out",
        f"{prefix}-rollout-failed",
    }
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["Threshold"] == 1 and alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1, name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert alarm["TreatMissingData"] == "notBreaching", name
    assert alarms[f"{prefix}-abort-errors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": _function_ids(dev)[ABORT_MODULE]}}
    ]
    assert alarms[f"{prefix}-rollback-errors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": _function_ids(dev)["rollout_rollback"]}}
    ]
    assert alarms[f"{prefix}-undelivered-aborts"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarms[f"{prefix}-rollout-timed-out"]["MetricName"] == "ExecutionsTimedOut"


def test_an_abort_that_fails_after_lambdas_retries_waits_in_a_dead_letter_queue(dev: Synthesized) -> None:
    function = _function(dev, ABORT_MODULE)
    queue = _single(dev, "AWS::SQS::Queue", "RolloutUndeliveredAborts")
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue, "Arn"]}}


def test_the_abort_and_rollback_functions_keep_their_own_concurrency(dev: Synthesized) -> None:
    reserved = dev.config.reserved_concurrency
    assert reserved.abort is not None and reserved.rollback is not None
    assert _function(dev, ABORT_MODULE)["ReservedConcurrentExecutions"] == reserved.abort
    assert _function(dev, "rollout_rollback")["ReservedConcurrentExecutions"] == reserved.rollback
    # No other function reserves any: the account's unreserved pool stays as large as it can.
    others = [m for m in HANDLER_MODULES if m != "rollout_rollback"]
    assert all("ReservedConcurrentExecutions" not in _function(dev, module) for module in others)


def test_a_genuinely_failed_rollout_execution_alarms_on_the_topic(
    dev: Synthesized, definition: dict[str, Any]
) -> None:
    """ "Rolled back", "Another rollout holds this endpoint" and "Rollout refused" are Fail states too, so
    the state machine's ExecutionsFailed would alarm on every rollback: the machine's own log counts the
    executions that failed any other way (a rollback that failed, a lock not released, a resume that
    failed, an error no state caught), whatever function failed."""
    prefix = dev.config.prefix
    states = definition["States"]
    ends = {state["Error"] for state in states.values() if state["Type"] == "Fail"}
    assert ends > ORDINARY_FAILED_ENDS
    assert {"RolledBack", "EndpointLocked", "RolloutRefused"} == ORDINARY_FAILED_ENDS
    [log_group] = [
        key for key in dev.of_type("AWS::Logs::LogGroup") if key.startswith("RolloutStateMachineLogs")
    ]
    [metric_filter] = [
        f["Properties"]
        for f in dev.of_type("AWS::Logs::MetricFilter").values()
        if f["Properties"]["LogGroupName"] == {"Ref": log_group}
    ]
    pattern = metric_filter["FilterPattern"]
    assert '($.type = "ExecutionFailed")' in pattern
    for error in ORDINARY_FAILED_ENDS:
        assert f'($.details.error != "{error}")' in pattern
    [transformation] = metric_filter["MetricTransformations"]
    assert transformation["MetricValue"] == "1"
    alarm = next(
        a["Properties"]
        for a in dev.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"{prefix}-rollout-failed"
    )
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert alarm["AlarmActions"] == [{"Ref": _single(dev, "AWS::SNS::Topic", "NotificationsTopic")}]
