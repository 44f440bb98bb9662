"""Run order for every tier: the longest modules first, so that on two workers they overlap with the many
short ones instead of running alone at the end."""

from __future__ import annotations

import pytest

# The demo stories take minutes each; every other module takes seconds to a minute.
LONGEST_FIRST = ("/tests/local/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(part in str(item.path) for part in LONGEST_FIRST))
