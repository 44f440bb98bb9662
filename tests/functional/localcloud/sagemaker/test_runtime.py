"""InvokeEndpoint on moto answered by real inference servers: routing by the endpoint's current weights or
TargetVariant, SageMaker's errors, per-variant metrics in moto's CloudWatch, data capture the drift gate
reads, shadow variants, and calls through moto's server on loopback.

Two models are really trained and uploaded to moto's S3 as model.tar.gz; models, configs and endpoints
are created with boto3. The servers start once for the module (one gunicorn worker each).
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse
from moto.server import ThreadedMotoServer

from lambdas.rollout.tasks.gates import _captured_records
from localcloud.sagemaker.control import emulate_update_endpoint
from localcloud.sagemaker.runtime import LocalSageMakerRuntime, MotoChangedError, check_moto, serve_endpoints
from pipelines import churn_data, train
from pipelines.churn_data import CHURN_SCHEMA
from pipelines.train import TrainConfig

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlrollout-inference:0.2.0"
MODEL_BUCKET = "models"
CAPTURE_BUCKET = "capture"
START_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z
VERSIONS = {"champion-model": "champion-v1", "challenger-model": "challenger-v2"}
# A copy of the champion's artifact under its own key: its own server, which one test stops.
DOOMED_MODEL = "doomed-model"


@dataclass
class Clock:
    now: float = START_TIME

    def __call__(self) -> float:
        return self.now


@dataclass
class Cloud:
    runtime: LocalSageMakerRuntime
    clock: Clock
    sagemaker: Any
    client: Any
    cloudwatch: Any
    s3: Any


def records(count: int, seed: int = 99) -> list[dict[str, float]]:
    rows = churn_data.synthetic_churn(count, seed=seed).features
    return [dict(zip(CHURN_SCHEMA.names, map(float, row), strict=True)) for row in rows]


def tarball(model_dir: Path) -> bytes:
    return train.package_model(model_dir, model_dir.parent / f"{model_dir.name}.tar.gz").read_bytes()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    artifacts = {}
    for seed, (model, version) in enumerate(VERSIONS.items(), start=5):
        model_dir = tmp_path_factory.mktemp(model)
        train.train(TrainConfig("logistic", seed=seed, samples=1500, model_version=version), model_dir)
        artifacts[model] = tarball(model_dir)
    artifacts[DOOMED_MODEL] = artifacts["champion-model"]
    clock = Clock()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        for bucket in (MODEL_BUCKET, CAPTURE_BUCKET):
            s3.create_bucket(Bucket=bucket)
        for model, data in artifacts.items():
            s3.put_object(Bucket=MODEL_BUCKET, Key=f"{model}/model.tar.gz", Body=data)
            sagemaker.create_model(
                ModelName=model,
                PrimaryContainer={
                    "Image": IMAGE,
                    "ModelDataUrl": f"s3://{MODEL_BUCKET}/{model}/model.tar.gz",
                },
                ExecutionRoleArn=ROLE,
            )
        work_dir = tmp_path_factory.mktemp("runtime")
        with serve_endpoints(rng=random.Random(0), clock=clock, work_dir=work_dir) as runtime:
            yield Cloud(
                runtime=runtime,
                clock=clock,
                sagemaker=sagemaker,
                client=boto3.client("sagemaker-runtime", region_name=REGION),
                cloudwatch=boto3.client("cloudwatch", region_name=REGION),
                s3=s3,
            )


def create_endpoint(
    cloud: Cloud,
    name: str,
    variants: Mapping[str, tuple[str, float]],
    *,
    config_name: str | None = None,
    capture: Mapping[str, Any] | None = None,
    shadows: Mapping[str, tuple[str, float]] | None = None,
    create: bool = True,
) -> str:
    """A config of `variants` (name -> (model, weight)) and, when `create`, the endpoint running it."""
    config_name = config_name or f"{name}-config"
    request: dict[str, Any] = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for variant, (model, weight) in variants.items()
        ],
    }
    if capture is not None:
        request["DataCaptureConfig"] = dict(capture)
    if shadows is not None:
        request["ShadowProductionVariants"] = [
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for variant, (model, weight) in shadows.items()
        ]
    cloud.sagemaker.create_endpoint_config(**request)
    if create:
        cloud.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
    return config_name


def invoke(
    client: Any, endpoint: str, instances: list[dict[str, float]] | None = None, **extra: Any
) -> tuple[str, Any]:
    """(InvokedProductionVariant, the model version that answered)."""
    body = json.dumps({"instances": instances or records(1)})
    response = client.invoke_endpoint(
        EndpointName=endpoint, Body=body, ContentType="application/json", Accept="application/json", **extra
    )
    assert response["ContentType"] == "application/json"
    return response["InvokedProductionVariant"], json.loads(response["Body"].read())["model_version"]


def served_by(cloud: Cloud, endpoint: str, count: int, **extra: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(count):
        variant, _version = invoke(cloud.client, endpoint, **extra)
        counts[variant] = counts.get(variant, 0) + 1
    return counts


def metric_sums(cloud: Cloud, endpoint: str, variant: str, names: list[str]) -> dict[str, float]:
    """Each metric's sum over the clock's current hour, read with GetMetricData."""
    start = datetime.fromtimestamp(cloud.clock.now, UTC).replace(minute=0, second=0)
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": name,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                },
                "Period": 3600,
                "Stat": "Sum",
            },
        }
        for index, name in enumerate(names)
    ]
    results = cloud.cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=start, EndTime=start + timedelta(hours=1)
    )["MetricDataResults"]
    by_id = {result["Id"]: result["Values"] for result in results}
    return {name: sum(by_id[f"m{index}"]) for index, name in enumerate(names)}


def client_error(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, dict[str, Any]]:
    response: dict[str, Any] = dict(error.value.response)
    return response["Error"]["Code"], response["Error"]["Message"], response


# --- routing ---------------------------------------------------------------------------------------------


def test_all_requests_go_to_the_variant_holding_all_the_weight(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "all-in", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 0.0)}
    )

    answers = {invoke(cloud.client, "all-in") for _ in range(20)}

    assert answers == {("champion", "champion-v1")}


def test_a_70_30_split_follows_the_weights_with_a_seeded_generator(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "split", {"champion": ("champion-model", 0.7), "challenger": ("challenger-model", 0.3)}
    )
    cloud.runtime.rng = random.Random(2026)

    counts = served_by(cloud, "split", 200)

    # Fixed by the seed: the draws of random.Random(2026), weight 0.7 against 0.3.
    assert counts == {"champion": 140, "challenger": 60}


def test_target_variant_overrides_the_weights(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "targeted", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 0.0)}
    )

    answers = {invoke(cloud.client, "targeted", TargetVariant="challenger") for _ in range(5)}

    assert answers == {("challenger", "challenger-v2")}


def test_routing_follows_update_endpoint_weights_and_capacities(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "reweighed", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 0.0)}
    )
    assert served_by(cloud, "reweighed", 5) == {"champion": 5}

    cloud.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="reweighed",
        DesiredWeightsAndCapacities=[
            {"VariantName": "champion", "DesiredWeight": 0.0},
            {"VariantName": "challenger", "DesiredWeight": 1.0},
        ],
    )

    assert served_by(cloud, "reweighed", 5) == {"challenger": 5}


def test_routing_follows_the_config_an_update_endpoint_switches_to(cloud: Cloud) -> None:
    create_endpoint(cloud, "promoted", {"champion": ("champion-model", 1.0)})
    assert {invoke(cloud.client, "promoted") for _ in range(3)} == {("champion", "champion-v1")}
    # The new config runs the challenger's model under the champion's variant name.
    new_config = create_endpoint(
        cloud,
        "promoted",
        {"champion": ("challenger-model", 1.0)},
        config_name="promoted-config-2",
        create=False,
    )

    with emulate_update_endpoint():
        cloud.sagemaker.update_endpoint(EndpointName="promoted", EndpointConfigName=new_config)

    assert {invoke(cloud.client, "promoted") for _ in range(3)} == {("champion", "challenger-v2")}


def test_one_server_per_model_artifact_is_reused_across_endpoints(cloud: Cloud) -> None:
    create_endpoint(cloud, "reuse-a", {"only": ("champion-model", 1.0)})
    create_endpoint(cloud, "reuse-b", {"only": ("champion-model", 1.0)})
    invoke(cloud.client, "reuse-a")
    before = dict(cloud.runtime.servers.running())

    invoke(cloud.client, "reuse-b")

    url = f"s3://{MODEL_BUCKET}/champion-model/model.tar.gz"
    assert cloud.runtime.servers.running()[url] is before[url]


# --- SageMaker's errors -----------------------------------------------------------------------------------


def test_an_unknown_endpoint_is_sagemakers_validation_error(cloud: Cloud) -> None:
    with pytest.raises(ClientError) as error:
        invoke(cloud.client, "no-such-endpoint")

    code, message, response = client_error(error)
    assert (code, message) == (
        "ValidationError",
        f"Endpoint no-such-endpoint of account {ACCOUNT} not found.",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_unknown_target_variant_is_a_validation_error_naming_it(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "two-variants", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 1.0)}
    )

    with pytest.raises(ClientError) as error:
        invoke(cloud.client, "two-variants", TargetVariant="blue")

    code, message, _ = client_error(error)
    assert code == "ValidationError"
    assert '"blue"' in message
    assert "champion, challenger" in message


def test_an_endpoint_not_in_service_cannot_be_invoked(cloud: Cloud) -> None:
    create_endpoint(cloud, "updating", {"champion": ("champion-model", 1.0)})
    endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints["updating"]
    endpoint.endpoint_status = "Updating"  # as moto would show it mid-update

    with pytest.raises(ClientError) as error:
        invoke(cloud.client, "updating")

    code, message, _ = client_error(error)
    assert code == "ValidationError"
    assert "is Updating, not InService" in message


def test_a_request_the_container_refuses_is_a_model_error_with_the_containers_answer(cloud: Cloud) -> None:
    create_endpoint(cloud, "refusing", {"champion": ("champion-model", 1.0)})

    with pytest.raises(ClientError) as error:
        cloud.client.invoke_endpoint(
            EndpointName="refusing", Body=b"{not json", ContentType="application/json"
        )

    code, message, response = client_error(error)
    assert code == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert json.loads(response["OriginalMessage"])["error"] == "malformed_json"
    assert message.startswith('Received client error (400) from primary with message "{')
    assert f"group=/aws/sagemaker/Endpoints/refusing in account {ACCOUNT}" in message
    assert response["LogStreamArn"].startswith(
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/refusing:log-stream:champion/"
    )


def test_unsupported_invoke_endpoint_parameters_are_refused_by_name(cloud: Cloud) -> None:
    create_endpoint(cloud, "single-model", {"champion": ("champion-model", 1.0)})

    with pytest.raises(ClientError) as error:
        invoke(cloud.client, "single-model", TargetModel="other.tar.gz")

    assert client_error(error)[:2] == (
        "ValidationError",
        "TargetModel is not supported by the local SageMaker runtime.",
    )


def test_a_server_that_died_is_reported_as_a_model_error_naming_it(cloud: Cloud) -> None:
    create_endpoint(cloud, "doomed", {"champion": (DOOMED_MODEL, 1.0)})
    invoke(cloud.client, "doomed")
    server = cloud.runtime.servers.running()[f"s3://{MODEL_BUCKET}/{DOOMED_MODEL}/model.tar.gz"]
    os.killpg(server.pid, signal.SIGKILL)
    assert server._process is not None
    server._process.wait(timeout=10)

    with pytest.raises(ClientError) as error:
        invoke(cloud.client, "doomed")

    code, message, response = client_error(error)
    assert code == "ModelError"
    assert response["OriginalStatusCode"] == 0
    assert f"{DOOMED_MODEL}/model.tar.gz" in message
    assert "exited with code -9" in message
    assert str(server.log_path) in message
    assert metric_sums(cloud, "doomed", "champion", ["Invocations", "Invocation5XXErrors"]) == {
        "Invocations": 2.0,
        "Invocation5XXErrors": 1.0,
    }


# --- metrics ----------------------------------------------------------------------------------------------


def test_per_variant_invocations_errors_and_latencies_reach_cloudwatch(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "measured", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 1.0)}
    )
    cloud.clock.now = START_TIME + 3 * 3600
    served = {"champion": 4, "challenger": 2}
    for variant, count in served.items():
        served_by(cloud, "measured", count, TargetVariant=variant)
    with pytest.raises(ClientError):
        cloud.client.invoke_endpoint(
            EndpointName="measured",
            Body=b"{not json",
            ContentType="application/json",
            TargetVariant="challenger",
        )

    champion = metric_sums(
        cloud, "measured", "champion", ["Invocations", "Invocation4XXErrors", "Invocation5XXErrors"]
    )
    challenger = metric_sums(
        cloud, "measured", "challenger", ["Invocations", "Invocation4XXErrors", "Invocation5XXErrors"]
    )

    assert champion == {"Invocations": 4.0, "Invocation4XXErrors": 0.0, "Invocation5XXErrors": 0.0}
    assert challenger == {"Invocations": 3.0, "Invocation4XXErrors": 1.0, "Invocation5XXErrors": 0.0}
    latency = cloud.cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=[
            {"Name": "EndpointName", "Value": "measured"},
            {"Name": "VariantName", "Value": "champion"},
        ],
        StartTime=datetime.fromtimestamp(cloud.clock.now, UTC),
        EndTime=datetime.fromtimestamp(cloud.clock.now + 60, UTC),
        Period=60,
        Statistics=["SampleCount", "Minimum"],
    )["Datapoints"]
    assert [(point["SampleCount"], point["Unit"]) for point in latency] == [(4.0, "Microseconds")]
    assert latency[0]["Minimum"] > 0


# --- data capture -----------------------------------------------------------------------------------------


def capture_config(percentage: int, **extra: Any) -> dict[str, Any]:
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": percentage,
        "DestinationS3Uri": f"s3://{CAPTURE_BUCKET}/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        **extra,
    }


def captured_lines(cloud: Cloud, endpoint: str, variant: str) -> list[tuple[str, dict[str, Any]]]:
    prefix = f"data-capture/{endpoint}/{variant}/"
    listed = cloud.s3.list_objects_v2(Bucket=CAPTURE_BUCKET, Prefix=prefix).get("Contents") or []
    lines: list[tuple[str, dict[str, Any]]] = []
    for item in listed:
        body = cloud.s3.get_object(Bucket=CAPTURE_BUCKET, Key=item["Key"])["Body"].read().decode()
        lines.extend((item["Key"], json.loads(line)) for line in body.splitlines())
    return lines


def test_captured_requests_are_what_the_drift_gate_reads(cloud: Cloud) -> None:
    create_endpoint(cloud, "captured", {"champion": ("champion-model", 1.0)}, capture=capture_config(100))
    cloud.clock.now = START_TIME + 5 * 3600 + 125.5
    sent = [records(3, seed=seed) for seed in range(4)]
    for index, instances in enumerate(sent):
        invoke(cloud.client, "captured", instances, InferenceId=f"inference-{index}")

    cloud.runtime.flush_capture()

    lines = captured_lines(cloud, "captured", "champion")
    assert len(lines) == 4
    key, first = lines[0]
    assert key.startswith("data-capture/captured/champion/2026/01/01/05/02-05-500-")
    assert key.endswith(".jsonl")
    assert first["eventVersion"] == "0"
    assert first["eventMetadata"]["inferenceTime"] == "2026-01-01T05:02:05Z"
    assert first["eventMetadata"]["inferenceId"] == "inference-0"
    request, response = first["captureData"]["endpointInput"], first["captureData"]["endpointOutput"]
    assert (request["mode"], request["encoding"], request["observedContentType"]) == (
        "INPUT",
        "BASE64",
        "application/json",
    )
    assert json.loads(base64.b64decode(request["data"])) == {"instances": sent[0]}
    assert response["mode"] == "OUTPUT"
    assert json.loads(base64.b64decode(response["data"]))["model_version"] == "champion-v1"
    # The rollout's drift gate reads the champion's captures under the live config's destination.
    state = SimpleNamespace(
        request=SimpleNamespace(endpoint_name="captured", variants=SimpleNamespace(champion="champion"))
    )
    services = SimpleNamespace(sagemaker=cloud.sagemaker, s3=cloud.s3)
    read = list(_captured_records(state, services))  # type: ignore[arg-type]
    assert sorted(read, key=json.dumps) == sorted((r for batch in sent for r in batch), key=json.dumps)


def test_capture_samples_the_configured_share_and_keeps_listed_types_as_text(cloud: Cloud) -> None:
    create_endpoint(
        cloud,
        "sampled",
        {"champion": ("champion-model", 1.0)},
        capture=capture_config(
            30,
            CaptureContentTypeHeader={"JsonContentTypes": ["application/json"]},
            CaptureOptions=[{"CaptureMode": "Input"}],
        ),
    )
    cloud.clock.now = START_TIME + 6 * 3600
    cloud.runtime.rng = random.Random(7)
    for _ in range(40):
        invoke(cloud.client, "sampled")

    cloud.runtime.flush_capture()

    lines = captured_lines(cloud, "sampled", "champion")
    # Fixed by the seed: 30 % of 40 requests, drawn by random.Random(7) (which also draws the event ids).
    assert len(lines) == 12
    captured = lines[0][1]["captureData"]
    assert set(captured) == {"endpointInput"}
    assert captured["endpointInput"]["encoding"] == "JSON"
    assert json.loads(captured["endpointInput"]["data"])["instances"] == records(1)


def test_capture_files_close_as_the_clock_moves_on(cloud: Cloud) -> None:
    create_endpoint(cloud, "rolling", {"champion": ("champion-model", 1.0)}, capture=capture_config(100))
    cloud.clock.now = START_TIME + 7 * 3600 + 3540  # 07:59
    invoke(cloud.client, "rolling")
    cloud.clock.now += 30
    invoke(cloud.client, "rolling")
    assert captured_lines(cloud, "rolling", "champion") == []  # still buffered

    cloud.clock.now += 60  # 08:00:30: a new hour closes the 07 file
    invoke(cloud.client, "rolling")

    keys = [key for key, _ in captured_lines(cloud, "rolling", "champion")]
    assert len(keys) == 2
    assert all(key.startswith("data-capture/rolling/champion/2026/01/01/07/59-00-000-") for key in keys)
    cloud.runtime.flush_capture()
    hours = sorted({key.split("/")[6] for key, _ in captured_lines(cloud, "rolling", "champion")})
    assert hours == ["07", "08"]


# --- shadow variants --------------------------------------------------------------------------------------


def test_a_shadow_variant_gets_a_copy_whose_answer_is_discarded(cloud: Cloud) -> None:
    create_endpoint(
        cloud,
        "shadowed",
        {"champion": ("champion-model", 1.0)},
        shadows={"shadow": ("challenger-model", 1.0)},
        capture=capture_config(100),
    )
    cloud.clock.now = START_TIME + 9 * 3600

    answers = {invoke(cloud.client, "shadowed") for _ in range(5)}

    assert answers == {("champion", "champion-v1")}
    described = cloud.sagemaker.describe_endpoint_config(EndpointConfigName="shadowed-config")
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["shadow"]
    assert metric_sums(cloud, "shadowed", "shadow", ["Invocations"]) == {"Invocations": 5.0}
    assert metric_sums(cloud, "shadowed", "champion", ["Invocations"]) == {"Invocations": 5.0}
    cloud.runtime.flush_capture()
    shadow_outputs = [
        json.loads(base64.b64decode(line["captureData"]["endpointOutput"]["data"]))["model_version"]
        for _, line in captured_lines(cloud, "shadowed", "shadow")
    ]
    assert shadow_outputs == ["challenger-v2"] * 5


def test_a_shadow_variant_of_an_unknown_model_is_refused(cloud: Cloud) -> None:
    with pytest.raises(ClientError) as error:
        create_endpoint(
            cloud, "bad-shadow", {"champion": ("champion-model", 1.0)}, shadows={"shadow": ("nope", 1.0)}
        )

    assert client_error(error)[:2] == (
        "ValidationError",
        f"Could not find model 'arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/nope'.",
    )


# --- through moto's server --------------------------------------------------------------------------------


def test_calls_through_moto_server_on_loopback_are_routed_too(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "over-http", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 0.0)}
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=f"http://{host}:{port}")

        assert invoke(client, "over-http") == ("champion", "champion-v1")
        assert invoke(client, "over-http", TargetVariant="challenger") == ("challenger", "challenger-v2")
        with pytest.raises(ClientError) as refused:
            client.invoke_endpoint(EndpointName="over-http", Body=b"[1, 2]", ContentType="application/json")
        with pytest.raises(ClientError) as unknown:
            invoke(client, "nowhere")
    finally:
        server.stop()

    code, _, response = client_error(refused)
    assert (code, response["OriginalStatusCode"]) == ("ModelError", 422)
    assert client_error(unknown)[:2] == (
        "ValidationError",
        f"Endpoint nowhere of account {ACCOUNT} not found.",
    )


# --- the guard --------------------------------------------------------------------------------------------


def test_a_changed_moto_method_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    check_moto()  # this moto's shapes are the known ones

    def invoke_endpoint(self: SageMakerRuntimeResponse, endpoint_name: str) -> Any:
        raise AssertionError("never called")

    monkeypatch.setattr(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint)

    with pytest.raises(MotoChangedError, match=r"invoke_endpoint\('self', 'endpoint_name'\)"):
        check_moto()


def test_an_artifact_that_is_not_a_tarball_is_refused_naming_it(cloud: Cloud) -> None:
    cloud.s3.put_object(Bucket=MODEL_BUCKET, Key="broken/model.tar.gz", Body=b"not a tarball")
    cloud.sagemaker.create_model(
        ModelName="broken-model",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{MODEL_BUCKET}/broken/model.tar.gz"},
        ExecutionRoleArn=ROLE,
    )
    create_endpoint(cloud, "broken", {"champion": ("broken-model", 1.0)})

    with pytest.raises(ClientError) as error:
        invoke(cloud.client, "broken")

    code, message, _ = client_error(error)
    assert code == "ValidationError"
    assert f"s3://{MODEL_BUCKET}/broken/model.tar.gz is not a readable model.tar.gz" in message


def test_concurrent_calls_through_moto_server_are_each_answered_and_counted(cloud: Cloud) -> None:
    create_endpoint(
        cloud, "busy", {"champion": ("champion-model", 1.0), "challenger": ("challenger-model", 1.0)}
    )
    cloud.clock.now = START_TIME + 11 * 3600
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=f"http://{host}:{port}")
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda _: invoke(client, "busy"), range(24)))
    finally:
        server.stop()

    expected_versions = {"champion": "champion-v1", "challenger": "challenger-v2"}
    assert all(expected_versions[variant] == version for variant, version in answers)
    counted = {
        variant: metric_sums(cloud, "busy", variant, ["Invocations"])["Invocations"]
        for variant in expected_versions
    }
    assert counted == {
        variant: float(sum(1 for v, _ in answers if v == variant)) for variant in expected_versions
    }
    assert sum(counted.values()) == 24
