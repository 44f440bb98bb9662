"""AppConfig deployments and AppConfigData on moto, which stores applications, configuration profiles and
hosted configuration versions but has no environments, deployment strategies, deployments, extension
associations, and no AppConfigData at all.

`emulate_appconfig(...)` is a context manager. While open, moto answers these APIs in-process (under
`mock_aws`) and through a `ThreadedMotoServer` of this process alike: in-process, moto's botocore stubber
hands the requests for the emulated paths of the `appconfig` and `appconfigdata` endpoints here; in the
server, its dispatcher does, for requests signed for `appconfig` (AppConfigData's SigV4 signing name is
`appconfig` too) on those paths (`/configurationsessions`, `/configuration`, environments, deployments,
deployment strategies, extension associations). Everything else stays moto's. Requests and answers are
parsed and serialized by moto from the botocore models, so shapes, status codes and error codes are the
APIs'. What AppConfig does (AppConfig User Guide: "Creating an environment", "Creating a deployment
strategy", "Deploying a configuration", "About validators", "Retrieving the configuration", "Using the
AWS AppConfig deployment events to Amazon EventBridge extension"; API Reference), and the emulation:

* **Environments** (Create/Get/List/Update) with `Monitors` (`AlarmArn`, `AlarmRoleArn`); `State` is
  `READY_FOR_DEPLOYMENT`, `DEPLOYING`, `ROLLED_BACK` or `REVERTED` as its last deployment left it.
* **Deployment strategies** (Create/Get/List/Update), and AppConfig's predefined ones by their ids
  (`AppConfig.AllAtOnce`, `AppConfig.Linear50PercentEvery30Seconds`, `AppConfig.Canary10Percent20Minutes`,
  `AppConfig.Linear20PercentEvery6Minutes`).
* **StartDeployment** checks that the application, environment, strategy, profile and version (number or
  label) exist (`ResourceNotFoundException`), allows one deployment at a time per environment
  (`ConflictException`, also for a stale `LatestDeploymentNumber`), then runs the profile's validators:
  `JSON_SCHEMA` with `jsonschema`'s draft 4 (AppConfig supports "JSON Schema version 4.X"), `LAMBDA` by
  invoking the function through moto's Lambda (`Invoke`, RequestResponse) with AppConfig's validator event
  (`applicationId`, `configurationProfileId`, `configurationVersion`, `content` base64, `uri`); a function
  error fails validation, as AppConfig reads `X-Amz-Function-Error`. A failed validation is a
  `BadRequestException` (`Reason` `InvalidConfiguration`, `Details.InvalidConfiguration`) and creates
  nothing. Run the handlers with `localcloud.awslambda.invocations.route_lambda_invocations`: moto alone needs
  Docker. Only hosted configurations (`LocationUri` `hosted`) deploy; other sources are refused by name.
* **Timing** on an injectable clock (`clock`, epoch seconds; `AcceleratedClock.now` shares the Lambda
  workers' faster time): `DEPLOYING` for `DeploymentDurationInMinutes` (divided by `time_scale`),
  `PercentageComplete` growing in steps spread evenly over it (linear: G, 2G, ...; exponential G*2^N, as
  the User Guide gives it), then `BAKING` for `FinalBakeTimeInMinutes`, then `COMPLETE`; the `EventLog`
  (newest first, as AppConfig lists it) records DEPLOYMENT_STARTED, PERCENTAGE_UPDATED, BAKE_TIME_STARTED,
  DEPLOYMENT_COMPLETED, ROLLBACK_STARTED/ROLLBACK_COMPLETED and REVERT_COMPLETED with `TriggeredBy`.
  `instant=True` completes a deployment within StartDeployment (its monitors checked once).
  Time advances on `tick()`, on every emulated call, and on a background thread (`tick_seconds`).
* **Rollback**: while a monitor's alarm is in ALARM in moto's CloudWatch (metric or composite, found by
  its ARN) during DEPLOYING or BAKING, the deployment is `ROLLED_BACK` (TriggeredBy CLOUDWATCH_ALARM) and
  the environment `ROLLED_BACK`. StopDeployment rolls an ongoing deployment back (TriggeredBy USER); with
  `AllowRevert` it reverts a COMPLETE one (`REVERTED`). Alarms are read when time advances: one that
  fires and clears between two ticks is not seen. A monitor naming no existing alarm never rolls back.
* **AppConfigData**: StartConfigurationSession takes ids or names, `RequiredMinimumPollIntervalInSeconds`
  15..86400 (default 60). GetLatestConfiguration serves, per session, what AppConfig's targets get: the
  latest COMPLETE deployment of the (application, environment, profile), or the ongoing one once the
  session is among its `PercentageComplete` (sessions are spread over 100 stable buckets; BAKING is
  100 %); a rollback serves the previous version again. `Configuration` is empty when the session already
  has that deployment's content; `NextPollIntervalInSeconds`, `ContentType`, `VersionLabel` as
  documented. A token used before the session's interval has passed since it was issued is refused with
  `BadRequestException` "Request too early" (`Details.InvalidParameters.ConfigurationToken.Problem`
  `PollIntervalNotSatisfied`); an unknown token is `Corrupted`, one older than 24 hours `Expired`. For a
  `AWS.AppConfig.FeatureFlags` profile the content served is the values form AppConfig derives: each
  flag's value without the `_`-prefixed metadata, a disabled flag as `{"enabled": false}` only.
* **Deployment events**: with AppConfig's `AWS.AppConfig.DeploymentNotificationsToEventBridge` extension
  associated (CreateExtensionAssociation, Get/List/Delete) to the deployment's application, environment or
  profile, start, completion and rollback put an event on moto's default bus: source `aws.appconfig`,
  resources [the association's ARN], detail {InvocationId, Parameters, Type, Application, Environment,
  ConfigurationProfile (Id and Name each), DeploymentNumber, ConfigurationVersion} as the extension's
  documented sample. Without an association nothing is sent, as on AWS.

Use: `with mock_aws(), emulate_appconfig(clock=..., instant=True) as appconfig:` then any boto3 client,
in-process or pointed at a `ThreadedMotoServer` of this process (`endpoint_url`, `AWS_ENDPOINT_URL`); for
`LocalCloud`, `gap_fillers={"appconfig": appconfig_gap_filler()}` (the cloud's clock) deploys the stack's
AppConfig resources, its Lambda validator run by the cloud's runner. `AppConfigEmulator.tick()` advances
time at once, `emitted` lists the events put on the bus, `background_errors` what the thread hit.

Where the documentation left it open, this module chose, and says so:

* the rollback event's detail-type: the EventBridge events reference lists "On Deployment Rollback" (with
  "On Deployment Start" and "On Deployment Complete"), while the extension's action point is
  ON_DEPLOYMENT_ROLLED_BACK; this sends "On Deployment Rollback" and detail `Type` "OnDeploymentRolledBack"
  (the sample shows "OnDeploymentComplete" for ON_DEPLOYMENT_COMPLETE);
* a session on a profile never deployed to the environment: GetLatestConfiguration answers
  `ResourceNotFoundException` (ResourceType `Deployment`); the error messages' wording is this module's;
* a token may be used more than once (the API asks for once; AppConfig is known to accept a reused one);
  the interval counts from the token's issue;
* multi-variant feature flags and the native feature-flag schema checks AppConfig makes when a version is
  created are not emulated; nor are KMS keys, SSM/S3/Secrets Manager sources, ValidateConfiguration,
  custom extensions, deployment to percentages of real hosts, `ReplicateTo` (stored only), deleting
  environments or strategies, or tag APIs on the emulated resources. moto's own state reset
  (`mock_aws` closing) does not clear this module's: open one emulation per `mock_aws`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from unittest import mock

import jsonschema
from flask import Flask
from moto.appconfig.models import AppConfigBackend, Application, ConfigurationProfile, appconfig_backends
from moto.appconfig.responses import AppConfigResponse
from moto.awslambda.models import lambda_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import ServiceException
from moto.core.request import normalize_request
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.core.utils import convert_to_flask_response, get_equivalent_url_in_aws_domain
from moto.events.models import events_backends
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import BackendRequest, DomainDispatcherApplication
from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

# moto had none of these APIs up to this version (see `check_moto`).
MOTO_VERSION: Final = "5.2.5"
SIGNING_NAME: Final = "appconfig"
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

# Paths this module answers; everything else on the appconfig endpoint stays moto's.
_CONTROL_PATHS = re.compile(
    r"^/(applications/[^/]+/environments(/[^/]+(/deployments(/[^/]+)?)?)?"
    r"|deploymentstrategies(/[^/]+)?|deployementstrategies/[^/]+"
    r"|extensionassociations(/[^/]+)?)/?$"
)
_DATA_PATHS = re.compile(r"^/(configurationsessions|configuration)/?$")
_CONTROL_HOST = re.compile(r"^appconfig\.[^.]+\.amazonaws\.com$")
_DATA_HOST = re.compile(r"^appconfigdata\.[^.]+\.amazonaws\.com$")


class MotoHasAppConfigApisError(RuntimeError):
    """moto implements an API this module emulates: the emulation would hide moto's behaviour."""


