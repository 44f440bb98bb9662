"""`stack_order` (localcloud.cloudformation.ordering): the stacks after the stacks they depend on."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.cloudformation.models import DependencyCycleError, DeployError
from localcloud.cloudformation.ordering import stack_order
from localcloud.cloudformation.template import StackTemplate


def assembly(**dependencies: tuple[str, ...]) -> dict[str, StackTemplate]:
    return {
        name: StackTemplate(name=name, body={}, assembly_dir=Path("/nowhere"), dependencies=needs)
        for name, needs in dependencies.items()
    }


STACKS = assembly(Churn=("Platform",), Fraud=("Platform", "Shared"), Platform=(), Shared=("Platform",))


def test_every_stack_comes_after_its_dependencies_in_the_assembly_order_among_equals() -> None:
    assert stack_order(STACKS) == ["Platform", "Churn", "Shared", "Fraud"]


def test_a_named_stack_brings_the_stacks_it_depends_on_transitively_and_no_other() -> None:
    assert stack_order(STACKS, ["Fraud"]) == ["Platform", "Shared", "Fraud"]
    assert stack_order(STACKS, ["Platform"]) == ["Platform"]


def test_a_cycle_between_stacks_is_refused_naming_it() -> None:
    cyclic = assembly(A=("C",), B=("A",), C=("B",), D=())
    with pytest.raises(DependencyCycleError, match=r"^circular dependency between stacks: A -> C -> B -> A$"):
        stack_order(cyclic, ["D", "A"])


def test_an_unknown_stack_is_refused_naming_the_ones_there_are() -> None:
    with pytest.raises(
        DeployError, match=r"no stack 'Nope'; it has \['Churn', 'Fraud', 'Platform', 'Shared'\]"
    ):
        stack_order(STACKS, ["Nope"])
