"""Guardrails beyond the model, on the workflow end to end: the synthesized state machine on moto's executor
with its real handlers (`tests/functional/rollout_cloud.py`), for an environment whose rollouts are
guarded by an alarm outside the stack and by a cost tolerance.

* an alarm outside the stack going to ALARM aborts the running rollout through the abort rule;
* a rollout does not start while that alarm is in ALARM;
* a challenger whose cost per 1,000 predictions is over the tolerance is rolled back for cost;
* end to end, the alarm driven by a metric the test publishes and evaluated by the local cloud's
  CloudWatch (`localcloud.cloudwatch`), its state change delivered by the stack's rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest

from lambdas.rollout.ledger import EntryKind
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from tests.functional.rollout_cloud import Deployment, EmulatedAws, deploy, emulated_app
from tests.functional.rollout_support import BOOTSTRAP_MODEL, HEALTHY, Minute, wait_until
from tests.infra.conftest import synthesize
from tests.unit.test_config import dev_document, write_env

GUARDRAIL_ALARM = "orders-db-cpu-high"
GUARDRAIL_ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{GUARDRAIL_ALARM}"
MAX_COST_INCREASE = 0.2
TRAFFIC_DEADLINE_SECONDS = 60.0
# As accurate and error-free, three times as slow: three times the instances at the champion's load.
SLOW = Minute(requests=3000, latency_us=60_000, trials=3000, successes=300)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    """dev, its rollouts guarded by the orders database's alarm and a 20 % cost tolerance; the judge
    compares errors and conversion only, so that the latency the cost follows is the cost guardrail's."""
    config_dir = tmp_path_factory.mktemp("guarded-config")
    document = dev_document()
    document["rollout"]["guardrails"] = {"alarms": [GUARDRAIL_ALARM], "max_cost_increase": MAX_COST_INCREASE}
    document["rollout"]["judge"]["metrics"] = ["errors", "conversion"]
    document.pop("release", None)  # dev's release into prod: not what these tests are about
    write_env(config_dir, document)
    outdir = tmp_path_factory.mktemp("guarded-synth")
    synthesize(outdir, "dev", config_dir=config_dir)
    with emulated_app(Path(outdir) / "cdk.out-dev", tmp_path_factory.mktemp("clock")) as emulated:
        yield emulated


@pytest.fixture
def cloud(aws: EmulatedAws, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    for deployment in deploy(aws, request.node):
        # The alarm outside the stack, as the database's team created it.
        boto3.client("cloudwatch").put_metric_alarm(
            AlarmName=GUARDRAIL_ALARM,
            Namespace="AWS/RDS",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "orders"}],
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=90,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
        set_alarm(GUARDRAIL_ALARM, "OK", "Threshold Crossed: 1 datapoint [40.0] was not greater than 90.0")
        yield deployment


def set_alarm(name: str, state: Literal["ALARM", "OK"], reason: str) -> None:
    boto3.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def wait_for_traffic(cloud: Deployment, rollout: str) -> None:
    wait_until(
        lambda: cloud.weights().get("challenger", 0.0) > 0.0,
        lambda: f"a traffic step ({cloud.states_entered(rollout)}, {cloud.task_errors(rollout)})",
        TRAFFIC_DEADLINE_SECONDS,
    )


def test_the_settings_carry_the_guardrails_and_the_abort_rule_matches_the_alarm_it_does_not_own(
    aws: EmulatedAws,
) -> None:
    settings = aws.rollout.settings.endpoints[aws.rollout.endpoint]
    assert settings.rollout.guardrails.alarm_names == (GUARDRAIL_ALARM,)
    assert settings.rollout.guardrails.max_cost_increase == MAX_COST_INCREASE
    assert settings.instance_prices == {"ml.m5.large": 0.115}
    template = aws.rollout.template
    assert not [
        alarm
        for alarm in template.resources_of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("AlarmName") == GUARDRAIL_ALARM
    ]
    patterns = [
        aws.rollout.resolver.resolve(rule["Properties"]["EventPattern"])
        for rule in template.resources_of_type("AWS::Events::Rule").values()
        if "CloudWatch Alarm State Change" in str(rule["Properties"].get("EventPattern"))
    ]
    assert any(GUARDRAIL_ALARM_ARN in pattern["resources"] for pattern in patterns)
    # The start and the gates read it (DescribeAlarms on it alone); no other function is allowed to.
    readers = {
        spec.handler.removeprefix("lambdas.handlers.").removesuffix(".handler")
        for spec in aws.rollout.functions
        if spec.logical_id and _may_describe(aws, spec.logical_id, GUARDRAIL_ALARM_ARN)
    }
    assert readers == {"rollout_start", "rollout_gates"}


