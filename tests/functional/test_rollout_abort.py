"""Aborting a running rollout (alarm, kill switch, person, ended execution), resuming it on the rollback
path, and a retried judge keeping its recorded verdict: the handlers against moto."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from lambdas.locking.lock import EndpointLocked
from lambdas.rollout.abort import (
    ABORTED_ERROR,
    STOPPED_TASK_WINDOW_SECONDS,
    InvalidAbortTrigger,
    RolloutNotResumable,
    abort_execution_name,
)
from lambdas.rollout.aws.fence import Fenced
from lambdas.rollout.ledger import EntryKind
from lambdas.rollout.settings import load_abort_settings
from tests.functional.rollout_support import ENDPOINT_NAME, ENVIRONMENT, LambdaContextStub, Minute
from tests.functional.serving_support import FakeAppConfigData, flag_values
from tests.functional.test_rollout_handlers import (  # noqa: F401
    BAD,
    ERRING,
    GOOD,
    Rollout,
    handlers,
    rollout,
)

MACHINE_NAME = "mlrollout-dev-rollout"
# Without execute_state_machine moto keeps every execution RUNNING: the abort's stop is what ends it.
PASS_DEFINITION = json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}})
ALARM = "mlrollout-dev-churn-unhealthy"


@dataclass
class Abort:
    rollout: Rollout
    machine_arn: str
    flags: FakeAppConfigData
    handler: ModuleType
    resume: ModuleType

    @property
    def states(self) -> Any:  # the stepfunctions stubs are not installed
        return boto3.client("stepfunctions")

    def execution(self) -> str:
        """A running rollout execution, whose ARN is the rollout id its start gets."""
        started = self.states.start_execution(stateMachineArn=self.machine_arn, name="first", input="{}")
        return str(started["executionArn"])

    def start(self, execution: str, **overrides: Any) -> dict[str, Any]:
        return self.rollout.start(execution_id=execution, **overrides)

    def run(self, event: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.handler.handler(event, LambdaContextStub())
        return result

    def abort_executions(self) -> list[dict[str, Any]]:
        listed = self.states.list_executions(stateMachineArn=self.machine_arn)["executions"]
        aborts = [e for e in listed if str(e["name"]).startswith("abort-")]
        return [self.states.describe_execution(executionArn=e["executionArn"]) for e in aborts]


def alarm_event(state: str = "ALARM", name: str = ALARM) -> dict[str, Any]:
    return {
        "version": "0",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": "Threshold Crossed: 1 out of the last 1 datapoints"},
            "previousState": {"value": "OK"},
        },
    }


FLAGS_DEPLOYED = {"source": "aws.appconfig", "detail-type": "On Deployment Complete", "detail": {}}


@pytest.fixture
def abort(rollout: Rollout, handlers: dict[str, ModuleType]) -> Iterator[Abort]:  # noqa: F811
    states = boto3.client("stepfunctions")
    machine = states.create_state_machine(
        name=MACHINE_NAME, definition=PASS_DEFINITION, roleArn="arn:aws:iam::123456789012:role/states"
    )
    environment = ENVIRONMENT | {
        "STATE_MACHINE_ARN": machine["stateMachineArn"],
        "APPCONFIG_APPLICATION": "mlrollout-dev",
        "APPCONFIG_ENVIRONMENT": "dev",
        "APPCONFIG_PROFILE": "flags",
    }
    flags = FakeAppConfigData(values=flag_values())
    # Re-imported under the handlers' environment: Powertools reads its namespace when a module loads.
    rollout_abort = importlib.reload(importlib.import_module("lambdas.handlers.rollout_abort"))
    rollout_abort.use(
        rollout_abort.build_services(
            load_abort_settings(environment),
            dynamodb=rollout.dynamodb,
            states=states,
            appconfigdata=flags,
            clock=rollout.clock,
        )
    )
    resume = importlib.reload(importlib.import_module("lambdas.handlers.rollout_resume"))
    yield Abort(rollout, machine["stateMachineArn"], flags, rollout_abort, resume)
    rollout_abort.use(None)


def test_the_endpoints_alarm_stops_the_rollout_and_starts_its_rollback_once(abort: Abort) -> None:
    execution = abort.execution()
    abort.rollout.run(
        "set_traffic",
        abort.rollout.run("check_deployment", abort.rollout.run("deploy", abort.start(execution))),
    )
    result = abort.run(alarm_event())
    assert [a["rollout_id"] for a in result["aborted"]] == [execution]
    assert abort.states.describe_execution(executionArn=execution)["status"] == "ABORTED"
    [rollback] = abort.abort_executions()
    assert rollback["name"] == abort_execution_name(execution)
    request = json.loads(rollback["input"])["abort"]
    assert request["rollout_id"] == execution and request["endpoint"] == "churn"
    assert request["reason"].startswith(f"alarm {ALARM} in ALARM: Threshold Crossed")
    # Delivered again: StartExecution with the same name and input returns the same execution.
    assert abort.run(alarm_event()) == result
    # Another trigger for the same rollout: its rollback has started already.
    other = abort.run({"endpoint": "churn", "reason": "and a person too"})
    assert other["aborted"] == [] and "being rolled back already" in other["skipped"][0]["left_alone"]
    assert len(abort.abort_executions()) == 1


def test_the_resumed_rollout_is_rolled_back_with_the_abort_as_its_reason(abort: Abort) -> None:
    execution = abort.execution()
    cloud = abort.rollout
    state = cloud.run(
        "set_traffic", cloud.run("check_deployment", cloud.run("deploy", abort.start(execution)))
    )
    assert cloud.sagemaker.weights() == {"champion": 95.0, "challenger": 5.0}
    abort.run(alarm_event())
    [rollback] = abort.abort_executions()
    resumed = abort.resume.handler(json.loads(rollback["input"]), LambdaContextStub())
    assert resumed["rollout_id"] == execution
    assert resumed["error"]["Error"] == ABORTED_ERROR
    assert resumed["sequence"] == len(cloud.ledger(execution))
    assert resumed["champion_model"] == state["champion_model"]
    # A task of the stopped execution may still land for a while: the outcome is recorded after.
    assert resumed["settle_until"] == cloud.clock.now + STOPPED_TASK_WINDOW_SECONDS
    cloud.clock.advance(STOPPED_TASK_WINDOW_SECONDS)
    rolled_back = cloud.finish("rollback", resumed)
    assert cloud.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}
    assert cloud.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", "churn-v1")]
    package = cloud.package_status()
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith(f"{ABORTED_ERROR}: alarm {ALARM} in ALARM")
    assert cloud.ledger(execution)[-1].kind is EntryKind.OUTCOME
    assert rolled_back["outcome"] == "rolled_back"
    # Once the outcome is recorded, a late trigger leaves the rollout alone.
    late = abort.run(alarm_event())
    assert late["aborted"] == [] and "recorded its outcome" in late["skipped"][0]["left_alone"]


def test_a_task_of_the_stopped_execution_writes_nothing_once_the_rollback_took_over(abort: Abort) -> None:
    execution = abort.execution()
    cloud = abort.rollout
    state = cloud.run(
        "set_traffic", cloud.run("check_deployment", cloud.run("deploy", abort.start(execution)))
    )
    abort.run(alarm_event())
    [rollback] = abort.abort_executions()
    resumed = abort.resume.handler(json.loads(rollback["input"]), LambdaContextStub())
    # The stopped execution's judge was still running: it lands after the rollback took the lock over.
    cloud.serve(state, GOOD, GOOD)
    with pytest.raises(Fenced, match="a newer execution of it has taken over"):
        cloud.run("judge", state)
    assert resumed["generation"] == state["generation"] + 1
    assert EntryKind.JUDGE_VERDICT not in [e.kind for e in cloud.ledger(execution)]
    cloud.clock.advance(STOPPED_TASK_WINDOW_SECONDS)
    rolled_back = cloud.finish("rollback", resumed)
    assert rolled_back["outcome"] == "rolled_back"
    assert [e.sequence for e in cloud.ledger(execution)] == list(range(len(cloud.ledger(execution))))


def test_a_rollout_baking_longer_than_two_hours_still_holds_its_lock_and_is_aborted(abort: Abort) -> None:
    execution = abort.execution()
    cloud = abort.rollout
    # A day per bake, as the config allows: the lease lasts as long as the plan.
    state = cloud.run(
        "set_traffic",
        cloud.run("check_deployment", cloud.run("deploy", abort.start(execution, bake_minutes=1440))),
    )
    cloud.clock.advance(3 * 3600)
    assert cloud.lock_holder() == execution
    # A second approval is refused: the endpoint is still this rollout's.
    with pytest.raises(EndpointLocked):
        cloud.start(execution_id=f"{execution}-second")
    result = abort.run({"endpoint": "churn", "reason": "the bake looks wrong"})
    assert [a["rollout_id"] for a in result["aborted"]] == [execution]
    assert state["lease_seconds"] >= 4 * 1440 * 60


def _failed(abort: Abort, execution: str) -> dict[str, Any]:
    return {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": execution, "status": "FAILED", "stateMachineArn": abort.machine_arn},
    }


def test_a_rollout_that_failed_to_release_after_its_outcome_has_its_lock_released(abort: Abort) -> None:
    execution = abort.execution()
    cloud = abort.rollout
    # Started only, no outcome: a failed execution keeps its lock (its endpoint may need a person).
    state = abort.start(execution)
    assert abort.run(_failed(abort, execution)) == {"released": []}
    assert cloud.lock_holder() == execution
    state = cloud.run("set_traffic", cloud.run("check_deployment", cloud.run("deploy", state)))
    cloud.finish("promote", state | {"decision": {"action": "promote", "reason": "judge: promote"}})
    # "Promoted, lock not released": its release failed past its retries, the execution FAILED.
    assert cloud.lock_holder() == execution
    assert abort.run(_failed(abort, execution)) == {
        "released": [{"endpoint": "churn", "rollout_id": execution}]
    }
    assert cloud.lock_holder() is None


def test_the_kill_switch_deployed_on_aborts_and_an_off_switch_does_not(abort: Abort) -> None:
    execution = abort.execution()
    abort.start(execution)
    assert abort.run(FLAGS_DEPLOYED) == {"aborted": [], "skipped": []}
    abort.flags.values = flag_values(kill_switch={"enabled": True, "reason": "INC-4711 bad predictions"})
    result = abort.run(FLAGS_DEPLOYED)
    assert result["aborted"] == [
        {"endpoint": "churn", "reason": "kill switch on: INC-4711 bad predictions", "rollout_id": execution}
    ]


def test_a_person_aborts_by_endpoint_and_nothing_running_is_said_plainly(abort: Abort) -> None:
    assert abort.run({"endpoint": "churn", "reason": "wrong package approved"}) == {
        "aborted": [],
        "skipped": [
            {
                "endpoint": "churn",
                "reason": "aborted: wrong package approved",
                "left_alone": f"no rollout is running on {ENDPOINT_NAME}",
            }
        ],
    }
    execution = abort.execution()
    abort.start(execution)
    result = abort.run({"endpoint": "churn", "reason": "wrong package approved"})
    assert [a["rollout_id"] for a in result["aborted"]] == [execution]


def test_an_execution_that_timed_out_is_cleaned_up_and_other_states_are_ignored(abort: Abort) -> None:
    execution = abort.execution()
    abort.start(execution)

    def ended(status: str, arn: str = execution) -> dict[str, Any]:
        return {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {"executionArn": arn, "status": status, "stateMachineArn": abort.machine_arn},
        }

    assert abort.run(ended("SUCCEEDED")) == {"aborted": [], "skipped": []}
    # An execution that never started a rollout (refused, or an abort's own) has nothing to clean up.
    assert abort.run(ended("TIMED_OUT", arn=f"{execution}-other")) == {"aborted": [], "skipped": []}
    result = abort.run(ended("TIMED_OUT"))
    assert [a["rollout_id"] for a in result["aborted"]] == [execution]
    assert "ended TIMED_OUT before an outcome" in result["aborted"][0]["reason"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "must be a JSON object"),
        ({"endpoint": "fraud", "reason": "x"}, "unknown endpoint 'fraud'"),
        ({"endpoint": "churn"}, "reason: Field required"),
        (alarm_event(name="someone-elses-alarm"), "aborts no endpoint here"),
        (
            {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
            "unexpected event 'Object Created'",
        ),
    ],
)
def test_bad_abort_input_is_refused_and_changes_nothing(abort: Abort, event: Any, message: str) -> None:
    execution = abort.execution()
    abort.start(execution)
    with pytest.raises(InvalidAbortTrigger, match=message):
        abort.run(event)
    assert abort.states.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert abort.abort_executions() == []
    assert abort.rollout.lock_holder() == execution


def test_an_alarm_back_to_ok_aborts_nothing(abort: Abort) -> None:
    abort.start(abort.execution())
    assert abort.run(alarm_event(state="OK")) == {"aborted": [], "skipped": []}


def test_a_rollout_that_recorded_nothing_cannot_be_resumed(abort: Abort) -> None:
    with pytest.raises(RolloutNotResumable, match="no recorded start"):
        abort.resume.handler(
            {"abort": {"rollout_id": "arn:nothing", "endpoint": "churn", "reason": "x"}}, LambdaContextStub()
        )


def test_a_retried_judge_keeps_its_recorded_verdict_despite_late_datapoints(rollout: Rollout) -> None:  # noqa: F811
    state = rollout.deployed()
    rollout.serve(state, ERRING, BAD)
    judged = rollout.run("judge", state)
    assert judged["decision"]["action"] == "rollback"
    # Late datapoints now make the step look healthy; the retry (same input) must not contradict the ledger.
    late = Minute(requests=50_000, errors_5xx=0, latency_us=20_000)
    rollout.metrics.minutes("challenger", int(state["step_started_at"]), [late] * 10)
    assert rollout.run("judge", state) == judged
    assert [e.kind for e in rollout.ledger()].count(EntryKind.JUDGE_VERDICT) == 1


def test_a_running_rollout_whose_lease_expired_is_found_from_its_execution_and_aborted(abort: Abort) -> None:
    execution = abort.execution()
    cloud = abort.rollout
    state = cloud.run("check_deployment", cloud.run("deploy", abort.start(execution)))
    # Stuck where nothing renews its lease (a Wait longer than the plan, say): the lease has expired.
    cloud.clock.advance(state["lease_seconds"] + 60)
    result = abort.run({"endpoint": "churn", "reason": "the rollout looks stuck"})
    assert [a["rollout_id"] for a in result["aborted"]] == [execution]
    [rollback] = abort.abort_executions()
    assert rollback["name"] == abort_execution_name(execution)
    assert abort.states.describe_execution(executionArn=execution)["status"] == "ABORTED"
    # Its rollback takes the lock over although the lease had expired.
    resumed = abort.resume.handler(json.loads(rollback["input"]), LambdaContextStub())
    assert cloud.lock_holder() == execution and resumed["generation"] > state["generation"]


def test_a_stopped_execution_is_not_taken_for_the_running_rollout(abort: Abort) -> None:
    execution = abort.execution()
    cloud = abort.rollout
    state = abort.start(execution)
    cloud.clock.advance(state["lease_seconds"] + 60)
    abort.states.stop_execution(executionArn=execution, error="Stopped", cause="by hand")
    result = abort.run({"endpoint": "churn", "reason": "nothing runs"})
    assert result["aborted"] == []
    assert result["skipped"][0]["left_alone"] == f"no rollout is running on {ENDPOINT_NAME}"
