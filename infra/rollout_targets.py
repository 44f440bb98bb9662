"""What the rollout's functions may act on: the ARNs their least-privilege statements name.

Its endpoints, the models and endpoint configs named after them (the CDK's bootstrap ones and the
rollout's own), its families' model packages, its endpoints' alarms and the execution roles a deployed
model runs as; computed once from the config, tokens resolved at deploy time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack

from infra.alarms import EndpointAlarms
from infra.endpoint import ModelEndpoint

# lambdas/rollout/aws/endpoint_ops.py names what a rollout creates "<endpoint name[:42]>-<tag>-<digest>".
ROLLOUT_NAME_PREFIX_MAX = 42


def name_patterns(endpoint_name: str) -> list[str]:
    """Names of the models and endpoint configs of one endpoint: "<endpoint>-bootstrap" from CDK, and
    the rollout's own, which keep the endpoint name's first 42 characters to stay within SageMaker's 63."""
    return sorted({f"{endpoint_name}-*", f"{endpoint_name[:ROLLOUT_NAME_PREFIX_MAX].rstrip('-')}-*"})


@dataclass(frozen=True)
class RolloutTargets:
    """ARNs a function may act on."""

    endpoints: list[str]
    models: list[str]
    endpoint_configs: list[str]
    packages: list[str]
    alarms: list[str]
    execution_roles: list[str]

    @classmethod
    def of(
        cls,
        stack: Stack,
        *,
        endpoints: Mapping[str, ModelEndpoint],
        alarms: Mapping[str, EndpointAlarms],
        package_groups: Sequence[str],
    ) -> RolloutTargets:
        def sagemaker(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        names = [endpoint.endpoint_name for endpoint in endpoints.values()]
        return cls(
            endpoints=[sagemaker("endpoint", name) for name in names],
            # Models and configs the rollout creates are named "<endpoint>-<suffix>".
            models=[sagemaker("model", pattern) for name in names for pattern in name_patterns(name)],
            endpoint_configs=[
                sagemaker("endpoint-config", pattern) for name in names for pattern in name_patterns(name)
            ],
            packages=[sagemaker("model-package", f"{group}/*") for group in package_groups],
            alarms=[
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
                for endpoint_alarms in alarms.values()
                for name in endpoint_alarms.alarm_names
            ],
            execution_roles=[endpoint.execution_role.role_arn for endpoint in endpoints.values()],
        )
