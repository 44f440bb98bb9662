"""What the rollout's functions may act on: the ARNs their least-privilege statements name.

The environment's endpoints, the models and endpoint configs named after them (the CDK's bootstrap ones
and the rollout's own), its families' model packages, its endpoints' alarms and the execution roles a
deployed model runs as: everything named "<prefix>-..." (e.g. mlrollout-dev-...), so that the policies
keep one size however many endpoints the environment has. An environment whose name extends another's
with a hyphen (dev and dev-2) would share these patterns: give environments in one account distinct
first words. The alarms outside the stack that guard its rollouts are named one by one
(`guardrail_alarm_arns`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack

from infra.config import EnvironmentConfig
from infra.endpoint import execution_role_name
from lambdas.rollout.guardrails import ALARM_ARN_PATTERN

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
    def of(cls, stack: Stack, *, prefix: str) -> RolloutTargets:
        """The environment's names, as patterns: the policies keep one size however many endpoints and
        families the environment has (each lives in its own stack and is named after the prefix)."""

        def sagemaker(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        names = f"{prefix}-*"
        return cls(
            endpoints=[sagemaker("endpoint", names)],
            # Models and configs are named "<endpoint>-<suffix>": the bootstrap's and the rollout's own.
            models=[sagemaker("model", names)],
            endpoint_configs=[sagemaker("endpoint-config", names)],
            # Package groups are "<prefix>-<family>" (infra/registry.py).
            packages=[sagemaker("model-package", f"{names}/*")],
            alarms=[
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=names,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            execution_roles=[
                stack.format_arn(
                    service="iam", region="", resource="role", resource_name=execution_role_name(names)
                )
            ],
        )

    def environment_patterns(self) -> list[str]:
        """The patterns that stand for names of one endpoint each before (cdk-nag asks why)."""
        return [*self.endpoints, *self.alarms, *self.execution_roles]


def guardrail_alarm_arns(stack: Stack, config: EnvironmentConfig) -> list[str]:
    """The ARNs of the alarms outside the stack that guard the environment's rollouts
    (``rollout.guardrails.alarms``, per endpoint): named ones in the stack's account and region."""
    arns = set()
    for endpoint in config.endpoints:
        for reference in config.rollout_for(endpoint).guardrails.alarms:
            if ALARM_ARN_PATTERN.match(reference):
                arns.add(reference)
                continue
            arns.add(
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=reference,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            )
    return sorted(arns)
