"""The rollout workflow end to end: the synthesized state machine on moto's executor, every task the real
handler from its synthesized asset, SageMaker, DynamoDB, CloudWatch, S3 and SNS on moto.

How it is emulated: `tests/functional/rollout_cloud.py` (the handlers' clock runs 300 times faster, so a
10-minute bake passes in 2 s; moto's missing UpdateEndpoint comes from `localcloud.sagemaker.control`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from unittest import mock

import pytest
from moto.cloudwatch.exceptions import CloudWatchException
from moto.cloudwatch.models import CloudWatchBackend

from lambdas.rollout.aws.endpoint_ops import model_name_for
from lambdas.rollout.ledger import EntryKind, LedgerEntry
from tests.functional.golden_models import GOOD, OTHER
from tests.functional.rollout_cloud import Deployment
from tests.functional.rollout_support import BOOTSTRAP_MODEL, FAILING, HEALTHY, wait_until

LOCK_DEADLINE_SECONDS = 20.0
GATES = ["golden_inputs", "metric_thresholds", "input_drift"]


def actions(entries: list[LedgerEntry]) -> list[str]:
    """Each entry as its kind, and the action, gate or status that says what it recorded."""
    labels = []
    for entry in entries:
        payload = entry.payload
        detail = payload.get("action") or payload.get("gate") or payload.get("status")
        labels.append(f"{entry.kind.value}:{detail}" if detail else entry.kind.value)
    return labels


def evidence(verdict: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """The numbers a judge verdict recorded for one metric."""
    recorded = cast("list[dict[str, Any]]", verdict["evidence"])
    [found] = [item for item in recorded if item["metric"] == metric]
    return found


def wait_for_lock(cloud: Deployment, holder: str) -> None:
    wait_until(lambda: cloud.lock_holder() == holder, f"{holder} taking the lock", LOCK_DEADLINE_SECONDS)


def test_a_good_model_is_promoted_through_every_step_with_its_evidence(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert execution["status"] == "SUCCEEDED", cloud.task_errors(arn)
    steps = ["Shift traffic to the next step", "Bake", "Ask the judge", "What did the judge say?"]
    # The promotion waits for its own endpoint update before it records and approves.
    assert cloud.states_entered(arn)[-(3 * len(steps) + 9) :] == [
        *steps * 3,
        "Promote the challenger",
        "Is the promotion recorded?",
        "Wait for the promotion",
        "Is the promotion done?",
        "Is the candidate in service?",
        "Promote the challenger",
        "Is the promotion recorded?",
        "Release the lock",
        "Promoted",
    ]
    ledger = cloud.ledger(arn)
    advanced = ["deployment:set_weights", "judge_verdict:advance", "traffic_step"]
    assert actions(ledger) == [
        "deployment:rollout_started",
        "deployment:deploy_challenger",
        "deployment:update_checked",
        *(f"gate_result:{gate}" for gate in GATES),
        *advanced * 2,
        "deployment:set_weights",
        "judge_verdict:promote",
        "traffic_step",
        "deployment:update_checked",
        "outcome:promoted",
    ]
    verdicts = [e.payload for e in ledger if e.kind is EntryKind.JUDGE_VERDICT]
    assert [(v["challenger_percent"], v["verdict"], v["action"]) for v in verdicts] == [
        (5, "promote", "advance"),
        (25, "promote", "advance"),
        (50, "promote", "promote"),
    ]
    served = [e.payload for e in ledger if e.kind is EntryKind.TRAFFIC_STEP]
    assert all(step["challenger_requests"] and step["champion_requests"] for step in served)
    challenger = cloud.package(package)
    assert challenger["ModelApprovalStatus"] == "Approved"
    assert challenger["CustomerMetadataProperties"]["rollout.outcome"] == "promoted"
    assert set(cloud.running_models().values()) == {ledger[1].payload["model"]}
    assert cloud.lock_holder() is None


def test_a_bad_model_is_rolled_back_at_its_first_step_with_the_evidence_recorded(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=FAILING)
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack")
    assert cloud.states_entered(arn).count("Ask the judge") == 1
    ledger = cloud.ledger(arn)
    assert actions(ledger)[-5:] == [
        "deployment:set_weights",
        "judge_verdict:rollback",
        "traffic_step",
        "deployment:update_checked",
        "outcome:rolled_back",
    ]
    verdict = next(e.payload for e in ledger if e.kind is EntryKind.JUDGE_VERDICT)
    assert (verdict["challenger_percent"], verdict["verdict"]) == (5, "rollback")
    assert evidence(verdict, "errors")["outcome"] == "harm"
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith("judge:")
    assert rejected["CustomerMetadataProperties"]["rollout.outcome"] == "rolled_back"
    # The champion's model in every slot, all traffic on the champion.
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}
    [notified] = cloud.notifications()
    assert (notified["event"], notified["rollout_id"]) == ("rollout_rolled_back", arn)
    assert cloud.lock_holder() is None


def test_a_failed_gate_rolls_back_before_any_traffic_with_the_gate_results(cloud: Deployment) -> None:
    package = cloud.register_package(metrics={"accuracy": 0.55, "auc": 0.95})
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack")
    entered = cloud.states_entered(arn)
    assert "Shift traffic to the next step" not in entered
    # The candidate was deployed at 0 % for the gates: the rollback removes it, waits, records.
    assert entered[entered.index("Run pre-traffic gates") :][:3] == [
        "Run pre-traffic gates",
        "Did the gates pass?",
        "Roll back to the champion",
    ]
    assert entered[-5:] == [
        "Roll back to the champion",
        "Is the rollback recorded?",
        "Release the lock after the rollback",
        "Rolled back or too little data?",
        "Rolled back",
    ]
    ledger = cloud.ledger(arn)
    assert actions(ledger) == [
        "deployment:rollout_started",
        "deployment:deploy_challenger",
        "deployment:update_checked",
        *(f"gate_result:{gate}" for gate in GATES),
        "deployment:update_checked",
        "outcome:rolled_back",
    ]
    assert [e.payload["status"] for e in ledger if e.kind is EntryKind.GATE_RESULT] == [
        "passed",
        "failed",
        "passed",
    ]
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith("gates:")
    assert "accuracy" in rejected["ApprovalDescription"]
    # The candidate never had a weight: deployed at 0 %, then removed with the champion's resting config.
    assert [w for r in cloud.updates.requests for w in r.get("DesiredWeightsAndCapacities", [])] == []
    assert cloud.running_models() == {"champion": BOOTSTRAP_MODEL, "challenger": BOOTSTRAP_MODEL}
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}
    assert cloud.lock_holder() is None


def test_the_golden_gate_runs_the_deployed_candidate_and_rolls_back_one_that_answers_otherwise(
    cloud: Deployment,
) -> None:
    # The package's own golden_outputs.json matches its golden cases; the artifact it deploys does not.
    package = cloud.register_package(model=OTHER)
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(arn)
    assert "Shift traffic to the next step" not in cloud.states_entered(arn)
    ledger = cloud.ledger(arn)
    [golden] = [e.payload for e in ledger if e.payload.get("gate") == "golden_inputs"]
    assert golden["status"] == "failed"
    failed = cast("dict[str, Any]", golden["detail"])["failed_cases"]
    assert failed
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    description = rejected["ApprovalDescription"]
    assert description.startswith("gates: blocked by golden_inputs")
    assert f"{failed[0]}: probabilities [" in description
    assert cloud.running_models() == {"champion": BOOTSTRAP_MODEL, "challenger": BOOTSTRAP_MODEL}
    assert cloud.lock_holder() is None


def test_the_golden_gate_passes_a_deployed_candidate_that_reproduces_its_cases(cloud: Deployment) -> None:
    package = cloud.register_package(model=GOOD)
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert execution["status"] == "SUCCEEDED", cloud.task_errors(arn)
    [golden] = [e.payload for e in cloud.ledger(arn) if e.payload.get("gate") == "golden_inputs"]
    assert golden["status"] == "passed"
    cases = cast("dict[str, Any]", golden["detail"])["cases"]
    assert cases and all(case["actual_probabilities"] for case in cases)


class AccessDeniedException(CloudWatchException):
    code = "AccessDeniedException"


# An authorization failure is common to every AWS API, so CloudWatch's service model lists no shape for
# it and moto warns while it answers with it.
@pytest.mark.filterwarnings("ignore:Exception\\(AccessDeniedException\\):UserWarning")
def test_a_task_failing_mid_way_rolls_back_and_loses_no_evidence(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    # The judge loses its CloudWatch access after the challenger has traffic (say, a policy change).
    denied = AccessDeniedException("not authorized to perform: cloudwatch:GetMetricData")
    with mock.patch.object(CloudWatchBackend, "get_metric_data", side_effect=denied):
        execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack")
    [(error, message)] = cloud.task_errors(arn)
    assert error == "ClientError"
    assert "(AccessDeniedException) when calling the GetMetricData operation" in message
    ledger = cloud.ledger(arn)
    assert actions(ledger) == [
        "deployment:rollout_started",
        "deployment:deploy_challenger",
        "deployment:update_checked",
        *(f"gate_result:{gate}" for gate in GATES),
        "deployment:set_weights",
        "deployment:update_checked",
        "outcome:rolled_back",
    ]
    assert "AccessDeniedException" in str(ledger[-1].payload["reason"])
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith("ClientError:")
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}
    assert cloud.lock_holder() is None


@pytest.mark.real_waits
def test_a_second_rollout_of_the_same_endpoint_is_refused_while_the_first_runs(cloud: Deployment) -> None:
    first_package, second_package = cloud.register_package(), cloud.register_package()
    # The first rollout is rolled back at its first step: it ends soon after the second was refused.
    cloud.serve(champion=HEALTHY, challenger=FAILING)
    first = cloud.start(cloud.approval_event(first_package))
    wait_for_lock(cloud, first)
    second = cloud.run(cloud.approval_event(second_package))
    assert (second["status"], second["error"]) == ("FAILED", "EndpointLocked")
    [(error, message)] = cloud.task_errors(second["executionArn"])
    assert error == "EndpointLocked"
    assert f"locked by rollout {first}" in message
    assert cloud.ledger(second["executionArn"]) == []
    assert cloud.package(second_package)["ModelApprovalStatus"] == "Approved"
    assert "CustomerMetadataProperties" not in cloud.package(second_package)
    assert cloud.finished(first)["error"] == "RolledBack"
    second_model = model_name_for(cloud.endpoint_name, second_package)
    assert second_model not in {m["ModelName"] for m in cloud.sagemaker.list_models()["Models"]}


def test_a_silent_sagemaker_rollback_of_the_deployment_is_detected_and_rolled_back(
    cloud: Deployment,
) -> None:
    package = cloud.register_package()
    cloud.updates.silently_roll_back.add(cloud.endpoint_name)
    execution = cloud.run(cloud.approval_event(package))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack")
    assert "Shift traffic to the next step" not in cloud.states_entered(arn)
    ledger = cloud.ledger(arn)
    assert actions(ledger)[-3:] == [
        "deployment:deploy_challenger",
        "deployment:update_checked",
        "outcome:rolled_back",
    ]
    assert ledger[-2].payload["state"] == "rolled_back"
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert "SageMaker rolled the update back" in rejected["ApprovalDescription"]
    # The endpoint never left the champion's config; the rollback had nothing to restore.
    assert cloud.running_models() == {"champion": BOOTSTRAP_MODEL, "challenger": BOOTSTRAP_MODEL}
    assert len(cloud.updates.requests) == 1
    assert cloud.lock_holder() is None


@pytest.mark.real_waits
def test_the_same_approval_delivered_twice_changes_nothing_twice(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    event = cloud.approval_event(package)
    first = cloud.start(event)
    wait_for_lock(cloud, first)
    duplicate = cloud.run(event)
    assert (duplicate["status"], duplicate["error"]) == ("FAILED", "EndpointLocked")
    assert cloud.finished(first)["status"] == "SUCCEEDED"
    promoted = cloud.package(package)
    running = cloud.running_models()
    updates = len(cloud.updates.requests)
    # Delivered again once the rollout has ended: the package was rolled out already.
    late = cloud.run(event)
    assert (late["status"], late["error"]) == ("FAILED", "RolloutRefused")
    [(error, message)] = cloud.task_errors(late["executionArn"])
    assert error == "PackageNotRollable"
    assert "rolled out already (outcome: promoted)" in message
    for execution in (duplicate, late):
        assert cloud.ledger(execution["executionArn"]) == []
    assert cloud.package(package) == promoted
    assert cloud.running_models() == running
    assert len(cloud.updates.requests) == updates
    assert cloud.lock_holder() is None


@pytest.mark.real_waits
def test_the_endpoints_alarm_stops_the_running_rollout_and_rolls_it_back(cloud: Deployment) -> None:
    package = cloud.register_package()
    # Both healthy for the judge: only the alarm can end this rollout early.
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    rollout = cloud.start(cloud.approval_event(package))
    wait_for_traffic(cloud)
    settings = cloud.aws.rollout.settings.endpoints[cloud.aws.rollout.endpoint]
    alarm = str(settings.abort_alarm_name)
    alarm_arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    detail = {
        "alarmName": alarm,
        "state": {"value": "ALARM", "reason": "ALARM(mlrollout-dev-churn-challenger-5xx)"},
        "previousState": {"value": "OK"},
    }
    cloud.put_event("aws.cloudwatch", "CloudWatch Alarm State Change", detail, [alarm_arn])
    [delivery] = cloud.events.wait()
    assert delivery.error is None, delivery.result
    [aborted] = delivery.result["aborted"]
    assert aborted["rollout_id"] == rollout
    stopped = cloud.finished(rollout)
    assert stopped["status"] == "ABORTED"
    [rollback] = [
        e for e in cloud.executions() if e["executionArn"] != rollout and e["name"].startswith("abort-")
    ]
    ended = cloud.finished(rollback["executionArn"])
    assert (ended["status"], ended["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(
        ended["executionArn"]
    )
    assert cloud.states_entered(ended["executionArn"])[:3] == [
        "Abort or new rollout?",
        "Load the aborted rollout",
        "Roll back to the champion",
    ]
    # The aborted rollout's own ledger, continued by the rollback: nothing lost, the outcome last.
    ledger = cloud.ledger(rollout)
    assert actions(ledger)[0] == "deployment:rollout_started"
    assert actions(ledger)[-1] == "outcome:rolled_back"
    assert f"alarm {alarm} in ALARM" in str(ledger[-1].payload["reason"])
    assert [e.sequence for e in ledger] == list(range(len(ledger)))
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith("RolloutAborted: alarm")
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}
    assert cloud.lock_holder() is None


def wait_for_traffic(cloud: Deployment) -> None:
    wait_until(lambda: cloud.weights().get("challenger", 0.0) > 0.0, "a traffic step", LOCK_DEADLINE_SECONDS)
