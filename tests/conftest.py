"""What every tier shares: one botocore data loader per test process, no deadline on properties, and the
test modules that share a worker.

moto's `mock_aws` gives each test a fresh default boto3 session, and each new session parsed the service
models' JSON again (SageMaker's alone is megabytes): a third of the CPU of a fault-matrix cell. Sessions
of one process now share the loader, and so its cache, as the clients of one session always do.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.loaders
import botocore.session
import pytest
from hypothesis import settings
from xdist.scheduler import LoadScopeScheduling

_create_loader = botocore.session.create_loader


@functools.cache
def _shared_loader(search_path: str | None = None) -> botocore.loaders.Loader:
    return _create_loader(search_path)


botocore.session.create_loader = _shared_loader


# No test is timed (speed is the benchmarks' business, `make bench`): Hypothesis' default 200 ms deadline per
# example failed a property beside the demo stories at 330 ms.
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


# Modules that run on one test worker under `--dist loadscope`, so that a session fixture they all use is
# built once per run rather than once per worker: LocalStack takes about 6 CPU-seconds and 15 s to start.
# (tests/functional/conftest.py fails a module that uses LocalStack and is not listed.)
SHARED_WORKER = {
    "tests/functional/localcloud/cloudwatch/test_alarms_against_localstack.py": "localstack",
    "tests/functional/test_stacks_against_localstack.py": "localstack",
    "tests/functional/test_state_machines_against_localstack.py": "localstack",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadscope":
        return None

    class SharedWorkerScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SHARED_WORKER.get(module) or super()._split_scope(nodeid)

    return SharedWorkerScheduling(config, log)
