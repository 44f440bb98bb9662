"""What every tier shares: one botocore data loader per test process; the longest modules first.

moto's `mock_aws` gives each test a fresh default boto3 session, and each new session parsed the service
models' JSON again (SageMaker's alone is megabytes): a third of the CPU of a fault-matrix cell. Sessions
of one process now share the loader, and so its cache, as the clients of one session always do.
"""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.session
import pytest

_create_loader = botocore.session.create_loader


@functools.cache
def _shared_loader(search_path: str | None = None) -> botocore.loaders.Loader:
    return _create_loader(search_path)


botocore.session.create_loader = _shared_loader


# The longest modules, longest first (measured: `pytest --durations`), start first: the parallel tiers give a
# worker a module at a time, and one of these begun last kept a worker busy minutes after the other's end.
LONGEST_FIRST = (
    "tests/functional/test_fault_matrix.py",
    "tests/functional/test_rollout_state_machine.py",
    "tests/functional/test_rollout_hold.py",
    "tests/functional/test_release_chain.py",
    "tests/functional/test_rollout_strategies.py",
    "tests/functional/test_cli.py",
    "tests/functional/test_rollout_guardrails.py",
    "tests/functional/test_retraining_state_machine.py",
    "tests/functional/test_rollout_handlers.py",
    "tests/infra/test_scale.py",
    "tests/functional/test_training_steps.py",
    "tests/functional/test_rollout_blue_green.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    root = config.rootpath

    def order(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(root).as_posix(), len(rank))

    items.sort(key=order)  # stable: each module's tests keep their order
