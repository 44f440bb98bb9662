"""The emulated AppConfig resources: environments, strategies, deployments, extension associations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from localcloud.appconfig.exceptions import BadRequest

Clock = Callable[[], float]


# moto had none of these APIs up to this version (see `check_moto`).
MOTO_VERSION: Final = "5.2.5"


EVENTS_EXTENSION: Final = "AWS.AppConfig.DeploymentNotificationsToEventBridge"


FEATURE_FLAGS_TYPE: Final = "AWS.AppConfig.FeatureFlags"


HOSTED: Final = "hosted"


EVENT_SOURCE: Final = "aws.appconfig"


DEPLOYMENT_STARTED_EVENT: Final = "On Deployment Start"


DEPLOYMENT_COMPLETED_EVENT: Final = "On Deployment Complete"


DEPLOYMENT_ROLLED_BACK_EVENT: Final = "On Deployment Rollback"


TOKEN_LIFETIME_SECONDS: Final = 24 * 3600


DEFAULT_POLL_INTERVAL_SECONDS: Final = 60


MIN_POLL_INTERVAL_SECONDS: Final = 15


MAX_POLL_INTERVAL_SECONDS: Final = 86400


MAX_MINUTES: Final = 1440


ONGOING: Final = frozenset({"DEPLOYING", "BAKING"})


# AppConfig's predefined strategies (User Guide, "Predefined deployment strategies"):
# (duration minutes, bake minutes, growth factor, growth type).
PREDEFINED_STRATEGIES: Final[dict[str, tuple[int, int, float, str]]] = {
    "AppConfig.AllAtOnce": (0, 10, 100.0, "LINEAR"),
    "AppConfig.Linear50PercentEvery30Seconds": (1, 1, 50.0, "LINEAR"),
    "AppConfig.Canary10Percent20Minutes": (20, 10, 10.0, "EXPONENTIAL"),
    "AppConfig.Linear20PercentEvery6Minutes": (30, 30, 20.0, "LINEAR"),
}


@dataclass(frozen=True)
class Scope:
    """An account and region: AppConfig's resources are regional."""

    account_id: str
    region: str


@dataclass
class Environment:
    scope: Scope
    application_id: str
    id: str
    name: str
    description: str | None
    monitors: list[dict[str, str]]
    state: str = "READY_FOR_DEPLOYMENT"

    @property
    def arn(self) -> str:
        return f"{application_arn(self.scope, self.application_id)}/environment/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ApplicationId": self.application_id,
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "State": self.state,
            "Monitors": self.monitors,
        }


@dataclass(frozen=True)
class Strategy:
    id: str
    name: str
    description: str | None
    duration_minutes: int
    bake_minutes: int
    growth_factor: float
    growth_type: str
    replicate_to: str = "NONE"

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "DeploymentDurationInMinutes": self.duration_minutes,
            "GrowthType": self.growth_type,
            "GrowthFactor": self.growth_factor,
            "FinalBakeTimeInMinutes": self.bake_minutes,
            "ReplicateTo": self.replicate_to,
        }

    def step_percentages(self) -> list[float]:
        """PercentageComplete after each step: G, 2G, ... (linear) or G*2^N (exponential), up to 100."""
        steps: list[float] = []
        step = 0
        while not steps or steps[-1] < 100:
            grown = self.growth_factor * (2**step if self.growth_type == "EXPONENTIAL" else step + 1)
            steps.append(min(100.0, grown))
            step += 1
        return steps


@dataclass(frozen=True)
class DeploymentEvent:
    event_type: str
    triggered_by: str
    description: str
    occurred_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "EventType": self.event_type,
            "TriggeredBy": self.triggered_by,
            "Description": self.description,
            "OccurredAt": utc_datetime(self.occurred_at),
        }


