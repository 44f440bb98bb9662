"""The HTTP APIs of deployed stacks: each route's key, authorization and the function its Lambda proxy
integration invokes, read from the template (`AWS::ApiGatewayV2::Api/Route/Integration/Stage`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.cloudformation.models import DeployedStack

API = "AWS::ApiGatewayV2::Api"
ROUTE = "AWS::ApiGatewayV2::Route"
INTEGRATION = "AWS::ApiGatewayV2::Integration"
STAGE = "AWS::ApiGatewayV2::Stage"
DEFAULT_STAGE = "$default"


class UnsupportedApiError(ValueError):
    """A route or integration this emulation does not serve: the message names it and why."""


@dataclass(frozen=True)
class Route:
    """One route: `POST /endpoints/{endpoint}/invocations` to a function, with its authorization."""

    api_id: str
    route_key: str
    method: str
    path: str
    authorization_type: str
    function_arn: str
    payload_format_version: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when this route takes the request, else None (`ANY` takes any method;
        `{name+}` takes the rest of the path)."""
        if self.method not in ("ANY", method):
            return None
        pattern = ""
        for part in re.split(r"(\{[^}]+\})", self.path):
            if part.startswith("{") and part.endswith("+}"):
                pattern += f"(?P<{_group(part[1:-2])}>.+)"
            elif part.startswith("{"):
                pattern += f"(?P<{_group(part[1:-1])}>[^/]+)"
            else:
                pattern += re.escape(part)
        found = re.fullmatch(pattern, path)
        if found is None:
            return None
        names = {_group(name): name for name in re.findall(r"\{([^}+]+)\+?\}", self.path)}
        return {names[key]: value for key, value in found.groupdict().items()}


@dataclass(frozen=True)
class HttpApi:
    """One HTTP API: its local id, name, stage and routes."""

    logical_id: str
    api_id: str
    name: str
    stage: str
    routes: tuple[Route, ...]

    def route_for(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route API Gateway picks: the most specific match (fewest parameters, then longest)."""
        matches = [
            (route, params) for route in self.routes if (params := route.match(method, path)) is not None
        ]
        if not matches:
            return None
        return min(matches, key=lambda m: (len(m[1]), -len(m[0].path), m[0].method == "ANY"))


def local_api_id(stack: str, logical_id: str) -> str:
    """A stable 10-character id, as API Gateway gives one (its own are random)."""
    return hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:10]


def http_apis(stacks: Iterable[DeployedStack]) -> list[HttpApi]:
    """Every HTTP API of the deployed stacks."""
    found = []
    for stack in stacks:
        resources = stack.template.resources
        for logical_id, resource in resources.items():
            if resource.get("Type") != API:
                continue
            properties = resource.get("Properties", {})
            if properties.get("ProtocolType") != "HTTP":
                raise UnsupportedApiError(f"{stack.template.name}/{logical_id}: only HTTP APIs are served")
            api_id = local_api_id(stack.template.name, logical_id)
            found.append(
                HttpApi(
                    logical_id=logical_id,
                    api_id=api_id,
                    name=str(properties.get("Name", logical_id)),
                    stage=_stage(resources, logical_id),
                    routes=tuple(_routes(stack, resources, logical_id, api_id)),
                )
            )
    return found


def _routes(stack: DeployedStack, resources: Mapping[str, Any], api: str, api_id: str) -> Iterable[Route]:
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource.get("Type") != ROUTE or _ref(properties.get("ApiId")) != api:
            continue
        where = f"{stack.template.name}/{logical_id}"
        integration_id = _ref(properties.get("Target"))
        if integration_id is None or resources.get(integration_id, {}).get("Type") != INTEGRATION:
            raise UnsupportedApiError(f"{where}: its Target is not an integration of the template")
        integration = resources[integration_id].get("Properties", {})
        if integration.get("IntegrationType") != "AWS_PROXY":
            raise UnsupportedApiError(f"{where}: only Lambda proxy integrations are served")
        method, _, path = str(properties["RouteKey"]).partition(" ")
        yield Route(
            api_id=api_id,
            route_key=str(properties["RouteKey"]),
            method=method,
            path=path,
            authorization_type=str(properties.get("AuthorizationType", "NONE")),
            function_arn=str(stack.resolver.resolve(integration["IntegrationUri"])),
            payload_format_version=str(integration.get("PayloadFormatVersion", "2.0")),
        )


def _stage(resources: Mapping[str, Any], api: str) -> str:
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == STAGE and _ref(properties.get("ApiId")) == api:
            return str(properties.get("StageName", DEFAULT_STAGE))
    return DEFAULT_STAGE


def _ref(value: Any) -> str | None:
    """The first `Ref` inside an intrinsic (a route's `Target` is `integrations/` joined to one)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if (found := _ref(item)) is not None:
                return found
    return None


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)
