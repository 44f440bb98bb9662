"""The functional tier: real boto3 calls against moto in-process, real server processes on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localcloud.sagemaker.model_servers import model_servers_kept
from tests.conftest import SHARED_WORKER
from tests.functional.localstack import (
    SERVICES,
    LocalStackMissing,
    healthy,
    localstack_python,
    python_for_localstack,
    running_localstack,
)
from tests.functional.rollout_cloud import Deployment, EmulatedAws, deploy, emulated_app
from tests.infra.conftest import shared_outdir


@pytest.fixture(scope="session", autouse=True)
def _model_servers_kept() -> Iterator[None]:
    """Each test process starts an inference server once per model and container, not once per rollout:
    the rollouts deploy the same few models (localcloud/sagemaker/README.md)."""
    with model_servers_kept():
        yield


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # moto needs credentials to sign with; these never leave the process.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/functional/" in str(item.path):
            item.add_marker(pytest.mark.functional)
        module = item.path.relative_to(config.rootpath).as_posix()
        if "localstack_endpoint" in getattr(item, "fixturenames", ()) and module not in SHARED_WORKER:
            raise pytest.UsageError(f"{module} uses LocalStack: list it in tests/conftest.py's SHARED_WORKER")


@pytest.fixture(scope="session")
def localstack_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """LocalStack's endpoint: one started for the session (its modules share a worker, tests/conftest.py), or
    `LOCALSTACK_ENDPOINT`. Skipped, saying why, where no Python >= 3.13 exists to run it
    (tests/functional/localstack.py)."""
    if endpoint := os.environ.get("LOCALSTACK_ENDPOINT"):
        if not healthy(endpoint):
            pytest.fail(f"LOCALSTACK_ENDPOINT={endpoint} does not answer /_localstack/health with {SERVICES}")
        yield endpoint
        return
    try:
        python = localstack_python()
    except LocalStackMissing as missing:
        if python_for_localstack() is None:
            pytest.skip(str(missing))
        pytest.fail(str(missing))
    with running_localstack(python, tmp_path_factory.mktemp("localstack")) as endpoint:
        yield endpoint


# The rollout workflow's tests (a module may define its own `cloud` on this `aws`).
@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    """The app's rollout workflow on moto's server, for one test module."""
    with emulated_app(shared_outdir(tmp_path_factory), tmp_path_factory.mktemp("clock")) as emulated:
        yield emulated


@pytest.fixture
def cloud(aws: EmulatedAws, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """A fresh deployment of it for one test."""
    yield from deploy(aws, request.node)
