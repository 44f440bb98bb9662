"""Builds the CDK app for one environment; shared by app.py and the infra tests."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import ENVIRONMENTS_DIR, ConfigError, EnvironmentConfig, load_config, release_chain
from infra.stack import PlatformStack

DEFAULT_ENV = "dev"


def stack_name(config: EnvironmentConfig) -> str:
    return f"MlRollout-{config.name}"


def build_app(app: App, *, config_dir: Path = ENVIRONMENTS_DIR) -> PlatformStack:
    """Read `-c env=NAME` (default dev), validate its file and add the platform stack with cdk-nag; the
    first environment's stack is returned. `-c env=staging,prod` adds several environments' stacks to one
    assembly (the local cloud deploys a release chain from one cdk.out)."""
    names = [name.strip() for name in str(app.node.try_get_context("env") or DEFAULT_ENV).split(",")]
    if len(set(names)) != len(names) or not all(names):
        raise ConfigError(f"-c env={','.join(names)}: name each environment once")
    stacks = [platform_stack(app, load_config(name, config_dir), config_dir) for name in names]
    add_compliance_checks(app)
    return stacks[0]


def platform_stack(app: App, config: EnvironmentConfig, config_dir: Path) -> PlatformStack:
    return PlatformStack(
        app,
        stack_name(config),
        config=config,
        chain=release_chain(config, config_dir),
        env=Environment(account=config.aws.account, region=config.aws.region),
        description=f"mlrollout platform ({config.name}): registry, flags, serving, rollout, retraining",
    )


def add_compliance_checks(app: App) -> None:
    """cdk-nag AwsSolutions as a validation plugin: an unacknowledged finding fails synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
