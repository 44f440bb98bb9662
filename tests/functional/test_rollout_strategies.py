"""The shadow and ab_test strategies end to end: the synthesized rollout workflow on moto's executor, the
real handlers from the synthesized asset, the candidate's golden cases answered by a real inference server
(blue_green: `test_rollout_blue_green.py`).

The judge reads the variants' minutes written on that clock (`Deployment.serve`), as in
`test_rollout_state_machine.py`; the shadow variant's minutes stand for the mirrored requests it answered.
The requests a real endpoint mirrors and splits are in `make demo STRATEGY=...` (`localcloud/demo`).
"""

from __future__ import annotations

from typing import Any

import boto3

from lambdas.rollout.aws.endpoint_ops import model_name_for
from lambdas.rollout.ledger import EntryKind
from tests.functional.rollout_cloud import Deployment
from tests.functional.rollout_support import (
    BOOTSTRAP_MODEL,
    ENDPOINT_NAME,
    FAILING,
    HEALTHY,
    MetricWriter,
    Minute,
)

# The shadow variant's minutes, written at once for longer than any rollout here lasts.
SHADOW_MINUTES = 6 * 60


def outcome(cloud: Deployment, execution: dict[str, Any]) -> dict[str, Any]:
    [entry] = [e for e in cloud.ledger(execution["executionArn"]) if e.kind is EntryKind.OUTCOME]
    return entry.payload


def serve_variant(cloud: Deployment, variant: str, minute: Minute) -> None:
    start = int(cloud.aws.clock.now()) // 60 * 60 - 60
    MetricWriter(boto3.client("cloudwatch")).minutes(variant, start, [minute] * SHADOW_MINUTES)


# --- shadow --------------------------------------------------------------------------------------------


def test_shadow_is_judged_on_mirrored_traffic_and_promoted(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    serve_variant(cloud, "shadow", HEALTHY)
    execution = cloud.run(cloud.request(package, strategy="shadow"))
    arn = execution["executionArn"]
    assert execution["status"] == "SUCCEEDED", cloud.task_errors(arn)
    ledger = cloud.ledger(arn)
    deployed = [e.payload for e in ledger if e.payload.get("action") == "deploy_for_strategy"]
    assert [d["strategy"] for d in deployed] == ["shadow"]
    verdicts = [e.payload for e in ledger if e.kind is EntryKind.JUDGE_VERDICT]
    assert verdicts[-1]["action"] == "promote"
    assert outcome(cloud, execution)["reason"] == "judge: non-inferior on mirrored traffic"
    candidate = model_name_for(ENDPOINT_NAME, package)
    assert cloud.running_models()["champion"] == candidate
    # Users never saw the candidate before its promotion: it was judged at 0 % of the traffic.
    assert {v["challenger_percent"] for v in verdicts} == {0}
    assert cloud.package(package)["ModelApprovalStatus"] == "Approved"


def test_shadow_that_fails_its_mirrored_requests_is_rolled_back(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    serve_variant(cloud, "shadow", FAILING)
    execution = cloud.run(cloud.request(package, strategy="shadow"))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(arn)
    assert str(outcome(cloud, execution)["reason"]).startswith("judge:")
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    described = cloud.sagemaker.describe_endpoint_config(
        EndpointConfigName=cloud.sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointConfigName"]
    )
    assert {v["ModelName"] for v in described.get("ShadowProductionVariants", [])} <= {BOOTSTRAP_MODEL}
    assert cloud.package(package)["ModelApprovalStatus"] == "Rejected"


# --- ab_test -------------------------------------------------------------------------------------------

AB_SPLIT = {"strategy": "ab_test", "traffic_steps": [50], "sample_budget": 200_000}


def test_ab_test_promotes_a_challenger_as_good_on_its_fixed_split(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    execution = cloud.run(cloud.request(package, **AB_SPLIT))
    arn = execution["executionArn"]
    assert execution["status"] == "SUCCEEDED", cloud.task_errors(arn)
    ledger = cloud.ledger(arn)
    verdicts = [e.payload for e in ledger if e.kind is EntryKind.JUDGE_VERDICT]
    assert {v["challenger_percent"] for v in verdicts} == {50}  # the split never moved
    assert outcome(cloud, execution)["reason"] == "judge: non-inferior on the fixed split"
    assert set(cloud.running_models().values()) == {model_name_for(ENDPOINT_NAME, package)}


def test_ab_test_rolls_back_a_worse_challenger_within_its_sample_budget(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=FAILING)
    execution = cloud.run(cloud.request(package, **AB_SPLIT))
    arn = execution["executionArn"]
    assert (execution["status"], execution["error"]) == ("FAILED", "RolledBack"), cloud.task_errors(arn)
    verdicts = [e.payload for e in cloud.ledger(arn) if e.kind is EntryKind.JUDGE_VERDICT]
    assert (verdicts[-1]["challenger_percent"], verdicts[-1]["verdict"]) == (50, "rollback")
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
    assert cloud.weights() == {"champion": 100.0, "challenger": 0.0}


def test_ab_test_stops_when_its_sample_budget_is_spent_without_an_answer(cloud: Deployment) -> None:
    package = cloud.register_package()
    # Too few requests a minute for the judge's minimum samples: the budget runs out first.
    thin = Minute(requests=40, latency_us=20_000, trials=40, successes=4)
    cloud.serve(champion=thin, challenger=thin)
    execution = cloud.run(cloud.request(package, **(AB_SPLIT | {"sample_budget": 100})))
    arn = execution["executionArn"]
    assert execution["status"] == "FAILED", cloud.task_errors(arn)
    reason = str(outcome(cloud, execution)["reason"])
    assert "sample budget of 100 requests per variant spent without an answer" in reason, reason
    assert set(cloud.running_models().values()) == {BOOTSTRAP_MODEL}
