"""Builds the CDK app for one environment; shared by app.py and the infra tests."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import ENVIRONMENTS_DIR, EnvironmentConfig, load_config
from infra.stack import PlatformStack

DEFAULT_ENV = "dev"


def stack_name(config: EnvironmentConfig) -> str:
    return f"MlRollout-{config.name}"


def build_app(app: App, *, config_dir: Path = ENVIRONMENTS_DIR) -> PlatformStack:
    """Read `-c env=NAME` (default dev), validate its file and add the platform stack with cdk-nag."""
    env_name = app.node.try_get_context("env") or DEFAULT_ENV
    config = load_config(str(env_name), config_dir)
    stack = PlatformStack(
        app,
        stack_name(config),
        config=config,
        env=Environment(account=config.aws.account, region=config.aws.region),
        description=f"mlrollout platform ({config.name}): registry, flags, serving, rollout, retraining",
    )
    add_compliance_checks(app)
    return stack


def add_compliance_checks(app: App) -> None:
    """cdk-nag AwsSolutions as a validation plugin: an unacknowledged finding fails synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
