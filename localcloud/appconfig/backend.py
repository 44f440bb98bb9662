"""The AppConfig emulator: environments, strategies, deployments stepping and baking on the clock."""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from moto.appconfig.models import Application, ConfigurationProfile
from moto.cloudwatch.models import cloudwatch_backends
from moto.events.models import events_backends
from moto.moto_api._internal import mock_random

from localcloud.appconfig.exceptions import (
    BadRequest,
    Conflict,
    ResourceNotFound,
    invalid_token,
)
from localcloud.appconfig.models import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEPLOYMENT_COMPLETED_EVENT,
    DEPLOYMENT_ROLLED_BACK_EVENT,
    DEPLOYMENT_STARTED_EVENT,
    EVENT_SOURCE,
    EVENTS_EXTENSION,
    HOSTED,
    MAX_POLL_INTERVAL_SECONDS,
    MIN_POLL_INTERVAL_SECONDS,
    ONGOING,
    PREDEFINED_STRATEGIES,
    TOKEN_LIFETIME_SECONDS,
    Clock,
    Deployment,
    Emission,
    Environment,
    ExtensionAssociation,
    Region,
    Scope,
    Session,
    Strategy,
    Token,
    checked_growth_factor,
    checked_minutes,
    monitor_of,
    required_name,
)
from localcloud.appconfig.store import (
    application_of,
    content_bytes,
    find_application,
    find_profile,
    profile_of,
)
from localcloud.appconfig.validators import served_content, validate


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
        self._regions: dict[Scope, Region] = {}
        self._tokens: dict[str, Token] = {}
        self._pending: list[Emission] = []
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
            application = application_of(environment.scope, environment.application_id)
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
            self._pending.append(Emission(environment.scope, entry))

    def _flush_events(self) -> None:
        # Sent outside the lock: a rule's target may call AppConfig through the server meanwhile.
        with self._lock:
            pending, self._pending = self._pending, []
        for emission in pending:
            events_backends[emission.scope.account_id][emission.scope.region].put_events([emission.entry])
            self.emitted.append(emission.entry)

    # --- control plane --------------------------------------------------------------------------------

    def _region(self, scope: Scope) -> Region:
        return self._regions.setdefault(scope, Region())

    def create_environment(self, scope: Scope, application_id: str, params: Mapping[str, Any]) -> Environment:
        with self._lock:
            application_of(scope, application_id)
            monitors = [monitor_of(item) for item in params.get("Monitors") or []]
            environment = Environment(
                scope=scope,
                application_id=application_id,
                id=mock_random.get_random_hex(7),
                name=required_name(params.get("Name"), "Name"),
                description=params.get("Description"),
                monitors=monitors,
            )
            self._region(scope).environments.setdefault(application_id, {})[environment.id] = environment
            return environment

    def environment(self, scope: Scope, application_id: str, environment_id: str) -> Environment:
        application_of(scope, application_id)
        environments = self._region(scope).environments.get(application_id, {})
        if environment_id not in environments:
            raise ResourceNotFound(
                f"Environment {environment_id} of application {application_id} not found",
                resource_name=environment_id,
            )
        return environments[environment_id]

    def environments(self, scope: Scope, application_id: str) -> list[Environment]:
        application_of(scope, application_id)
        return list(self._region(scope).environments.get(application_id, {}).values())

    def create_strategy(self, scope: Scope, params: Mapping[str, Any]) -> Strategy:
        growth_type = str(params.get("GrowthType") or "LINEAR")
        if growth_type not in {"LINEAR", "EXPONENTIAL"}:
            raise BadRequest(f"GrowthType must be LINEAR or EXPONENTIAL, got {growth_type!r}")
        strategy = Strategy(
            id=mock_random.get_random_hex(7),
            name=required_name(params.get("Name"), "Name"),
            description=params.get("Description"),
            duration_minutes=checked_minutes(
                params.get("DeploymentDurationInMinutes"), "DeploymentDurationInMinutes"
            ),
            bake_minutes=checked_minutes(params.get("FinalBakeTimeInMinutes", 0), "FinalBakeTimeInMinutes"),
            growth_factor=checked_growth_factor(params.get("GrowthFactor")),
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
                duration_minutes=checked_minutes(
                    params.get("DeploymentDurationInMinutes", current.duration_minutes),
                    "DeploymentDurationInMinutes",
                ),
                bake_minutes=checked_minutes(
                    params.get("FinalBakeTimeInMinutes", current.bake_minutes), "FinalBakeTimeInMinutes"
                ),
                growth_factor=checked_growth_factor(params.get("GrowthFactor", current.growth_factor)),
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
        content = content_bytes(version.content)
        version_number = str(version.version)
        validate(profile, version_number, content, scope)
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
        profile = profile_of(scope, application_id, str(params.get("ConfigurationProfileId")))
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
        application_of(scope, match.group(1))
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
            application = find_application(scope, str(params.get("ApplicationIdentifier")))
            environment = self._find_environment(scope, application, str(params.get("EnvironmentIdentifier")))
            profile = find_profile(application, str(params.get("ConfigurationProfileIdentifier")))
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
                raise invalid_token("Corrupted", "Invalid configuration token")
            if now - token.issued_at > TOKEN_LIFETIME_SECONDS:
                raise invalid_token("Expired", "Configuration token expired")
            session = token.session
            if now < token.not_before:
                raise invalid_token("PollIntervalNotSatisfied", "Request too early")
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
            content, content_type = served_content(deployment)
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
