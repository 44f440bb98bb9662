"""The rollout Lambdas' environment, read once into pydantic models.

Each endpoint's settings (``ENDPOINT_SETTINGS_PATH``: lambdas/shared/endpoint_store.py; or an inline
``ENDPOINTS`` JSON object by endpoint name) have the serving functions' shape
(``lambdas.serving.settings``) plus, per endpoint, what a rollout needs::

    {"churn": {"endpoint_name": "mlrollout-dev-churn", "champion": "champion", "challenger": "challenger",
               "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
               "model_package_group": "mlrollout-dev-churn",
               "execution_role_arn": "arn:aws:iam::123456789012:role/mlrollout-dev-churn-sagemaker",
               "rollback_alarm_names": ["mlrollout-dev-churn-composite"],
               "rollout": {"strategy": "canary", "traffic_steps": [5, 25, 50, 100], "bake_minutes": 10,
                           "blue_green": {...}, "judge": {...}, "gates": {...}}}}

``challenger`` is null when the endpoint's second slot is a shadow variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

from annotated_types import MinLen
from pydantic import BaseModel, ConfigDict, Field, WrapValidator

from lambdas.flags import EndpointVariants, Name
from lambdas.gates import GateSettings
from lambdas.rollout.guardrails import CostBasis, GuardrailSettings
from lambdas.rollout.judge_settings import JudgeSettings
from lambdas.rollout.payloads import BlueGreenSettings, Strategy, VariantNames
from lambdas.rollout.policy import GateStep, SituationPolicy
from lambdas.shared.business_metric import BusinessMetricName
from lambdas.shared.endpoint_store import (
    ENDPOINT_SETTINGS_PATH_VARIABLE,
    endpoints_from_environment,
    endpoints_variable,
    keep_catalog,
)
from lambdas.shared.settings import SettingsError, read_environment, validate_settings

__all__ = [
    "AbortSettings",
    "RolloutDefaults",
    "RolloutEndpoint",
    "RolloutSettings",
    "SettingsError",
    "load_abort_settings",
    "load_rollout_settings",
]

ENV_VARIABLES = {
    "endpoints": ENDPOINT_SETTINGS_PATH_VARIABLE,
    "lock_table": "LOCK_TABLE",
    "ledger_table": "LEDGER_TABLE",
    "topic_arn": "TOPIC_ARN",
    "environment": "ENVIRONMENT_NAME",
    "release_to": "RELEASE_TO",
    "report_bucket": "REPORT_BUCKET",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutDefaults(_Strict):
    """The environment config's ``rollout`` section: how an endpoint's rollouts run unless overridden."""

    strategy: Strategy = Strategy.CANARY
    traffic_steps: tuple[int, ...] = (5, 25, 50, 100)
    bake_minutes: int = Field(default=10, ge=1, le=1440)
    max_bakes_per_step: int = Field(default=6, ge=1, le=100)
    blue_green: BlueGreenSettings = BlueGreenSettings()
    judge: JudgeSettings = JudgeSettings()
    gates: GateSettings = GateSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    policy: SituationPolicy = SituationPolicy()
    approval_before: tuple[GateStep, ...] = ()


class RolloutEndpoint(_Strict):
    endpoint_name: str = Field(min_length=1, max_length=63, description="the physical SageMaker name")
    champion: Name
    challenger: Name | None = None
    business_metric: BusinessMetricName
    model_package_group: str = Field(min_length=1, max_length=63)
    execution_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    rollback_alarm_names: tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] = ()
    abort_alarm_name: str | None = Field(
        default=None, min_length=1, max_length=255, description="its ALARM aborts a running rollout"
    )
    rollout: RolloutDefaults = RolloutDefaults()
    instance_prices: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="on-demand USD per instance-hour of the types its cost is read on"
    )

    def cost_basis(self, instance_type: str, champion_instances: int) -> CostBasis:
        """What the cost guardrail compares on, for the champion's type and count as the rollout starts."""
        return CostBasis(
            instance_type=instance_type,
            champion_instances=champion_instances,
            price_per_hour=self.instance_prices.get(instance_type),
        )

    @property
    def variants(self) -> VariantNames:
        """The variant slots; a shadow endpoint's second slot keeps the default challenger name unused."""
        if self.challenger is None:
            return VariantNames(champion=self.champion)
        return VariantNames(champion=self.champion, challenger=self.challenger)


class RolloutSettings(_Strict):
    # The deployed functions read each endpoint from SSM (lambdas/shared/endpoint_store.py) when asked.
    endpoints: Annotated[Mapping[Name, RolloutEndpoint], MinLen(1), WrapValidator(keep_catalog)]
    lock_table: str = Field(min_length=3, max_length=255)
    ledger_table: str = Field(min_length=3, max_length=255)
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:.+$")
    # The promote function's: a promoted package is offered to the next environment (docs/release-chain.md).
    environment: str | None = Field(default=None, min_length=1, description="this environment's name")
    release_to: str | None = Field(default=None, min_length=1, description="the next environment's name")
    # The promote and rollback functions': where a rollout's report goes when it ends (the registry's bucket).
    report_bucket: str | None = Field(default=None, min_length=3, max_length=63, description="an S3 bucket")

    @property
    def region(self) -> str:
        """The environment's region, from its topic's ARN."""
        return self.topic_arn.split(":")[3]

    @classmethod
    def env_variables(cls) -> dict[str, str]:
        return dict(ENV_VARIABLES)

    def flag_catalog(self) -> tuple[EndpointVariants, ...]:
        """The endpoints as the flag model sees them (its flag keys and pinnable variants)."""
        return tuple(
            EndpointVariants(endpoint=name, champion=endpoint.champion, challenger=endpoint.challenger)
            for name, endpoint in self.endpoints.items()
        )


class AbortSettings(RolloutSettings):
    """The abort function's: the rollout settings, the state machine it stops and restarts, the flags."""

    state_machine_arn: str = Field(pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:.+$")
    appconfig_application: str = Field(min_length=1)
    appconfig_environment: str = Field(min_length=1)
    appconfig_profile: str = Field(min_length=1)

    @classmethod
    def env_variables(cls) -> dict[str, str]:
        return ENV_VARIABLES | {
            "state_machine_arn": "STATE_MACHINE_ARN",
            "appconfig_application": "APPCONFIG_APPLICATION",
            "appconfig_environment": "APPCONFIG_ENVIRONMENT",
            "appconfig_profile": "APPCONFIG_PROFILE",
        }


SettingsT = TypeVar("SettingsT", bound=RolloutSettings)


def load_rollout_settings(environ: Mapping[str, str]) -> RolloutSettings:
    """Validate the environment, naming the variable of each problem."""
    return _load(RolloutSettings, environ)


def load_abort_settings(environ: Mapping[str, str]) -> AbortSettings:
    return _load(AbortSettings, environ)


def _load(model: type[SettingsT], environ: Mapping[str, str]) -> SettingsT:
    variables = model.env_variables()
    raw = read_environment(environ, {k: v for k, v in variables.items() if k != "endpoints"})
    raw |= endpoints_from_environment(environ, RolloutEndpoint)
    return validate_settings(model, raw, variables | {"endpoints": endpoints_variable(environ)})
