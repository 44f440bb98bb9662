"""Functions run with no AWS behind them get the endpoints' settings inline, as the stack's parameters
hold them: what is tested there is the runner or a handler, not the settings store (the local cloud's
deployments read the parameters from moto)."""

from __future__ import annotations

import dataclasses
import json

from lambdas.shared.endpoint_store import ENDPOINT_SETTINGS_PATH_VARIABLE
from localcloud.awslambda.runner import FunctionSpec
from localcloud.cloudformation.template import Resolver, StackTemplate, parameter_values


def with_inline_endpoints(spec: FunctionSpec, template: StackTemplate, resolver: Resolver) -> FunctionSpec:
    """The function with the endpoints' settings inline (``ENDPOINTS``), as the stack's parameters hold them:
    these tests run functions with no AWS behind them, and the runner, not the settings store, is tested."""
    path = spec.environment.get(ENDPOINT_SETTINGS_PATH_VARIABLE)
    if path is None:
        return spec
    documents = {
        name.removeprefix(path): json.loads(value)
        for name, value in parameter_values(template, resolver, path).items()
        if name.startswith(path)
    }
    environment = {
        key: value for key, value in spec.environment.items() if key != ENDPOINT_SETTINGS_PATH_VARIABLE
    }
    return dataclasses.replace(spec, environment={**environment, "ENDPOINTS": json.dumps(documents)})