@dataclass
class Deployment:
    environment: Environment
    number: int
    strategy: Strategy
    profile_id: str
    profile_name: str
    profile_type: str | None
    location_uri: str
    version: str
    version_label: str | None
    description: str | None
    content: bytes
    content_type: str
    started_at: float
    deploy_seconds: float
    bake_seconds: float
    state: str = "DEPLOYING"
    percentage: float = 0.0
    completed_at: float | None = None
    events: list[DeploymentEvent] = field(default_factory=list)

    @property
    def deploy_ends_at(self) -> float:
        return self.started_at + self.deploy_seconds

    @property
    def bake_ends_at(self) -> float:
        return self.deploy_ends_at + self.bake_seconds

    def record(self, event_type: str, triggered_by: str, description: str, at: float) -> None:
        self.events.append(DeploymentEvent(event_type, triggered_by, description, at))

    def to_json(self) -> dict[str, Any]:
        return {
            "ApplicationId": self.environment.application_id,
            "EnvironmentId": self.environment.id,
            "DeploymentStrategyId": self.strategy.id,
            "ConfigurationProfileId": self.profile_id,
            "DeploymentNumber": self.number,
            "ConfigurationName": self.profile_name,
            "ConfigurationLocationUri": self.location_uri,
            "ConfigurationVersion": self.version,
            "Description": self.description,
            "DeploymentDurationInMinutes": self.strategy.duration_minutes,
            "GrowthType": self.strategy.growth_type,
            "GrowthFactor": self.strategy.growth_factor,
            "FinalBakeTimeInMinutes": self.strategy.bake_minutes,
            "State": self.state,
            "EventLog": [event.to_json() for event in reversed(self.events)],
            "PercentageComplete": self.percentage,
            "StartedAt": utc_datetime(self.started_at),
            "CompletedAt": utc_datetime(self.completed_at) if self.completed_at is not None else None,
            "VersionLabel": self.version_label,
        }

    def summary(self) -> dict[str, Any]:
        full = self.to_json()
        keys = (
            "DeploymentNumber",
            "ConfigurationProfileId",
            "ConfigurationName",
            "ConfigurationVersion",
            "DeploymentDurationInMinutes",
            "GrowthType",
            "GrowthFactor",
            "FinalBakeTimeInMinutes",
            "State",
            "PercentageComplete",
            "StartedAt",
            "CompletedAt",
            "VersionLabel",
        )
        return {key: full[key] for key in keys}


@dataclass(frozen=True)
class ExtensionAssociation:
    id: str
    scope: Scope
    resource_arn: str
    parameters: dict[str, str]

    @property
    def arn(self) -> str:
        return f"arn:aws:appconfig:{self.scope.region}:{self.scope.account_id}:extensionassociation/{self.id}"

    @property
    def extension_arn(self) -> str:
        return f"arn:aws:appconfig:{self.scope.region}::extension/{EVENTS_EXTENSION}/1"

    def covers(self, deployment: Deployment) -> bool:
        environment = deployment.environment
        application = application_arn(environment.scope, environment.application_id)
        profile = f"{application}/configurationprofile/{deployment.profile_id}"
        return self.resource_arn in {application, environment.arn, profile}

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "ExtensionArn": self.extension_arn,
            "ResourceArn": self.resource_arn,
            "Arn": self.arn,
            "Parameters": self.parameters,
            "ExtensionVersionNumber": 1,
        }


@dataclass(frozen=True)
class Session:
    scope: Scope
    application_id: str
    environment_id: str
    profile_id: str
    interval_seconds: int
    bucket: int


@dataclass(frozen=True)
class Token:
    session: Session
    issued_at: float
    not_before: float
    served_deployment: int | None


@dataclass
class Region:
    environments: dict[str, dict[str, Environment]] = field(default_factory=dict)  # app id -> env id ->
    strategies: dict[str, Strategy] = field(default_factory=dict)
    deployments: dict[tuple[str, str], list[Deployment]] = field(default_factory=dict)  # (app, env) ->
    associations: dict[str, ExtensionAssociation] = field(default_factory=dict)


@dataclass(frozen=True)
class Emission:
    scope: Scope
    entry: dict[str, Any]


def application_arn(scope: Scope, application_id: str) -> str:
    return f"arn:aws:appconfig:{scope.region}:{scope.account_id}:application/{application_id}"


def utc_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def required_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise BadRequest(f"{what} must be 1 to 64 characters, got {value!r}")
    return value


def checked_minutes(value: Any, what: str) -> int:
    if value is None or not 0 <= int(value) <= MAX_MINUTES:
        raise BadRequest(f"{what} must be 0..{MAX_MINUTES} minutes, got {value!r}")
    return int(value)


def checked_growth_factor(value: Any) -> float:
    if value is None or not 1 <= float(value) <= 100:
        raise BadRequest(f"GrowthFactor must be 1..100, got {value!r}")
    return float(value)


def monitor_of(item: Mapping[str, Any]) -> dict[str, str]:
    if not item.get("AlarmArn"):
        raise BadRequest(f"a monitor needs an AlarmArn, got {dict(item)}")
    monitor = {"AlarmArn": str(item["AlarmArn"])}
    if item.get("AlarmRoleArn"):
        monitor["AlarmRoleArn"] = str(item["AlarmRoleArn"])
    return monitor
