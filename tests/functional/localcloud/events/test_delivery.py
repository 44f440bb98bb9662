"""EventBridge delivering to Lambda and Step Functions targets on moto (`localcloud.events.delivery`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.awslambda.invocations import create_functions, route_lambda_invocations
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner
from localcloud.events.delivery import (
    EventDeliveryError,
    deliver_events,
    schedules_match_no_event,
    target_input,
)
from tests.functional.localcloud.awslambda.test_runner import small_asset

ECHO = """
def handler(event, context):
    if event.get("detail", {}).get("fail"):
        raise ValueError("told to fail")
    return {"received": event, "function": context.function_name}
"""
PATTERN = {"source": ["test.source"], "detail-type": ["Something Happened"]}
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Any]:
    spec = FunctionSpec(
        function_name="echo", handler="echo.handler", code_dir=small_asset(tmp_path, "echo", ECHO)
    )
    with mock_aws(), LambdaRunner([spec]) as runner, route_lambda_invocations(runner):
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        create_functions(boto3.client("lambda"), [spec], role_arn=role)
        events = boto3.client("events")
        events.put_rule(Name="on-something", EventPattern=json.dumps(PATTERN))
        yield events


def put(events: Any, detail: dict[str, Any], source: str = "test.source") -> None:
    entry = {"Source": source, "DetailType": "Something Happened", "Detail": json.dumps(detail)}
    assert "EventId" in events.put_events(Entries=[entry])["Entries"][0]


def test_a_matching_event_invokes_the_lambda_target_with_the_event(aws: Any) -> None:
    aws.put_targets(Rule="on-something", Targets=[{"Id": "f", "Arn": _function_arn()}])
    with deliver_events() as deliveries:
        put(aws, {"n": 1})
        put(aws, {"n": 2}, source="other.source")  # matches no rule
        [delivery] = deliveries.wait()
    assert delivery.error is None
    assert delivery.result["function"] == "echo"
    assert delivery.result["received"]["detail"] == {"n": 1}
    assert delivery.result["received"]["detail-type"] == "Something Happened"


def test_a_scheduled_rule_matches_no_event(aws: Any) -> None:
    aws.put_rule(Name="every-day", ScheduleExpression="rate(1 day)")
    aws.put_targets(Rule="every-day", Targets=[{"Id": "f", "Arn": _function_arn()}])
    aws.put_targets(Rule="on-something", Targets=[{"Id": "f", "Arn": _function_arn()}])
    with deliver_events() as deliveries:
        put(aws, {"n": 1})
        [delivery] = deliveries.wait()
    assert delivery.rule == "on-something"


def test_without_delivery_a_scheduled_rule_still_matches_no_event(aws: Any) -> None:
    machine = boto3.client("stepfunctions").create_state_machine(
        name="m", definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    aws.put_rule(Name="every-day", ScheduleExpression="rate(1 day)")
    aws.put_targets(Rule="every-day", Targets=[{"Id": "m", "Arn": machine}])
    with pytest.raises(NotImplementedError):  # moto's own delivery: the schedule rule matched the event
        put(aws, {"n": 1})
    with schedules_match_no_event():
        put(aws, {"n": 2})
    assert boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []


def test_a_failing_function_is_recorded_with_its_error(aws: Any) -> None:
    aws.put_targets(Rule="on-something", Targets=[{"Id": "f", "Arn": _function_arn()}])
    with deliver_events() as deliveries:
        put(aws, {"fail": True})
        [delivery] = deliveries.wait()
    assert delivery.error == "Unhandled"
    assert delivery.result["errorMessage"] == "told to fail"


def test_constant_input_and_input_path_are_what_the_target_receives(aws: Any) -> None:
    aws.put_targets(
        Rule="on-something",
        Targets=[
            {"Id": "constant", "Arn": _function_arn(), "Input": json.dumps({"fixed": True})},
            {"Id": "detail", "Arn": _function_arn(), "InputPath": "$.detail"},
        ],
    )
    with deliver_events() as deliveries:
        put(aws, {"n": 3})
        received = sorted((d.result["received"] for d in deliveries.wait()), key=json.dumps)
    assert received == [{"fixed": True}, {"n": 3}]


def test_a_state_machine_target_starts_an_execution_with_the_event(aws: Any) -> None:
    states = boto3.client("stepfunctions")
    machine = states.create_state_machine(name="m", definition=PASS_MACHINE, roleArn=_role())[
        "stateMachineArn"
    ]
    aws.put_targets(Rule="on-something", Targets=[{"Id": "m", "Arn": machine}])
    with deliver_events() as deliveries:
        put(aws, {"n": 4})
        [delivery] = deliveries.wait()
    execution = states.describe_execution(executionArn=delivery.result["executionArn"])
    assert json.loads(execution["input"])["detail"] == {"n": 4}


def test_moto_keeps_delivering_to_its_own_targets_beside_them(aws: Any) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.put_targets(
        Rule="on-something", Targets=[{"Id": "q", "Arn": queue}, {"Id": "f", "Arn": _function_arn()}]
    )
    with deliver_events() as deliveries:
        put(aws, {"n": 5})
        assert len(deliveries.wait()) == 1
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"])["detail"] == {"n": 5}


def test_an_unsupported_input_path_is_named() -> None:
    with pytest.raises(EventDeliveryError, match=r"InputPath '\$\[0\]'"):
        target_input({"InputPath": "$[0]"}, {})


def _function_arn() -> str:
    return "arn:aws:lambda:us-east-1:123456789012:function:echo"


def _role() -> str:
    return "arn:aws:iam::123456789012:role/states"


def test_an_input_transformer_fills_its_template_as_eventbridge_does() -> None:
    event = {
        "source": "aws.s3",
        "time": "2026-11-25T10:00:00Z",
        "detail": {"bucket": {"name": "data"}, "object": {"key": 'fam/a "b".csv', "size": 7}, "tags": [1, 2]},
    }
    transformer = {
        "InputPathsMap": {
            "bucket": "$.detail.bucket.name",
            "key": "$.detail.object.key",
            "size": "$.detail.object.size",
            "second": "$.detail.tags[1]",
            "missing": "$.detail.nothing.here",
        },
        "InputTemplate": '{"where": <bucket>, "what": "<key> (<size> bytes)", "n": <size>, '
        '"second": <second>, "gone": <missing>, "source": <aws.events.event>, '
        '"at": "<aws.events.event.ingestion-time>"}',
    }
    assert target_input({"InputTransformer": transformer}, event) == {
        "where": "data",
        "what": 'fam/a "b".csv (7 bytes)',
        "n": 7,
        "second": 2,
        "gone": None,
        "source": {"source": "aws.s3", "time": "2026-11-25T10:00:00Z"},
        "at": "2026-11-25T10:00:00Z",
    }
    text = {"InputPathsMap": {"key": "$.detail.object.key"}, "InputTemplate": "new object <key>"}
    assert target_input({"InputTransformer": text}, event) == 'new object fam/a "b".csv'


def test_an_input_transformer_the_local_cloud_cannot_follow_is_named() -> None:
    event: dict[str, Any] = {"detail": {}}
    with pytest.raises(EventDeliveryError, match=r"\$\.detail\.\*"):
        target_input(
            {"InputTransformer": {"InputPathsMap": {"x": "$.detail.*"}, "InputTemplate": "<x>"}}, event
        )
    with pytest.raises(EventDeliveryError, match="rule-name"):
        target_input({"InputTransformer": {"InputTemplate": "<aws.events.rule-name>"}}, event)
    with pytest.raises(EventDeliveryError, match="invalid JSON"):
        target_input({"InputTransformer": {"InputTemplate": '{"a": <aws.events.event.json>'}}, event)