class AppConfigEmulationError(RuntimeError):
    """The emulator cannot run as asked (e.g. used while closed, or its background thread failed)."""


# --- AppConfig's errors ------------------------------------------------------------------------------


class BadRequest(ServiceException):
    code = "BadRequestException"

    def __init__(self, message: str, *, reason: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


class ResourceNotFound(ServiceException):
    code = "ResourceNotFoundException"

    def __init__(self, message: str, *, resource_name: str | None = None, resource_type: str | None = None):
        super().__init__(message)
        self.resource_name = resource_name
        self.resource_type = resource_type


class Conflict(ServiceException):
    code = "ConflictException"


def _invalid_token(problem: str, message: str) -> BadRequest:
    details = {"InvalidParameters": {"ConfigurationToken": {"Problem": problem}}}
    return BadRequest(message, reason="InvalidParameters", details=details)


# --- the emulated resources --------------------------------------------------------------------------


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
        return f"{_application_arn(self.scope, self.application_id)}/environment/{self.id}"

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
            "OccurredAt": _datetime(self.occurred_at),
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
            "StartedAt": _datetime(self.started_at),
            "CompletedAt": _datetime(self.completed_at) if self.completed_at is not None else None,
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
        application = _application_arn(environment.scope, environment.application_id)
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
class _Region:
    environments: dict[str, dict[str, Environment]] = field(default_factory=dict)  # app id -> env id ->
    strategies: dict[str, Strategy] = field(default_factory=dict)
    deployments: dict[tuple[str, str], list[Deployment]] = field(default_factory=dict)  # (app, env) ->
    associations: dict[str, ExtensionAssociation] = field(default_factory=dict)


@dataclass(frozen=True)
class _Emission:
    scope: Scope
    entry: dict[str, Any]


# --- the emulator ------------------------------------------------------------------------------------


class AppConfigEmulator:
    """The state of the emulated AppConfig APIs; `emulate_appconfig` yields one while it routes requests."""

    def __init__(self, *, clock: Clock = time.time, time_scale: float = 1.0, instant: bool = False) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.clock = clock
        self.time_scale = time_scale
        self.instant = instant
        self.background_errors: list[BaseException] = []
        self._lock = threading.RLock()
        self._regions: dict[Scope, _Region] = {}
        self._tokens: dict[str, Token] = {}
        self._pending: list[_Emission] = []
        self.emitted: list[dict[str, Any]] = []

    # --- time -----------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance every ongoing deployment to the clock's now (monitors checked), then send the events."""
        with self._lock:
            now = self.clock()
            for region in self._regions.values():
                for deployments in region.deployments.values():
                    for deployment in deployments:
                        self._advance(deployment, now)
        self._flush_events()

    def _advance(self, deployment: Deployment, now: float) -> None:
        if deployment.state not in ONGOING:
            return
        steps = deployment.strategy.step_percentages()
        interval = deployment.deploy_seconds / len(steps)
        for index, percentage in enumerate(steps):
            at = deployment.started_at + index * interval
            if at > now:
                break
            if percentage > deployment.percentage:
                deployment.percentage = percentage
                description = f"Configuration deployment percentage has been updated to {percentage:.2f}%"
                deployment.record("PERCENTAGE_UPDATED", "APPCONFIG", description, at)
        if deployment.state == "DEPLOYING" and deployment.deploy_ends_at <= now:
            deployment.state = "BAKING"
            deployment.percentage = 100.0
            if deployment.bake_seconds > 0:
                deployment.record(
                    "BAKE_TIME_STARTED",
                    "APPCONFIG",
                    "Deployment bake time started",
                    deployment.deploy_ends_at,
                )
        if deployment.bake_ends_at <= now:
            self._complete(deployment)
            return
        alarm = self._alarm_in_alarm(deployment.environment)
        if alarm is not None:
            self._roll_back(
                deployment, now, "CLOUDWATCH_ALARM", f"Rollback initiated by CloudWatch Alarm: {alarm}"
            )

    def _complete(self, deployment: Deployment) -> None:
        deployment.state = "COMPLETE"
        deployment.percentage = 100.0
        deployment.completed_at = deployment.bake_ends_at
        deployment.record(
            "DEPLOYMENT_COMPLETED", "APPCONFIG", "Deployment completed", deployment.bake_ends_at
        )
        deployment.environment.state = "READY_FOR_DEPLOYMENT"
        self._emit(deployment, DEPLOYMENT_COMPLETED_EVENT, "OnDeploymentComplete", deployment.bake_ends_at)

    def _roll_back(self, deployment: Deployment, now: float, triggered_by: str, description: str) -> None:
        deployment.record("ROLLBACK_STARTED", triggered_by, description, now)
        deployment.state = "ROLLED_BACK"
        deployment.percentage = 0.0
        deployment.record("ROLLBACK_COMPLETED", triggered_by, "Rollback completed", now)
        deployment.environment.state = "ROLLED_BACK"
        self._emit(deployment, DEPLOYMENT_ROLLED_BACK_EVENT, "OnDeploymentRolledBack", now)

    def _alarm_in_alarm(self, environment: Environment) -> str | None:
        """The ARN of the first monitor whose alarm is in ALARM in moto's CloudWatch, if any."""
        for monitor in environment.monitors:
            arn = monitor["AlarmArn"]
            parts = arn.split(":")
            if len(parts) < 7 or parts[2] != "cloudwatch":
                continue
            region, account_id = parts[3], parts[4]
            if account_id not in cloudwatch_backends or region not in cloudwatch_backends[account_id]:
                continue
            for alarm in list(cloudwatch_backends[account_id][region].alarms.values()):
                if alarm.alarm_arn == arn and alarm.state_value == "ALARM":
                    return arn
        return None

    # --- events ---------------------------------------------------------------------------------------

    def _emit(self, deployment: Deployment, detail_type: str, action_type: str, at: float) -> None:
        environment = deployment.environment
        for association in self._region(environment.scope).associations.values():
            if not association.covers(deployment):
                continue
            application = _application(environment.scope, environment.application_id)
            detail = {
                "InvocationId": mock_random.get_random_hex(7),
                "Parameters": dict(association.parameters),
                "Type": action_type,
                "Application": {"Id": environment.application_id, "Name": application.name},
                "Environment": {"Id": environment.id, "Name": environment.name},
                "ConfigurationProfile": {"Id": deployment.profile_id, "Name": deployment.profile_name},
                "DeploymentNumber": deployment.number,
                "ConfigurationVersion": deployment.version,
            }
            entry = {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "Resources": [association.arn],
                "Time": at,
            }
            self._pending.append(_Emission(environment.scope, entry))

    def _flush_events(self) -> None:
        # Sent outside the lock: a rule's target may call AppConfig through the server meanwhile.
        with self._lock:
            pending, self._pending = self._pending, []
        for emission in pending:
            events_backends[emission.scope.account_id][emission.scope.region].put_events([emission.entry])
            self.emitted.append(emission.entry)

    # --- control plane --------------------------------------------------------------------------------

    def _region(self, scope: Scope) -> _Region:
        return self._regions.setdefault(scope, _Region())

    def create_environment(self, scope: Scope, application_id: str, params: Mapping[str, Any]) -> Environment:
        with self._lock:
            _application(scope, application_id)
            monitors = [_monitor(item) for item in params.get("Monitors") or []]
            environment = Environment(
                scope=scope,
                application_id=application_id,
                id=mock_random.get_random_hex(7),
                name=_required_name(params.get("Name"), "Name"),
                description=params.get("Description"),
                monitors=monitors,
            )
            self._region(scope).environments.setdefault(application_id, {})[environment.id] = environment
            return environment

    def environment(self, scope: Scope, application_id: str, environment_id: str) -> Environment:
        _application(scope, application_id)
        environments = self._region(scope).environments.get(application_id, {})
        if environment_id not in environments:
            raise ResourceNotFound(
                f"Environment {environment_id} of application {application_id} not found",
                resource_name=environment_id,
            )
        return environments[environment_id]

    def environments(self, scope: Scope, application_id: str) -> list[Environment]:
        _application(scope, application_id)
        return list(self._region(scope).environments.get(application_id, {}).values())

    def create_strategy(self, scope: Scope, params: Mapping[str, Any]) -> Strategy:
        growth_type = str(params.get("GrowthType") or "LINEAR")
        if growth_type not in {"LINEAR", "EXPONENTIAL"}:
            raise BadRequest(f"GrowthType must be LINEAR or EXPONENTIAL, got {growth_type!r}")
        strategy = Strategy(
            id=mock_random.get_random_hex(7),
            name=_required_name(params.get("Name"), "Name"),
            description=params.get("Description"),
            duration_minutes=_minutes(
                params.get("DeploymentDurationInMinutes"), "DeploymentDurationInMinutes"
            ),
            bake_minutes=_minutes(params.get("FinalBakeTimeInMinutes", 0), "FinalBakeTimeInMinutes"),
            growth_factor=_growth_factor(params.get("GrowthFactor")),
            growth_type=growth_type,
            replicate_to=str(params.get("ReplicateTo") or "NONE"),
        )
        with self._lock:
            self._region(scope).strategies[strategy.id] = strategy
        return strategy

    def strategy(self, scope: Scope, strategy_id: str) -> Strategy:
        if strategy_id in PREDEFINED_STRATEGIES:
            duration, bake, growth, growth_type = PREDEFINED_STRATEGIES[strategy_id]
            return Strategy(
                strategy_id,
                strategy_id,
                "AppConfig's predefined strategy",
                duration,
                bake,
                growth,
                growth_type,
            )
        strategies = self._region(scope).strategies
        if strategy_id not in strategies:
            raise ResourceNotFound(f"Deployment strategy {strategy_id} not found", resource_name=strategy_id)
        return strategies[strategy_id]

    def strategies(self, scope: Scope) -> list[Strategy]:
        predefined = [self.strategy(scope, name) for name in PREDEFINED_STRATEGIES]
        return predefined + list(self._region(scope).strategies.values())

    def update_strategy(self, scope: Scope, strategy_id: str, params: Mapping[str, Any]) -> Strategy:
        if strategy_id in PREDEFINED_STRATEGIES:
            raise BadRequest(f"{strategy_id} is predefined by AppConfig and cannot be updated")
        with self._lock:
            current = self.strategy(scope, strategy_id)
            updated = Strategy(
                id=current.id,
                name=current.name,
                description=params.get("Description", current.description),
                duration_minutes=_minutes(
                    params.get("DeploymentDurationInMinutes", current.duration_minutes),
                    "DeploymentDurationInMinutes",
                ),
                bake_minutes=_minutes(
                    params.get("FinalBakeTimeInMinutes", current.bake_minutes), "FinalBakeTimeInMinutes"
                ),
                growth_factor=_growth_factor(params.get("GrowthFactor", current.growth_factor)),
                growth_type=str(params.get("GrowthType") or current.growth_type),
                replicate_to=current.replicate_to,
            )
            self._region(scope).strategies[strategy_id] = updated
            return updated

    def start_deployment(
        self,
        scope: Scope,
        application_id: str,
        environment_id: str,
        params: Mapping[str, Any],
    ) -> Deployment:
        self.tick()
        with self._lock:
            environment, strategy, profile, version = self._deployment_inputs(
                scope, application_id, environment_id, params
            )
        # Validators run unlocked: a Lambda validator may itself call AppConfig through the server.
        content = _content_bytes(version.content)
        version_number = str(version.version)
        _validate(profile, version_number, content, scope)
        with self._lock:
            now = self.clock()
            self._check_no_ongoing(scope, environment, params)
            deployments = self._region(scope).deployments.setdefault((application_id, environment.id), [])
            scale = math.inf if self.instant else self.time_scale
            deployment = Deployment(
                environment=environment,
                number=len(deployments) + 1,
                strategy=strategy,
                profile_id=profile.id,
                profile_name=profile.name,
                profile_type=profile._type,
                location_uri=profile.location_uri,
                version=version_number,
                version_label=version.version_label,
                description=params.get("Description"),
                content=content,
                content_type=str(version.content_type or "application/octet-stream"),
                started_at=now,
                deploy_seconds=strategy.duration_minutes * 60 / scale,
                bake_seconds=strategy.bake_minutes * 60 / scale,
            )
            deployment.record("DEPLOYMENT_STARTED", "USER", "Deployment started", now)
            deployments.append(deployment)
            environment.state = "DEPLOYING"
            self._emit(deployment, DEPLOYMENT_STARTED_EVENT, "OnDeploymentStart", now)
            # A monitor already in ALARM rolls the deployment back at once, whatever the strategy.
            alarm = self._alarm_in_alarm(environment)
            if alarm is not None:
                self._roll_back(
                    deployment, now, "CLOUDWATCH_ALARM", f"Rollback initiated by CloudWatch Alarm: {alarm}"
                )
            self._advance(deployment, now)
        self._flush_events()
        return deployment

    def _deployment_inputs(
        self,
        scope: Scope,
        application_id: str,
        environment_id: str,
        params: Mapping[str, Any],
    ) -> tuple[Environment, Strategy, ConfigurationProfile, Any]:
        environment = self.environment(scope, application_id, environment_id)
        strategy = self.strategy(scope, str(params.get("DeploymentStrategyId")))
        profile = _profile(scope, application_id, str(params.get("ConfigurationProfileId")))
        self._check_no_ongoing(scope, environment, params)
        if profile.location_uri != HOSTED:
            raise BadRequest(
                f"configuration profile {profile.id} reads {profile.location_uri!r}: only hosted "
                "configurations are emulated"
            )
        wanted = str(params.get("ConfigurationVersion"))
        for number, version in sorted(profile.config_versions.items()):
            if str(number) == wanted or (
                version.version_label is not None and version.version_label == wanted
            ):
                return environment, strategy, profile, version
        raise ResourceNotFound(
            f"Hosted configuration version {wanted} of configuration profile {profile.id} not found",
            resource_name=wanted,
        )

    def _check_no_ongoing(self, scope: Scope, environment: Environment, params: Mapping[str, Any]) -> None:
        deployments = self._region(scope).deployments.get((environment.application_id, environment.id), [])
        for deployment in deployments:
            if deployment.state in ONGOING:
                raise Conflict(
                    f"Deployment {deployment.number} is {deployment.state} in environment {environment.id}: "
                    "AppConfig deploys one configuration at a time to an environment"
                )
        latest = params.get("LatestDeploymentNumber")
        if latest is not None and int(latest) != len(deployments):
            raise Conflict(
                f"LatestDeploymentNumber {latest} is stale: environment {environment.id} is at deployment "
                f"{len(deployments)}"
            )

    def deployment(self, scope: Scope, application_id: str, environment_id: str, number: int) -> Deployment:
        self.tick()
        with self._lock:
            for deployment in self.deployments(scope, application_id, environment_id):
                if deployment.number == number:
                    return deployment
        raise ResourceNotFound(
            f"Deployment {number} of environment {environment_id} not found", resource_name=str(number)
        )

    def deployments(self, scope: Scope, application_id: str, environment_id: str) -> list[Deployment]:
        environment = self.environment(scope, application_id, environment_id)
        return list(self._region(scope).deployments.get((application_id, environment.id), []))

    def stop_deployment(
        self,
        scope: Scope,
        application_id: str,
        environment_id: str,
        number: int,
        allow_revert: bool,
    ) -> Deployment:
        deployment = self.deployment(scope, application_id, environment_id, number)
        with self._lock:
            now = self.clock()
            if deployment.state in ONGOING:
                self._roll_back(deployment, now, "USER", "Rollback initiated by user: StopDeployment")
            elif deployment.state == "COMPLETE" and allow_revert:
                latest = self._latest_complete(deployment.environment, deployment.profile_id)
                if latest is not deployment:
                    raise BadRequest(
                        f"Deployment {number} is not the latest completed deployment: it cannot be reverted"
                    )
                deployment.state = "REVERTED"
                deployment.record("REVERT_COMPLETED", "USER", "Deployment reverted", now)
                deployment.environment.state = "REVERTED"
            else:
                raise BadRequest(
                    f"Deployment {number} is {deployment.state}: only a deployment in progress can be stopped"
                    + (" (a COMPLETE one with AllowRevert)" if deployment.state == "COMPLETE" else "")
                )
        self._flush_events()
        return deployment

    def create_association(self, scope: Scope, params: Mapping[str, Any]) -> ExtensionAssociation:
        extension = str(params.get("ExtensionIdentifier") or "")
        if extension != EVENTS_EXTENSION and f"/{EVENTS_EXTENSION}" not in extension:
            raise BadRequest(
                f"extension {extension!r} is not emulated: only {EVENTS_EXTENSION} (deployment events to the "
                "default EventBridge bus) is"
            )
        resource = str(params.get("ResourceIdentifier") or "")
        match = re.fullmatch(
            r"arn:[^:]+:appconfig:[^:]+:[^:]*:application/([^/]+)(/(environment|configurationprofile)/[^/]+)?",
            resource,
        )
        if match is None:
            raise BadRequest(
                "ResourceIdentifier must be the ARN of an application, environment or configuration "
                f"profile, got {resource!r}"
            )
        _application(scope, match.group(1))
        association = ExtensionAssociation(
            id=mock_random.get_random_hex(7),
            scope=scope,
            resource_arn=resource,
            parameters={str(k): str(v) for k, v in (params.get("Parameters") or {}).items()},
        )
        with self._lock:
            self._region(scope).associations[association.id] = association
        return association

    def association(self, scope: Scope, association_id: str) -> ExtensionAssociation:
        associations = self._region(scope).associations
        if association_id not in associations:
            raise ResourceNotFound(
                f"Extension association {association_id} not found", resource_name=association_id
            )
        return associations[association_id]

    def delete_association(self, scope: Scope, association_id: str) -> None:
        with self._lock:
            self.association(scope, association_id)
            del self._region(scope).associations[association_id]

    def associations(self, scope: Scope) -> list[ExtensionAssociation]:
        return list(self._region(scope).associations.values())

    # --- data plane -----------------------------------------------------------------------------------

    def start_session(self, scope: Scope, params: Mapping[str, Any]) -> str:
        interval = params.get("RequiredMinimumPollIntervalInSeconds")
        interval = DEFAULT_POLL_INTERVAL_SECONDS if interval is None else int(interval)
        if not MIN_POLL_INTERVAL_SECONDS <= interval <= MAX_POLL_INTERVAL_SECONDS:
            raise BadRequest(
                f"RequiredMinimumPollIntervalInSeconds must be {MIN_POLL_INTERVAL_SECONDS}.."
                f"{MAX_POLL_INTERVAL_SECONDS}, got {interval}"
            )
        self.tick()
        with self._lock:
            application = _find_application(scope, str(params.get("ApplicationIdentifier")))
            environment = self._find_environment(scope, application, str(params.get("EnvironmentIdentifier")))
            profile = _find_profile(application, str(params.get("ConfigurationProfileIdentifier")))
            token = secrets.token_urlsafe(48)
            bucket = int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") % 100
            session = Session(scope, application.id, environment.id, profile.id, interval, bucket)
            # The first poll may come at once: the interval counts from the tokens that polls issue.
            now = self.clock()
            self._tokens[token] = Token(session, issued_at=now, not_before=now, served_deployment=None)
            return token

    def latest_configuration(self, token_text: str) -> dict[str, Any]:
        self.tick()
        with self._lock:
            now = self.clock()
            token = self._tokens.get(token_text)
            if token is None:
                raise _invalid_token("Corrupted", "Invalid configuration token")
            if now - token.issued_at > TOKEN_LIFETIME_SECONDS:
                raise _invalid_token("Expired", "Configuration token expired")
            session = token.session
            if now < token.not_before:
                raise _invalid_token("PollIntervalNotSatisfied", "Request too early")
            environment = self.environment(session.scope, session.application_id, session.environment_id)
            deployment = self._served(environment, session)
            if deployment is None:
                raise ResourceNotFound(
                    f"No deployment of configuration profile {session.profile_id} to environment "
                    f"{environment.id}",
                    resource_type="Deployment",
                )
            next_token = secrets.token_urlsafe(48)
            self._tokens[next_token] = Token(session, now, now + session.interval_seconds, deployment.number)
            changed = deployment.number != token.served_deployment
            content, content_type = _served_content(deployment)
            return {
                "NextPollConfigurationToken": next_token,
                "NextPollIntervalInSeconds": session.interval_seconds,
                "ContentType": content_type,
                "Configuration": content if changed else b"",
                "VersionLabel": deployment.version_label,
            }

    def _served(self, environment: Environment, session: Session) -> Deployment | None:
        deployments = self._region(session.scope).deployments.get(
            (environment.application_id, environment.id), []
        )
        for deployment in deployments:
            ongoing = deployment.profile_id == session.profile_id and deployment.state in ONGOING
            if ongoing and (deployment.state == "BAKING" or session.bucket < deployment.percentage):
                return deployment
        return self._latest_complete(environment, session.profile_id)

    def _latest_complete(self, environment: Environment, profile_id: str) -> Deployment | None:
        deployments = self._region(environment.scope).deployments.get(
            (environment.application_id, environment.id), []
        )
        complete = [d for d in deployments if d.profile_id == profile_id and d.state == "COMPLETE"]
        return complete[-1] if complete else None

    def _find_environment(self, scope: Scope, application: Application, identifier: str) -> Environment:
        for environment in self._region(scope).environments.get(application.id, {}).values():
            if identifier in {environment.id, environment.name}:
                return environment
        raise ResourceNotFound(
            f"Environment {identifier!r} of application {application.id} not found",
            resource_type="Environment",
        )


# --- what AppConfig serves and validates ---------------------------------------------------------------


def feature_flag_values(document: Any) -> dict[str, Any]:
    """The values form AppConfigData serves for an AWS.AppConfig.FeatureFlags document: every value without
    its `_`-prefixed metadata, a disabled flag as `{"enabled": false}` alone."""
    if not isinstance(document, Mapping) or not isinstance(document.get("values", {}), Mapping):
        raise ValueError("an AWS.AppConfig.FeatureFlags document is an object whose `values` is an object")
    served: dict[str, Any] = {}
    for key, value in document.get("values", {}).items():
        if not isinstance(value, Mapping):
            raise ValueError(f"flag {key!r}: its value must be an object")
        if value.get("enabled") is False:
            served[key] = {"enabled": False}
        else:
            served[key] = {name: item for name, item in value.items() if not str(name).startswith("_")}
    return served


def _served_content(deployment: Deployment) -> tuple[bytes, str]:
    if deployment.profile_type != FEATURE_FLAGS_TYPE:
        return deployment.content, deployment.content_type
    values = feature_flag_values(json.loads(deployment.content))
    return json.dumps(values).encode(), "application/json"


def _validate(profile: ConfigurationProfile, version: str, content: bytes, scope: Scope) -> None:
    problems: list[dict[str, str]] = []
    for validator in profile.validators or []:
        kind = str(validator.get("Type"))
        if kind == "JSON_SCHEMA":
            problems += _json_schema_problems(str(validator.get("Content")), content)
        elif kind == "LAMBDA":
            problems += _lambda_problems(str(validator.get("Content")), profile, version, content, scope)
        else:
            raise BadRequest(f"validator type {kind!r} is neither JSON_SCHEMA nor LAMBDA")
    if problems:
        reasons = "; ".join(problem["Reason"] for problem in problems)
        raise BadRequest(
            f"Configuration version {version} failed validation: {reasons}",
            reason="InvalidConfiguration",
            details={"InvalidConfiguration": problems},
        )


def _json_schema_problems(schema_text: str, content: bytes) -> list[dict[str, str]]:
    schema = json.loads(schema_text)
    try:
        instance = json.loads(content)
    except ValueError as error:
        return [{"Type": "JSON_SCHEMA", "Reason": f"the configuration is not JSON: {error}", "Location": "$"}]
    validator = jsonschema.Draft4Validator(schema)
    return [
        {
            "Type": "JSON_SCHEMA",
            "Constraint": str(error.validator),
            "Location": "$"
            + "".join(
                f"[{part!r}]" if isinstance(part, str) else f"[{part}]" for part in error.absolute_path
            ),
            "Reason": error.message,
            "Value": json.dumps(error.instance)[:1024],
        }
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _lambda_problems(
    function: str, profile: ConfigurationProfile, version: str, content: bytes, scope: Scope
) -> list[dict[str, str]]:
    event = {
        "applicationId": profile.application_id,
        "configurationProfileId": profile.id,
        "configurationVersion": version,
        "content": base64.b64encode(content).decode(),
        "uri": profile.location_uri,
    }
    parts = function.split(":")
    # A function ARN names its own account and region; a bare name is the profile's.
    if function.startswith("arn:") and len(parts) >= 7:
        scope = Scope(account_id=parts[4], region=parts[3])
    headers: dict[str, str] = {}
    try:
        payload = lambda_backends[scope.account_id][scope.region].invoke(
            function, None, json.dumps(event), {"x-amz-invocation-type": "RequestResponse"}, headers
        )
    except Exception as error:  # any failure to invoke fails the validation, naming it
        raise BadRequest(f"the LAMBDA validator {function} could not be invoked: {error}") from None
    if "x-amz-function-error" not in {name.lower() for name in headers}:
        return []
    reason = _function_error_message(payload)
    return [{"Type": "LAMBDA", "Reason": f"validator {function}: {reason}", "Value": reason}]


def _function_error_message(payload: Any) -> str:
    text = payload.decode() if isinstance(payload, bytes) else str(payload)
    try:
        error = json.loads(text)
    except ValueError:
        return text
    if isinstance(error, Mapping):
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    return text


# --- moto's resources --------------------------------------------------------------------------------


def _backend(scope: Scope) -> AppConfigBackend:
    return appconfig_backends[scope.account_id][scope.region]


def _application(scope: Scope, application_id: str) -> Application:
    applications = _backend(scope).applications
    if application_id not in applications:
        raise ResourceNotFound(f"Application {application_id} not found", resource_name=application_id)
    return applications[application_id]


def _profile(scope: Scope, application_id: str, profile_id: str) -> ConfigurationProfile:
    profiles = _application(scope, application_id).config_profiles
    if profile_id not in profiles:
        raise ResourceNotFound(
            f"Configuration profile {profile_id} of application {application_id} not found",
            resource_name=profile_id,
        )
    return profiles[profile_id]


def _find_application(scope: Scope, identifier: str) -> Application:
    for application in _backend(scope).applications.values():
        if identifier in {application.id, application.name}:
            return application
    raise ResourceNotFound(f"Application {identifier!r} not found", resource_type="Application")


def _find_profile(application: Application, identifier: str) -> ConfigurationProfile:
    for profile in application.config_profiles.values():
        if identifier in {profile.id, profile.name}:
            return profile
    raise ResourceNotFound(
        f"Configuration profile {identifier!r} of application {application.id} not found",
        resource_type="ConfigurationProfile",
    )


def _application_arn(scope: Scope, application_id: str) -> str:
    return f"arn:aws:appconfig:{scope.region}:{scope.account_id}:application/{application_id}"


def _content_bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _required_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise BadRequest(f"{what} must be 1 to 64 characters, got {value!r}")
    return value


def _minutes(value: Any, what: str) -> int:
    if value is None or not 0 <= int(value) <= MAX_MINUTES:
        raise BadRequest(f"{what} must be 0..{MAX_MINUTES} minutes, got {value!r}")
    return int(value)


def _growth_factor(value: Any) -> float:
    if value is None or not 1 <= float(value) <= 100:
        raise BadRequest(f"GrowthFactor must be 1..100, got {value!r}")
    return float(value)


def _monitor(item: Mapping[str, Any]) -> dict[str, str]:
    if not item.get("AlarmArn"):
        raise BadRequest(f"a monitor needs an AlarmArn, got {dict(item)}")
    monitor = {"AlarmArn": str(item["AlarmArn"])}
    if item.get("AlarmRoleArn"):
        monitor["AlarmRoleArn"] = str(item["AlarmRoleArn"])
    return monitor


# --- the APIs' responses -----------------------------------------------------------------------------


class _EmulatedResponse(BaseResponse):
    """moto's response machinery (routing, parsing and serializing from the botocore model)."""

    emulator: AppConfigEmulator | None = None

    def __init__(self, service_name: str) -> None:
        super().__init__(service_name=service_name)
        self.automated_parameter_parsing = True

    @property
    def state(self) -> AppConfigEmulator:
        if self.emulator is None:
            raise AppConfigEmulationError("localcloud.appconfig.routing's emulation is not open")
        return self.emulator

    def _param(self, name: str) -> Any:
        return self._get_param(name)

    def _scope(self) -> Scope:
        return Scope(self.current_account, self.region)


class AppConfigControlResponse(_EmulatedResponse):
    def __init__(self) -> None:
        super().__init__("appconfig")

    def create_environment(self) -> ActionResult:
        params = self._get_params()
        environment = self.state.create_environment(self._scope(), str(self._param("ApplicationId")), params)
        return ActionResult(environment.to_json())

    def get_environment(self) -> ActionResult:
        environment = self.state.environment(
            self._scope(), str(self._param("ApplicationId")), str(self._param("EnvironmentId"))
        )
        return ActionResult(environment.to_json())

    def list_environments(self) -> ActionResult:
        environments = self.state.environments(self._scope(), str(self._param("ApplicationId")))
        return ActionResult({"Items": [environment.to_json() for environment in environments]})

    def update_environment(self) -> ActionResult:
        environment = self.state.environment(
            self._scope(), str(self._param("ApplicationId")), str(self._param("EnvironmentId"))
        )
        if self._param("Name") is not None:
            environment.name = _required_name(self._param("Name"), "Name")
        if self._param("Description") is not None:
            environment.description = str(self._param("Description"))
        if self._param("Monitors") is not None:
            environment.monitors = [_monitor(item) for item in self._param("Monitors")]
        return ActionResult(environment.to_json())

    def create_deployment_strategy(self) -> ActionResult:
        return ActionResult(self.state.create_strategy(self._scope(), self._get_params()).to_json())

    def get_deployment_strategy(self) -> ActionResult:
        return ActionResult(
            self.state.strategy(self._scope(), str(self._param("DeploymentStrategyId"))).to_json()
        )

    def list_deployment_strategies(self) -> ActionResult:
        return ActionResult(
            {"Items": [strategy.to_json() for strategy in self.state.strategies(self._scope())]}
        )

    def update_deployment_strategy(self) -> ActionResult:
        strategy_id = str(self._param("DeploymentStrategyId"))
        return ActionResult(
            self.state.update_strategy(self._scope(), strategy_id, self._get_params()).to_json()
        )

    def start_deployment(self) -> ActionResult:
        deployment = self.state.start_deployment(
            self._scope(),
            str(self._param("ApplicationId")),
            str(self._param("EnvironmentId")),
            self._get_params(),
        )
        return ActionResult(deployment.to_json())

    def get_deployment(self) -> ActionResult:
        deployment = self.state.deployment(self._scope(), *self._deployment_address())
        return ActionResult(deployment.to_json())

    def list_deployments(self) -> ActionResult:
        self.state.tick()
        deployments = self.state.deployments(
            self._scope(), str(self._param("ApplicationId")), str(self._param("EnvironmentId"))
        )
        # AppConfig lists the newest deployment first.
        return ActionResult({"Items": [deployment.summary() for deployment in reversed(deployments)]})

    def stop_deployment(self) -> ActionResult:
        allow_revert = bool(self._param("AllowRevert"))
        deployment = self.state.stop_deployment(self._scope(), *self._deployment_address(), allow_revert)
        return ActionResult(deployment.to_json())

    def create_extension_association(self) -> ActionResult:
        return ActionResult(self.state.create_association(self._scope(), self._get_params()).to_json())

    def get_extension_association(self) -> ActionResult:
        association_id = str(self._param("ExtensionAssociationId"))
        return ActionResult(self.state.association(self._scope(), association_id).to_json())

    def list_extension_associations(self) -> ActionResult:
        resource = self._param("ResourceIdentifier")
        items = [
            {"Id": a.id, "ExtensionArn": a.extension_arn, "ResourceArn": a.resource_arn}
            for a in self.state.associations(self._scope())
            if resource is None or a.resource_arn == resource
        ]
        return ActionResult({"Items": items})

    def delete_extension_association(self) -> EmptyResult:
        self.state.delete_association(self._scope(), str(self._param("ExtensionAssociationId")))
        return EmptyResult()

    def _deployment_address(self) -> tuple[str, str, int]:
        return (
            str(self._param("ApplicationId")),
            str(self._param("EnvironmentId")),
            int(self._param("DeploymentNumber")),
        )


class AppConfigDataResponse(_EmulatedResponse):
    def __init__(self) -> None:
        super().__init__("appconfigdata")

    def start_configuration_session(self) -> ActionResult:
        token = self.state.start_session(self._scope(), self._get_params())
        return ActionResult({"InitialConfigurationToken": token})

    def get_latest_configuration(self) -> ActionResult:
        return ActionResult(self.state.latest_configuration(str(self._param("ConfigurationToken") or "")))


# --- routing -----------------------------------------------------------------------------------------


def emulated_response(
    host: str | None, path: str, signing_name: str | None
) -> type[_EmulatedResponse] | None:
    """The response class for a request to `path`, if it is one this module answers. `host` is the
    request's AWS endpoint host (in-process), `signing_name` its SigV4 service (through the server)."""
    if host is not None and _DATA_HOST.match(host):
        return AppConfigDataResponse if _DATA_PATHS.match(path) else None
    if host is not None and _CONTROL_HOST.match(host):
        return AppConfigControlResponse if _CONTROL_PATHS.match(path) else None
    if signing_name == SIGNING_NAME:
        if _DATA_PATHS.match(path):
            return AppConfigDataResponse
        if _CONTROL_PATHS.match(path):
            return AppConfigControlResponse
    return None


def _signing_name(environ: Mapping[str, Any]) -> str | None:
    authorization = str(environ.get("HTTP_AUTHORIZATION") or "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", authorization)
    return match.group(1).lower() if match else None


def _server_app(response_class: type[_EmulatedResponse]) -> Flask:
    app = Flask(f"localcloud-{response_class.__name__}")
    app.request_class = BackendRequest
    view = convert_to_flask_response(response_class.dispatch)
    for rule in ("/", "/<path:anything>"):
        app.add_url_rule(
            rule,
            endpoint=f"emulated{rule}",
            view_func=view,
            methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        )
    return app


def check_moto() -> None:
    """Fails when moto gained an API this module emulates, instead of hiding moto's own behaviour."""
    for operation in ("start_deployment", "create_environment", "create_deployment_strategy"):
        if hasattr(AppConfigResponse, operation):
            raise MotoHasAppConfigApisError(
                f"moto's AppConfigResponse has {operation}: re-read localcloud.appconfig "
                f"(written for moto {MOTO_VERSION}, which had none) and drop what moto now does"
            )


@contextmanager
def emulate_appconfig(
    *,
    clock: Clock = time.time,
    time_scale: float = 1.0,
    instant: bool = False,
    tick_seconds: float | None = 0.1,
) -> Iterator[AppConfigEmulator]:
    """While open, moto answers the emulated AppConfig and AppConfigData APIs, in-process and through a
    `ThreadedMotoServer` of this process. Open it inside `mock_aws`.

    `clock`: AppConfig's time, epoch seconds (`AcceleratedClock.now` to share the Lambda workers' time).
    `time_scale`: strategies' minutes pass this many times faster (poll intervals and tokens keep the
    clock). `instant`: deployments complete within StartDeployment. `tick_seconds`: how often (real
    seconds) a background thread advances deployments and sends their events; None for only on
    `tick()` and on calls.
    """
    check_moto()
    emulator = AppConfigEmulator(clock=clock, time_scale=time_scale, instant=instant)
    apps: dict[type[_EmulatedResponse], Flask] = {
        cls: _server_app(cls) for cls in (AppConfigControlResponse, AppConfigDataResponse)
    }
    original_process = BotocoreStubber.process_request
    original_dispatch = DomainDispatcherApplication.__call__

    def process_request(stubber: BotocoreStubber, request: Any) -> TYPE_RESPONSE | None:
        parsed, _ = get_equivalent_url_in_aws_domain(request.url)
        response_class = emulated_response(parsed.hostname, parsed.path, None)
        if response_class is None:
            return original_process(stubber, request)
        normalized = normalize_request(request)
        try:
            result: TYPE_RESPONSE = response_class.dispatch(
                normalized, normalized.raw_url, normalized.headers
            )
        except HTTPException as error:
            return error.code, error.get_headers(), error.get_body()  # type: ignore[return-value]
        return result

    def dispatch(
        dispatcher: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any
    ) -> Any:
        response_class = emulated_response(None, str(environ.get("PATH_INFO", "")), _signing_name(environ))
        if response_class is None:
            return original_dispatch(dispatcher, environ, start_response)
        return apps[response_class](environ, start_response)

    stop = threading.Event()

    def keep_ticking(interval: float) -> None:
        while not stop.wait(interval):
            try:
                emulator.tick()
            except Exception as error:  # kept and logged: a test reads background_errors
                logger.exception("localcloud.appconfig.routing: advancing deployments failed")
                emulator.background_errors.append(error)

    with (
        mock.patch.object(_EmulatedResponse, "emulator", emulator),
        mock.patch.object(BotocoreStubber, "process_request", process_request),
        mock.patch.object(DomainDispatcherApplication, "__call__", dispatch),
    ):
        thread = None
        if tick_seconds is not None:
            thread = threading.Thread(
                target=keep_ticking, args=(tick_seconds,), name="appconfig-ticks", daemon=True
            )
            thread.start()
        try:
            yield emulator
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=5)


def appconfig_gap_filler(
    *, time_scale: float = 1.0, instant: bool = False, tick_seconds: float | None = 0.1
) -> Callable[[LocalCloud], Any]:
    """A `LocalCloud` gap filler: the emulation on the cloud's clock (its Lambda workers' accelerated
    time when it has one)."""

    def open_for(cloud: LocalCloud) -> Any:
        clock: Clock = cloud.clock.now if cloud.clock is not None else time.time
        return emulate_appconfig(
            clock=clock, time_scale=time_scale, instant=instant, tick_seconds=tick_seconds
        )

    return open_for


__all__: Sequence[str] = (
    "DEPLOYMENT_COMPLETED_EVENT",
    "DEPLOYMENT_ROLLED_BACK_EVENT",
    "DEPLOYMENT_STARTED_EVENT",
    "EVENTS_EXTENSION",
    "AppConfigEmulator",
    "appconfig_gap_filler",
    "check_moto",
    "emulate_appconfig",
    "feature_flag_values",
)
