"""SageMaker's deployment guardrails on moto (`localcloud.sagemaker.blue_green`): a blue/green
UpdateEndpoint shifting traffic on a clock, watched by alarms that moto's CloudWatch holds and
`localcloud.cloudwatch`'s evaluator sets, rolled back as SageMaker reports it; InvokeEndpoint on real
inference servers routed by the shifting split."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.rollout.aws.endpoint_ops import DeploymentState, classify_deployment
from lambdas.rollout.aws.wiring import _BUSY_MESSAGE
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.sagemaker.blue_green import Stage, traffic_stages
from localcloud.sagemaker.control import EndpointUpdates, emulate_update_endpoint
from localcloud.sagemaker.runtime import serve_endpoints
from pipelines import churn_data, train
from pipelines.churn_data import CHURN_SCHEMA
from pipelines.train import TrainConfig

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inference:1"
ENDPOINT = "churn"
ALARM = "churn-champion-5xx"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


def policy(routing: dict[str, Any], *, termination: int = 30, timeout: int = 600) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": termination,
            "MaximumExecutionTimeoutInSeconds": timeout,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
    }


CANARY = {
    "Type": "CANARY",
    "WaitIntervalInSeconds": 60,
    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
}


def create_config(client: Any, name: str, model: str, variant: str = "champion") -> None:
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 100.0,
            }
        ],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sagemaker(clock: Clock) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        for model in ("old-model", "new-model"):
            client.create_model(ModelName=model, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
        create_config(client, "old", "old-model")
        create_config(client, "new", "new-model")
        client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="old")
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[
                {"Name": "EndpointName", "Value": ENDPOINT},
                {"Name": "VariantName", "Value": "champion"},
            ],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0.0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
        yield client


@pytest.fixture
def updates(sagemaker: Any, clock: Clock) -> Iterator[EndpointUpdates]:
    with emulate_update_endpoint(clock=clock) as received:
        yield received


def green_percent(updates: EndpointUpdates) -> float | None:
    assert updates.blue_green is not None
    fleet = updates.blue_green.green_fleet("123456789012", REGION, ENDPOINT)
    return None if fleet is None else fleet.percent


def test_each_routing_type_has_its_stages() -> None:
    linear = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 10,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    every = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 10}
    by_instances = {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 5,
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
    }
    termination = {"TerminationWaitInSeconds": 7}

    assert traffic_stages({"TrafficRoutingConfiguration": CANARY} | termination, 1) == (
        Stage(20, 60),
        Stage(100, 7),
    )
    assert traffic_stages({"TrafficRoutingConfiguration": linear} | termination, 1) == (
        Stage(25, 10),
        Stage(50, 10),
        Stage(75, 10),
        Stage(100, 7),
    )
    assert traffic_stages({"TrafficRoutingConfiguration": every} | termination, 1) == (Stage(100, 17),)
    assert traffic_stages({"TrafficRoutingConfiguration": by_instances} | termination, 4)[0] == Stage(25, 5)


def test_a_canary_deployment_shifts_bakes_and_completes_on_the_clock(
    sagemaker: Any, updates: EndpointUpdates, clock: Clock
) -> None:
    sagemaker.update_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(CANARY)
    )

    during = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (during["EndpointStatus"], during["EndpointConfigName"]) == ("Updating", "old")
    pending = during["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "new"
    assert pending["StartTime"] == datetime.fromtimestamp(START, UTC)
    assert classify_deployment(during, "new").state is DeploymentState.IN_PROGRESS
    assert green_percent(updates) == 20

    clock.now = START + 61  # the canary baked its wait interval: the rest shifts, then the termination wait
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Updating"
    assert green_percent(updates) == 100

    clock.now = START + 91
    done = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", "new")
    assert "PendingDeploymentSummary" not in done
    assert "FailureReason" not in done
    assert done["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == CANARY
    assert classify_deployment(done, "new").state is DeploymentState.RUNNING
    assert green_percent(updates) is None


def test_an_alarm_the_evaluator_trips_rolls_the_deployment_back_as_sagemaker_reports_it(
    sagemaker: Any, updates: EndpointUpdates, clock: Clock
) -> None:
    sagemaker.update_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(CANARY)
    )
    clock.now = START + 30  # the canary bakes; its fleet fails requests
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": "champion"},
                ],
                "Timestamp": datetime.fromtimestamp(START + 20, UTC),
                "Value": 3.0,
            }
        ],
    )
    clock.now = START + 60
    [transition] = AlarmEvaluator(clock=clock).evaluate()
    assert (transition.alarm_name, transition.state) == (ALARM, "ALARM")

    after = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "old")
    assert ALARM in after["FailureReason"]
    assert after["LastDeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": ALARM}]}
    report = classify_deployment(after, "new")
    assert report.state is DeploymentState.ROLLED_BACK
    assert f"deployment guardrails watching alarms {ALARM}" in report.reason
    assert green_percent(updates) is None
    assert updates.blue_green is not None
    assert updates.blue_green.outcomes(ENDPOINT) == ["rolled_back"]
    clock.now = START + 600  # a rolled-back deployment stays rolled back
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "old"


def test_a_deployment_outlasting_its_timeout_is_rolled_back(
    sagemaker: Any, updates: EndpointUpdates, clock: Clock
) -> None:
    slow = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 300,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    sagemaker.update_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(slow, timeout=600)
    )
    clock.now = START + 601
    after = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "old")
    assert "MaximumExecutionTimeoutInSeconds" in after["FailureReason"]


def test_updates_during_a_deployment_are_refused_as_sagemaker_refuses_them(
    sagemaker: Any, updates: EndpointUpdates
) -> None:
    sagemaker.update_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(CANARY)
    )
    weights = [{"VariantName": "champion", "DesiredWeight": 1.0}]
    for action, request in (
        ("update_endpoint", {"EndpointConfigName": "old"}),
        ("update_endpoint_weights_and_capacities", {"DesiredWeightsAndCapacities": weights}),
    ):
        with pytest.raises(ClientError) as raised:
            getattr(sagemaker, action)(EndpointName=ENDPOINT, **request)
        error = raised.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert _BUSY_MESSAGE.search(error["Message"]), error["Message"]
    assert len(updates.requests) == 1


def test_a_bad_traffic_routing_is_refused_and_changes_nothing(
    sagemaker: Any, updates: EndpointUpdates
) -> None:
    bad = {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 60,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 100},
    }
    with pytest.raises(ClientError, match="CanarySize must be more than 0 and less than the whole fleet"):
        sagemaker.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(bad)
        )
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "old")


def test_without_a_clock_an_update_switches_at_once(sagemaker: Any) -> None:
    with emulate_update_endpoint():
        sagemaker.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(CANARY)
        )
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "new")


# --- InvokeEndpoint on real inference servers during a deployment -----------------------------------------


def trained(directory: Path, seed: int, version: str) -> bytes:
    train.train(TrainConfig("logistic", seed=seed, samples=600, model_version=version), directory)
    return train.package_model(directory, directory.parent / f"{version}.tar.gz").read_bytes()


def test_invocations_follow_the_shifting_split_to_real_models(tmp_path: Path, clock: Clock) -> None:
    row = churn_data.synthetic_churn(1, seed=3).features[0]
    body = json.dumps({"instances": [dict(zip(CHURN_SCHEMA.names, map(float, row), strict=True))]})
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3.create_bucket(Bucket="models")
        for seed, name in enumerate(("blue", "green"), start=5):
            archive = trained(tmp_path / name, seed, f"{name}-v1")
            s3.put_object(Bucket="models", Key=f"{name}/model.tar.gz", Body=archive)
            sagemaker.create_model(
                ModelName=name,
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://models/{name}/model.tar.gz"},
                ExecutionRoleArn=ROLE,
            )
        # Variant names tell the fleets apart here; a rollout's configs both name theirs `champion`.
        create_config(sagemaker, "old", "blue", variant="blue")
        create_config(sagemaker, "new", "green", variant="green")
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="old")
        runtime = boto3.client("sagemaker-runtime", region_name=REGION)

        def served(requests: int) -> Counter[str]:
            return Counter(
                runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="application/json")[
                    "InvokedProductionVariant"
                ]
                for _ in range(requests)
            )

        with (
            emulate_update_endpoint(clock=clock),
            serve_endpoints(rng=random.Random(7), clock=clock, work_dir=tmp_path / "runtime"),
        ):
            before = served(10)
            sagemaker.update_endpoint(
                EndpointName=ENDPOINT, EndpointConfigName="new", DeploymentConfig=policy(CANARY)
            )
            canary = served(200)
            clock.now = START + 61
            shifted = served(10)
            clock.now = START + 91
            after = served(10)
    assert before == {"blue": 10}
    # 20 % to the new fleet: 40 expected of 200; 3 standard deviations either side.
    assert 23 <= canary["green"] <= 57, canary
    assert canary["blue"] + canary["green"] == 200
    assert shifted == {"green": 10}
    assert after == {"green": 10}
