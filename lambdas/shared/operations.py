"""Where an environment's rollout resources are, for the people operating it (the `mlrollout` command).

The environment's stack writes one SSM String parameter, ``/<prefix>/platform/operations``, holding this
document; the command reads it (with the endpoints' settings under ``/<prefix>/endpoints/``) and so needs
nothing but the environment's name. Tables and functions keep the names CloudFormation gives them.

Pure: pydantic and the standard library.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FlagsLocation", "OperationsDocument", "environment_prefix", "operations_parameter_name"]


def environment_prefix(environment: str) -> str:
    """Every physical name of an environment starts with this (``EnvironmentConfig.prefix``)."""
    return f"mlrollout-{environment}"


def operations_parameter_name(prefix: str) -> str:
    return f"/{prefix}/platform/operations"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlagsLocation(_Strict):
    """The feature flags' AppConfig resources, by id."""

    application_id: str = Field(min_length=1)
    environment_id: str = Field(min_length=1)
    profile_id: str = Field(min_length=1)
    deployment_strategy_id: str = Field(min_length=1)


class OperationsDocument(_Strict):
    state_machine_arn: str = Field(min_length=1)
    ledger_table: str = Field(min_length=1)
    lock_table: str = Field(min_length=1)
    abort_function: str = Field(min_length=1, description="the abort function's name")
    topic_arn: str = Field(min_length=1)
    flags: FlagsLocation
