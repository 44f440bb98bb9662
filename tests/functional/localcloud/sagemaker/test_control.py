"""UpdateEndpoint on moto (`localcloud.sagemaker.control`): in-process and through moto's server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemaker.responses import SageMakerResponse
from moto.server import ThreadedMotoServer

from localcloud.sagemaker.control import EndpointUpdates, emit_registry_events, emulate_update_endpoint

ENDPOINT = "churn"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inference:1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def create_config(client: Any, name: str, weights: dict[str, float]) -> None:
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": "model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for variant, weight in weights.items()
        ],
    )


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sagemaker")
        client.create_model(ModelName="model", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
        create_config(client, "old", {"champion": 1.0})
        create_config(client, "new", {"champion": 90.0, "challenger": 10.0})
        client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="old")
        yield client


def running(client: Any) -> tuple[str, str, dict[str, float]]:
    described = client.describe_endpoint(EndpointName=ENDPOINT)
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    return described["EndpointConfigName"], described["EndpointStatus"], weights


def test_moto_has_no_update_endpoint_of_its_own(sagemaker: Any) -> None:
    assert not hasattr(SageMakerResponse, "update_endpoint")
    with pytest.raises(NotImplementedError, match="update_endpoint action has not been implemented"):
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="new")


def test_an_update_moves_the_endpoint_to_the_config_and_its_variants(sagemaker: Any) -> None:
    with emulate_update_endpoint() as updates:
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="new")
    assert running(sagemaker) == ("new", "InService", {"champion": 90.0, "challenger": 10.0})
    assert updates.configs_requested(ENDPOINT) == ["new"]


def test_a_silent_rollback_leaves_the_endpoint_in_service_on_its_old_config(sagemaker: Any) -> None:
    with emulate_update_endpoint(EndpointUpdates(silently_roll_back={ENDPOINT})) as updates:
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="new")
    assert running(sagemaker) == ("old", "InService", {"champion": 1.0})
    assert updates.configs_requested(ENDPOINT) == ["new"]


@pytest.mark.parametrize(
    ("endpoint", "config", "message"),
    [
        ("missing", "new", "Could not find endpoint "),
        (ENDPOINT, "missing", "Could not find endpoint configuration"),
    ],
)
def test_an_unknown_endpoint_or_config_is_a_validation_error(
    sagemaker: Any, endpoint: str, config: str, message: str
) -> None:
    with emulate_update_endpoint() as updates, pytest.raises(ClientError, match=message) as raised:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert updates.requests == []
    assert running(sagemaker)[0] == "old"


def test_an_update_through_motos_server_changes_the_state_the_test_sees(sagemaker: Any) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        remote = boto3.client("sagemaker", endpoint_url=f"http://{host}:{port}")
        with emulate_update_endpoint():
            remote.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="new")
    finally:
        server.stop()
    assert running(sagemaker)[0] == "new"


def test_registry_changes_put_sagemakers_package_state_change_events() -> None:
    pattern = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"]}
    with mock_aws(), emit_registry_events() as emitted:
        sqs, events = boto3.client("sqs"), boto3.client("events")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="packages", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="packages", Targets=[{"Id": "q", "Arn": queue}])
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="churn")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="churn",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/m.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="PendingManualApproval",
        )["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        details = [json.loads(m["Body"])["detail"] for m in received]
        assert [d["ModelApprovalStatus"] for d in details] == ["PendingManualApproval", "Approved"]
        assert details[-1]["ModelPackageArn"] == arn and details[-1]["ModelPackageGroupName"] == "churn"
        assert len(emitted) == 2
