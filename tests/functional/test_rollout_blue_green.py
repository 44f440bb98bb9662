"""The blue_green strategy end to end: the synthesized rollout workflow on moto's executor, the real
handlers from the synthesized asset, the candidate's golden cases answered by a real inference server, and
SageMaker's deployment guardrails emulated on the workers' accelerated clock
(`localcloud.sagemaker.blue_green`): the canary shifted and baked, then the rest, or the deployment rolled
back by SageMaker when one of its rollback alarms goes to ALARM.
"""

from __future__ import annotations

import threading
import time

import boto3
import pytest

from lambdas.rollout.aws.endpoint_ops import model_name_for
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from tests.functional.rollout_cloud import Deployment
from tests.functional.rollout_support import BOOTSTRAP_MODEL, ENDPOINT_NAME, FAILING, MetricWriter

ALARM_DEADLINE_SECONDS = 60.0


# --- blue_green ----------------------------------------------------------------------------------------


def test_blue_green_shifts_under_sagemakers_guardrails_and_is_promoted(cloud: Deployment) -> None:
    package = cloud.register_package()
    execution = cloud.run(cloud.request(package, strategy="blue_green"))
    arn = execution["executionArn"]
    assert execution["status"] == "SUCCEEDED", cloud.task_errors(arn)
    entered = cloud.states_entered(arn)
    assert "Deploy the challenger for its strategy" in entered
    assert "Shift traffic to the next step" not in entered  # SageMaker shifted it, not the workflow
    assert entered[-1] == "Promoted"
    # The guardrails' deployment went through its stages on the clock before the endpoint was in service.
    guarded = cloud.updates.blue_green
    assert guarded is not None
    [deployment] = guarded.finished
    assert deployment.ended == "completed"
    assert [share for _, share in deployment.history] == [10.0, 100.0]  # dev's CANARY of 10 %
    request_sent = cloud.updates.requests[-1]
    assert request_sent["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
        "Type"
    ] == ("CANARY")
    candidate = model_name_for(ENDPOINT_NAME, package)
    assert cloud.running_models() == {"champion": candidate, "challenger": candidate}
    assert cloud.package(package)["ModelApprovalStatus"] == "Approved"
    assert cloud.lock_holder() is None


def trip_alarm_once_the_canary_serves(cloud: Deployment, alarm: str, tripped: threading.Event) -> None:
    """The candidate's fleet fails requests once it has its canary share: the champion variant's 5XX
    minutes on the clock, the alarm evaluated as CloudWatch would."""
    sagemaker = boto3.client("sagemaker")
    deadline = time.monotonic() + ALARM_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if "PendingDeploymentSummary" in sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME):
            break
        time.sleep(0.02)
    else:
        return
    minute = int(cloud.aws.clock.now()) // 60 * 60
    MetricWriter(boto3.client("cloudwatch")).minutes("champion", minute, [FAILING] * 3)
    # The stack's EventBridge rules are left out: SageMaker's own rollback is what is shown here.
    evaluator = AlarmEvaluator(clock=cloud.aws.clock.now, send_events=False, run_actions=False)
    while time.monotonic() < deadline:
        if any(t.alarm_name == alarm and t.state == "ALARM" for t in evaluator.evaluate()):
            tripped.set()
            return
        time.sleep(0.05)


# The alarm is tripped while the rollout waits for SageMaker's guarded deployment.
@pytest.mark.real_waits
def test_blue_green_is_rolled_back_by_sagemaker_when_a_rollback_alarm_fires(cloud: Deployment) -> None:
    settings = cloud.aws.rollout.settings.endpoints[cloud.aws.rollout.endpoint]
    [alarm] = [name for name in settings.rollback_alarm_names if name.endswith("-champion-5xx")]
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": ENDPOINT_NAME},
            {"Name": "VariantName", "Value": "champion"},
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    package = cloud.register_package()
    tripped = threading.Event()
    watcher = threading.Thread(target=trip_alarm_once_the_canary_serves, args=(cloud, alarm, tripped))
    watcher.start()
    execution = cloud.run(cloud.request(package, strategy="blue_green"))
    watcher.join()
    assert tripped.is_set(), "the alarm never went to ALARM during the deployment"
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(arn)
    guarded = cloud.updates.blue_green
    assert guarded is not None
    assert [d.ended for d in guarded.finished] == ["rolled_back"]
    # All SageMaker shows of it: in service on the old config, the reason, the deployment config.
    ledger = cloud.ledger(arn)
    checked = [e.payload for e in ledger if e.payload.get("action") == "update_checked"]
    assert checked[-2]["state"] == "rolled_back"
    assert alarm in str(checked[-2]["reason"])
    assert f"deployment guardrails watching alarms {', '.join(settings.rollback_alarm_names)}" in str(
        checked[-2]["reason"]
    )
    rejected = cloud.package(package)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert "SageMaker rolled the update back" in rejected["ApprovalDescription"]
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    assert cloud.lock_holder() is None
