"""Inference servers kept from one runtime to the next (`model_servers_kept`): the same model in the same
container is served by the same server, and by one runtime at a time."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from containers.inference.local_server import LocalServer
from localcloud.sagemaker import model_servers
from localcloud.sagemaker.model_servers import KeptServers, model_servers_kept
from localcloud.sagemaker.runtime import LocalSageMakerRuntime, serve_endpoints
from tests.functional.golden_models import GOOD, model_archive

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "models"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlrollout-inference:0.2.0"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"


@pytest.fixture
def kept() -> Iterator[KeptServers]:
    # A keeper of its own, whatever the session keeps.
    with mock.patch.object(model_servers, "_keepers", []), mock_aws(), model_servers_kept() as keeper:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="good/model.tar.gz", Body=model_archive(GOOD))
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        for name, environment in (("good", {}), ("good-copy", {}), ("good-other-env", {"MODEL_NOTE": "x"})):
            sagemaker.create_model(
                ModelName=name,
                PrimaryContainer={
                    "Image": IMAGE,
                    "ModelDataUrl": f"s3://{BUCKET}/good/model.tar.gz",
                    "Environment": environment,
                },
                ExecutionRoleArn=ROLE,
            )
        yield keeper


def served_by(runtime: LocalSageMakerRuntime, model: str) -> LocalServer:
    server: LocalServer = runtime.servers.server_for(ACCOUNT, REGION, model)[0]
    status, _ = server.request("GET", "/ping")
    assert status == 200
    return server


def test_a_kept_server_serves_the_same_model_in_the_same_container_one_runtime_at_a_time(
    kept: KeptServers,
) -> None:
    with serve_endpoints() as runtime:
        first = served_by(runtime, "good")
    with serve_endpoints() as runtime:
        # The same artifact in another container environment: a server of its own.
        other_environment = served_by(runtime, "good-other-env")
        # Another model of the same artifact and container: the kept server.
        assert served_by(runtime, "good-copy") is first
        with serve_endpoints() as beside:
            # The kept server serves the first runtime: this one gets its own.
            beside_server = served_by(beside, "good")
    assert len({first.pid, other_environment.pid, beside_server.pid}) == 3
    assert kept.started == 3
    # Kept servers that died are replaced.
    dead = {first.pid, beside_server.pid}
    for server in (first, beside_server):
        os.killpg(server.pid, signal.SIGKILL)
        assert server._process is not None
        server._process.wait(timeout=10)
    with serve_endpoints() as runtime:
        assert served_by(runtime, "good").pid not in dead
    assert kept.started == 4