def _may_describe(aws: EmulatedAws, function_id: str, alarm_arn: str) -> bool:
    """Whether the function's role's policies allow DescribeAlarms on the alarm."""
    resolve = aws.rollout.resolver.resolve
    template = aws.rollout.template
    role = template.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    for policy in template.resources_of_type("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "cloudwatch:DescribeAlarms" not in actions:
                continue
            resources = resolve(statement["Resource"])
            if alarm_arn in (resources if isinstance(resources, list) else [resources]):
                return True
    return False


def test_a_rollout_does_not_start_while_a_guardrail_alarm_is_in_alarm(cloud: Deployment) -> None:
    set_alarm(GUARDRAIL_ALARM, "ALARM", "Threshold Crossed: 1 datapoint [97.5] was greater than 90.0")
    package = cloud.register_package()
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolloutRefused")
    [(error, message)] = cloud.task_errors(arn)
    assert error == "GuardrailAlarmsInAlarm"
    assert f"guardrail alarm(s) in ALARM: {GUARDRAIL_ALARM} (Threshold Crossed: 1 datapoint [97.5]" in message
    [notified] = cloud.notifications()
    assert notified["event"] == "rollout_not_started"
    assert GUARDRAIL_ALARM in notified["reason"]
    assert "once the guardrail alarm is OK" in notified["action"]
    # Nothing changed: no lock, no ledger, the package still approved, the endpoint as it was.
    assert cloud.lock_holder() is None
    assert cloud.ledger(arn) == []
    assert cloud.package(package)["ModelApprovalStatus"] == "Approved"
    assert cloud.updates.requests == []
    # Once the alarm is OK again, the same package rolls out.
    set_alarm(GUARDRAIL_ALARM, "OK", "Threshold Crossed: 1 datapoint [41.0] was not greater than 90.0")
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    again = cloud.run(cloud.approval_event(package))
    assert again["status"] == "SUCCEEDED", cloud.task_errors(again["executionArn"])


@pytest.mark.real_waits
def test_a_guardrail_alarm_going_to_alarm_aborts_the_running_rollout_naming_it(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    rollout = cloud.start(cloud.approval_event(package))
    wait_for_traffic(cloud, rollout)
    reason = "Threshold Crossed: 1 datapoint [97.5] was greater than 90.0"
    set_alarm(GUARDRAIL_ALARM, "ALARM", reason)
    detail: dict[str, Any] = {
        "alarmName": GUARDRAIL_ALARM,
        "state": {"value": "ALARM", "reason": reason},
        "previousState": {"value": "OK"},
    }
    # What CloudWatch puts on the default bus; the stack's abort rule delivers it to the abort function.
    cloud.put_event("aws.cloudwatch", "CloudWatch Alarm State Change", detail, [GUARDRAIL_ALARM_ARN])
    [delivery] = cloud.events.wait()
    assert delivery.error is None, delivery.result
    [aborted] = delivery.result["aborted"]
    assert aborted["rollout_id"] == rollout
    assert aborted["reason"] == f"guardrail alarm {GUARDRAIL_ALARM} in ALARM: {reason}"
    assert cloud.finished(rollout)["status"] == "ABORTED"
    [rollback] = [e for e in cloud.executions() if e["name"].startswith("abort-")]
    ended = cloud.finished(rollback["executionArn"])
    assert (ended["status"], ended["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(
        ended["executionArn"]
    )
    ledger = cloud.ledger(rollout)
    assert ledger[-1].kind is EntryKind.OUTCOME
    assert f"guardrail alarm {GUARDRAIL_ALARM} in ALARM" in str(ledger[-1].payload["reason"])
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert f"guardrail alarm {GUARDRAIL_ALARM} in ALARM" in rejected["ApprovalDescription"]
    assert GUARDRAIL_ALARM in rejected["CustomerMetadataProperties"]["rollout.reason"]
    [notified] = [n for n in cloud.notifications() if n["event"] == "rollout_rolled_back"]
    assert GUARDRAIL_ALARM in notified["reason"]
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}
    assert cloud.lock_holder() is None


def test_a_challenger_over_the_cost_tolerance_is_rolled_back_for_cost_with_the_figures(
    cloud: Deployment,
) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=SLOW)
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(arn)
    ledger = cloud.ledger(arn)
    [verdict] = [e.payload for e in ledger if e.kind is EntryKind.JUDGE_VERDICT]
    assert verdict["action"] == "rollback"
    assert str(verdict["action_reason"]).startswith("cost: ")
    cost: Any = verdict["cost"]
    assert cost["instance_type"] == "ml.m5.large"
    # The latencies are the windows' averages as CloudWatch stores them: equal to a few parts in 10^5.
    assert cost["champion_latency_ms"] == pytest.approx(20.0, rel=1e-3)
    assert cost["challenger_latency_ms"] == pytest.approx(60.0, rel=1e-3)
    # Three times as slow: three times the instance-hours for the same predictions.
    assert cost["challenger_instances"] == pytest.approx(3 * cost["champion_instances"], rel=1e-3)
    assert cost["increase"] == pytest.approx(2.0, rel=1e-3)
    assert cost["over_tolerance"] is True
    assert ledger[-1].kind is EntryKind.OUTCOME
    assert str(ledger[-1].payload["reason"]).startswith("cost: ")
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    metadata = rejected["CustomerMetadataProperties"]
    assert metadata["rollout.reason"].startswith("cost: ")
    assert "increase=+200pct" in metadata["rollout.cost"]
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}


