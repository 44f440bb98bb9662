"""Each endpoint's settings as an SSM parameter, read by the environment's functions at run time.

The functions' environment names only the path (``ENDPOINT_SETTINGS_PATH``), so it keeps one size
however many endpoints the environment has (Lambda refuses more than 4 KB of variables); each function
reads and validates an endpoint's document when it needs it (lambdas/shared/endpoint_store.py).
Parameter Store, not AppConfig or S3: one small document per endpoint, written by CloudFormation with
the endpoint's other resources, read with one paged call, versioned, free in the standard tier.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.alarms import composite_alarm_name
from infra.config import Endpoint, EnvironmentConfig
from infra.nag import acknowledge_wildcard_resources
from lambdas.shared.endpoint_store import ENDPOINT_SETTINGS_PATH_VARIABLE, endpoint_settings_path

# Standard-tier parameters hold 4 KB; the tokens (an ARN) resolve to at most this many characters.
STANDARD_PARAMETER_BYTES = 4096
TOKEN_ALLOWANCE = 128

__all__ = [
    "ENDPOINT_SETTINGS_PATH_VARIABLE",
    "EndpointSettingsParameter",
    "endpoint_settings_document",
    "grant_read_endpoint_settings",
    "grant_read_settings",
    "settings_path_environment",
]


def endpoint_settings_document(
    config: EnvironmentConfig,
    endpoint: Endpoint,
    *,
    endpoint_name: str,
    champion: str,
    challenger: str | None,
    model_package_group: str,
    execution_role_arn: str,
    rollback_alarm_names: Sequence[str],
) -> dict[str, Any]:
    """What the functions act on for one endpoint (``RolloutEndpoint`` in lambdas/rollout/settings.py,
    of which the serving and drift functions read their own fields)."""
    return {
        "endpoint_name": endpoint_name,
        "champion": champion,
        "challenger": challenger,
        "model_package_group": model_package_group,
        "execution_role_arn": execution_role_arn,
        "rollback_alarm_names": list(rollback_alarm_names),
        "abort_alarm_name": composite_alarm_name(config.prefix, endpoint),
        "rollout": config.rollout_for(endpoint).model_dump(mode="json"),
        "business_metric": {
            "namespace": endpoint.business_metric.namespace,
            "name": endpoint.business_metric.name,
        },
        # The price of the type the endpoint runs on (the challenger's slot copies the champion's): the
        # whole table would crowd the parameter's 4 KB.
        "instance_prices": {
            name: price for name, price in config.prices.items() if name == endpoint.instance_type
        },
    }


class EndpointSettingsParameter(Construct):
    """``/<prefix>/endpoints/<endpoint>``: the endpoint's settings document."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        endpoint: Endpoint,
        document: dict[str, Any],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        estimate = len(json.dumps(_tokens_at_their_longest(stack, document), separators=(",", ":")))
        if estimate > STANDARD_PARAMETER_BYTES:
            raise ValueError(
                f"endpoint {endpoint.name!r}: its settings take about {estimate} bytes, more than a "
                f"standard SSM parameter holds ({STANDARD_PARAMETER_BYTES}); shorten its rollout overrides"
            )
        self.parameter_name = f"{endpoint_settings_path(config.prefix)}{endpoint.name}"
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=self.parameter_name,
            string_value=stack.to_json_string(document),
            description=f"{config.prefix}: settings of endpoint {endpoint.name} (strategy, steps, judge)",
            tier=ssm.ParameterTier.STANDARD,
        )


def _tokens_at_their_longest(stack: Stack, value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _tokens_at_their_longest(stack, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tokens_at_their_longest(stack, item) for item in value]
    if isinstance(value, str) and stack.resolve(value) != value:
        return "x" * TOKEN_ALLOWANCE
    return value


def settings_path_environment(prefix: str) -> dict[str, str]:
    """The one variable that finds every endpoint's settings (``prefix``: e.g. mlrollout-dev)."""
    return {ENDPOINT_SETTINGS_PATH_VARIABLE: endpoint_settings_path(prefix)}


def grant_read_endpoint_settings(role: iam.IRole, prefix: str) -> None:
    """GetParametersByPath on the environment's endpoint path (and its parameters): nothing else."""
    grant_read_settings(role, endpoint_settings_path(prefix))


def grant_read_settings(role: iam.IRole, path: str) -> None:
    """GetParametersByPath on one settings path (and the parameters under it)."""
    stack = Stack.of(role)
    name = path.strip("/")
    arns = [
        stack.format_arn(
            service="ssm",
            resource="parameter",
            resource_name=resource,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        for resource in (name, f"{name}/*")
    ]
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ssm:GetParametersByPath"], resources=arns))
    acknowledge_wildcard_resources(
        role, arns[1:], "One parameter per endpoint or family under the environment's path; they come and go."
    )
