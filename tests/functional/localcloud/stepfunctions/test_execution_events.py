"""Step Functions' execution status change events on moto (`localcloud.stepfunctions.execution_events`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventsBackend

from localcloud.stepfunctions.execution_events import DETAIL_TYPE, emit_execution_events

ROLE = "arn:aws:iam::123456789012:role/states"
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}
FAIL = {"StartAt": "Broken", "States": {"Broken": {"Type": "Fail", "Error": "Bad", "Cause": "told to"}}}
WAIT = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 30, "End": True}}}
TIMES_OUT = {"TimeoutSeconds": 1, **WAIT}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        emit_execution_events() as emitted,
    ):
        sqs, events = boto3.client("sqs"), boto3.client("events")
        queue = sqs.create_queue(QueueName="changes")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["aws.states"], "detail-type": [DETAIL_TYPE], "detail": {"status": ["ABORTED"]}}
        events.put_rule(Name="aborted", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="aborted", Targets=[{"Id": "q", "Arn": arn}])
        yield {"queue": queue, "emitted": emitted}


def run(definition: dict[str, Any], name: str) -> str:
    states = boto3.client("stepfunctions")
    machine = states.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    return str(
        states.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"n": 1}')["executionArn"]
    )


def ended(execution: str) -> dict[str, Any]:
    states = boto3.client("stepfunctions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = states.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.05)
    raise AssertionError(f"{execution} still running")


def details(emitted: list[dict[str, Any]], execution: str) -> dict[str, dict[str, Any]]:
    """The execution's events by status: EventBridge promises no order, and a short execution's end may
    be put before its start."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len([d for d in emitted if d["executionArn"] == execution]) < 2:
        time.sleep(0.05)
    return {d["status"]: d for d in emitted if d["executionArn"] == execution}


def test_a_succeeding_execution_puts_running_then_succeeded_with_its_output(aws: dict[str, Any]) -> None:
    execution = run(PASS, "passes")
    assert ended(execution)["status"] == "SUCCEEDED"
    events = details(aws["emitted"], execution)
    started, finished = events["RUNNING"], events["SUCCEEDED"]
    assert (started["status"], started["stopDate"], started["output"]) == ("RUNNING", None, None)
    assert (
        started["input"] == '{"n": 1}' and started["name"] and started["stateMachineArn"].endswith(":passes")
    )
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"]) == {"ok": 1}
    assert finished["stopDate"] >= finished["startDate"]


def test_a_failed_execution_carries_its_error_and_cause(aws: dict[str, Any]) -> None:
    execution = run(FAIL, "fails")
    assert ended(execution)["status"] == "FAILED"
    finished = details(aws["emitted"], execution)["FAILED"]
    assert (finished["status"], finished["error"], finished["cause"], finished["output"]) == (
        "FAILED",
        "Bad",
        "told to",
        None,
    )


def test_a_stopped_execution_is_aborted_and_matches_the_rules_pattern(aws: dict[str, Any]) -> None:
    execution = run(WAIT, "waits")
    boto3.client("stepfunctions").stop_execution(executionArn=execution, error="Manual", cause="on-call")
    assert ended(execution)["status"] == "ABORTED"
    assert details(aws["emitted"], execution)["ABORTED"]["status"] == "ABORTED"
    messages = boto3.client("sqs").receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)["Messages"]
    [event] = [json.loads(m["Body"]) for m in messages]
    assert event["source"] == "aws.states" and event["detail-type"] == DETAIL_TYPE
    assert event["resources"] == [execution]
    assert event["detail"]["executionArn"] == execution and event["detail"]["status"] == "ABORTED"


def test_a_status_change_is_listed_only_once_its_event_is_on_the_bus(aws: dict[str, Any]) -> None:
    """A slow bus (a loaded machine): the change is listed after the put, so a queue read once it is listed
    holds the event. Listed first, a test read an empty queue beside the demo stories."""
    original = EventsBackend.put_events

    def slow_put(backend: EventsBackend, entries: list[dict[str, Any]]) -> Any:
        time.sleep(0.3)
        return original(backend, entries)

    with mock.patch.object(EventsBackend, "put_events", slow_put):
        execution = run(WAIT, "slow-bus")
        boto3.client("stepfunctions").stop_execution(executionArn=execution, error="Manual", cause="on-call")
        assert details(aws["emitted"], execution)["ABORTED"]["status"] == "ABORTED"
        received = boto3.client("sqs").receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
    assert [json.loads(m["Body"])["detail"]["status"] for m in received.get("Messages", [])] == ["ABORTED"]


def test_an_execution_past_its_timeout_is_timed_out(aws: dict[str, Any]) -> None:
    execution = run(TIMES_OUT, "times-out")
    assert ended(execution)["status"] == "TIMED_OUT"
    assert details(aws["emitted"], execution)["TIMED_OUT"]["status"] == "TIMED_OUT"
