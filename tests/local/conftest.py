"""The local tier: the synthesized stack on the local cloud (localcloud/), end to end, as `make demo` does."""

from __future__ import annotations

import pytest

# The functional tier's emulator credentials and kept inference servers, for every test here too (fixtures
# imported into a conftest).
from tests.functional.conftest import _fake_aws_credentials, _model_servers_kept  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/local/" in str(item.path):
            item.add_marker(pytest.mark.local)
