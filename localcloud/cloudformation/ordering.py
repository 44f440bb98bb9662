"""CloudFormation's creation order: the dependency graph of DependsOn, Ref, Fn::GetAtt and Fn::Sub, sorted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
        needed |= {name for name in _references(resource.get("Properties", {})) if name in resources}
        graph[logical_id] = needed
    return graph


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
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
                yield from _references(variables)
            else:
                yield from _references(argument)


def creation_order(template: StackTemplate) -> list[str]:
    """Every resource after the ones it needs (`dependencies`), the template's order among equals."""
    graph = dependencies(template)
    order: list[str] = []
    done: set[str] = set()
    pending = list(template.resources)
    while pending:
        ready = [logical_id for logical_id in pending if graph[logical_id] <= done]
        if not ready:
            cycle = _a_cycle({key: graph[key] - done for key in pending})
            raise DependencyCycleError(
                f"{template.name}: circular dependency between resources: {' -> '.join(cycle)}"
            )
        for logical_id in ready:
            order.append(logical_id)
            done.add(logical_id)
        pending = [logical_id for logical_id in pending if logical_id not in done]
    return order


def _a_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One cycle of a graph in which every node waits on another (walk until a node repeats)."""
    path: list[str] = []
    node = min(graph)
    while node not in path:
        path.append(node)
        node = min(graph[node])
    return [*path[path.index(node) :], node]
