"""CloudFormation's creation order: the dependency graph of DependsOn, Ref, Fn::GetAtt and Fn::Sub, sorted;
and the order of an assembly's stacks, from the dependencies its manifest lists."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from localcloud.cloudformation.models import (
    DependencyCycleError,
    DeployError,
)
from localcloud.cloudformation.template import (
    StackTemplate,
)


def dependencies(template: StackTemplate) -> dict[str, set[str]]:
    """Logical id -> the resources it needs first: `DependsOn`, and every `Ref`, `Fn::GetAtt` and
    `Fn::Sub` variable that names a resource."""
    resources = template.resources
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        needed = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        for name in needed:
            if name not in resources:
                raise DeployError(f"{template.name}/{logical_id}: DependsOn {name}, which is not a resource")
        needed |= {name for name in references(resource.get("Properties", {})) if name in resources}
        graph[logical_id] = needed
    return graph


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def references(value: Any) -> Iterable[str]:
    """Every name a template value gives to `Ref`, `Fn::GetAtt` or a `Fn::Sub` variable (resources,
    parameters and pseudo parameters alike)."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                yield argument
            elif key == "Fn::GetAtt":
                yield argument.split(".", 1)[0] if isinstance(argument, str) else str(argument[0])
            elif key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                defined = set(variables)
                for name in _SUB_VARIABLE.findall(str(text)):
                    if name not in defined:
                        yield name.split(".", 1)[0]
                yield from references(variables)
            else:
                yield from references(argument)


def creation_order(template: StackTemplate) -> list[str]:
    """Every resource after the ones it needs (`dependencies`), the template's order among equals."""
    return _topological(
        list(template.resources),
        dependencies(template),
        lambda cycle: f"{template.name}: circular dependency between resources: {' -> '.join(cycle)}",
    )


def stack_order(stacks: Mapping[str, StackTemplate], names: Iterable[str] | None = None) -> list[str]:
    """The stacks to deploy for `names` (default every stack): each one and the stacks it depends on,
    transitively, every stack after its dependencies, the assembly's order among equals."""
    wanted = list(stacks) if names is None else list(names)
    needed: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name not in stacks:
            raise DeployError(f"the assembly has no stack {name!r}; it has {sorted(stacks)}")
        if name not in needed:
            needed.add(name)
            wanted.extend(stacks[name].dependencies)
    return _topological(
        [name for name in stacks if name in needed],
        {name: set(stacks[name].dependencies) for name in needed},
        lambda cycle: f"circular dependency between stacks: {' -> '.join(cycle)}",
    )


def _topological(
    nodes: Sequence[str], graph: Mapping[str, set[str]], cycle_message: Callable[[list[str]], str]
) -> list[str]:
    order: list[str] = []
    done: set[str] = set()
    pending = list(nodes)
    while pending:
        ready = [node for node in pending if graph[node] <= done]
        if not ready:
            raise DependencyCycleError(cycle_message(_a_cycle({key: graph[key] - done for key in pending})))
        for node in ready:
            order.append(node)
            done.add(node)
        pending = [node for node in pending if node not in done]
    return order


def _a_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One cycle of a graph in which every node waits on another (walk until a node repeats)."""
    path: list[str] = []
    node = min(graph)
    while node not in path:
        path.append(node)
        node = min(graph[node])
    return [*path[path.index(node) :], node]


def dependents(stacks: Mapping[str, StackTemplate], name: str) -> list[str]:
    """The stacks that depend on `name`, directly or through others."""
    found: list[str] = []
    changed = True
    while changed:
        changed = False
        for other, template in stacks.items():
            if other not in found and other != name and ({name, *found} & set(template.dependencies)):
                found.append(other)
                changed = True
    return found
