"""The platform stack of one environment: composes the constructs, tags them, nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.registry import ModelRegistry


class PlatformStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "mlrollout")
        Tags.of(self).add("environment", config.name)

        self.registry = ModelRegistry(
            self, "Registry", prefix=config.prefix, model_families=config.model_families
        )
        # [notifications]
        # [endpoints]
        # [feature-flags]
