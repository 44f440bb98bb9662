"""A Lambda function of this project: the `lambdas/` package, Powertools from AWS's layer, traced, logged.

Every function runs code from the same asset: the repository's `lambdas/` package and nothing else, so a
handler is addressed as `lambdas.handlers.<name>.handler`. No bundling: the package is pure Python and
its run-time dependencies come from the Lambda runtime (boto3) and the Powertools layer (Powertools v3
with pydantic v2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.nag import acknowledge_wildcard_resources

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME = lambda_.Runtime.PYTHON_3_14
# Graviton: cheaper per GB-second than x86, and the asset is pure Python (the layer is built per arch).
ARCHITECTURE = lambda_.Architecture.ARM_64
# The version pinned in pyproject.toml's `lambda` extra, so tests run what the functions get.
POWERTOOLS_VERSION = "3.37.0"
# Powertools publishes each layer release under this public SSM alias; CloudFormation resolves it at
# deploy time to the exact layer ARN of that version (arn:aws:lambda:<region>:017000801446:layer:
# AWSLambdaPowertoolsPythonV3-python314-arm64:<n>), so the layer number is never guessed or hand-copied.
POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{POWERTOOLS_VERSION}"
)
# The asset is the repository root less everything but the `lambdas/` package (glob, last match wins).
ASSET_EXCLUDES = [
    "*",
    ".*",
    "!lambdas",
    "!lambdas/**",
    "**/.*",
    "**/__pycache__",
    "**/*.pyc",
    "lambdas/**/tests",
]
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def powertools_layer(scope: Construct) -> lambda_.ILayerVersion:
    """The stack's one reference to AWS's Powertools layer (a lookup, no resource)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PowertoolsLayer")
    if existing is not None:
        return cast(lambda_.ILayerVersion, existing)
    arn = ssm.StringParameter.value_for_string_parameter(stack, POWERTOOLS_LAYER_PARAMETER)
    return lambda_.LayerVersion.from_layer_version_arn(stack, "PowertoolsLayer", arn)


def lambdas_asset() -> lambda_.Code:
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=ASSET_EXCLUDES)


class ProjectFunction(Construct):
    """One function: its own role (nothing granted but its log group and X-Ray) and its own log group,
    encrypted with `log_key` (requests, and so their values, can reach the logs)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        timeout: Duration,
        log_key: kms.IKey,
        memory_size: int = 256,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=LOG_RETENTION, encryption_key=log_key)
        # An explicit role: the default one carries AWSLambdaBasicExecutionRole (writes to every log group).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda execution role)",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            code=lambdas_asset(),
            handler=handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            layers=[powertools_layer(self)],
            description=description,
            environment=dict(environment),
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
        )
        acknowledge_wildcard_resources(
            self.role,
            ["*"],
            "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permission.",
        )

    def allow(
        self,
        actions: Sequence[str],
        resources: Sequence[str],
        conditions: Mapping[str, object] | None = None,
    ) -> None:
        """One statement on the function's own role: a call its handler makes, on these resources."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(actions), resources=list(resources), conditions=conditions)
        )