@pytest.mark.real_waits
def test_the_orders_database_running_hot_aborts_the_rollout_through_the_evaluated_alarm(
    cloud: Deployment,
) -> None:
    """End to end: the test publishes the database's CPU; the local cloud's CloudWatch evaluates the alarm
    outside the stack and puts its state change on the bus; the stack's abort rule delivers it to the
    abort function, which stops the rollout and rolls it back."""
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    evaluator = AlarmEvaluator(clock=cloud.aws.clock.now)
    rollout = cloud.start(cloud.approval_event(package))
    wait_for_traffic(cloud, rollout)
    assert evaluator.evaluate() == []  # OK so far: no datapoint breaches
    minute = int(cloud.aws.clock.now()) // 60 * 60
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "orders"}],
                "Timestamp": datetime.fromtimestamp(minute - offset, UTC),
                "Value": 97.5,
            }
            for offset in (60, 120)
        ],
    )
    [transition] = evaluator.evaluate()
    assert (transition.alarm_name, transition.state) == (GUARDRAIL_ALARM, "ALARM")
    [delivery] = cloud.events.wait()
    assert delivery.error is None, delivery.result
    [aborted] = delivery.result["aborted"]
    assert aborted["rollout_id"] == rollout
    assert aborted["reason"].startswith(f"guardrail alarm {GUARDRAIL_ALARM} in ALARM: Threshold Crossed")
    assert cloud.finished(rollout)["status"] == "ABORTED"
    [rollback] = [e for e in cloud.executions() if e["name"].startswith("abort-")]
    ended = cloud.finished(rollback["executionArn"])
    assert (ended["status"], ended["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(
        ended["executionArn"]
    )
    outcome = cloud.ledger(rollout)[-1]
    assert outcome.kind is EntryKind.OUTCOME
    assert f"guardrail alarm {GUARDRAIL_ALARM} in ALARM" in str(outcome.payload["reason"])
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}
    assert cloud.lock_holder() is None
