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

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from unittest import mock

from flask import Flask
from moto.appconfig.responses import AppConfigResponse
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.common_types import TYPE_RESPONSE
from moto.core.request import normalize_request
from moto.core.utils import convert_to_flask_response, get_equivalent_url_in_aws_domain
from moto.moto_server.werkzeug_app import BackendRequest, DomainDispatcherApplication
from werkzeug.exceptions import HTTPException

from localcloud.appconfig.backend import AppConfigEmulator
from localcloud.appconfig.exceptions import (
    MotoHasAppConfigApisError,
)
from localcloud.appconfig.models import (
    MOTO_VERSION,
    Clock,
)
from localcloud.appconfig.responses import AppConfigControlResponse, AppConfigDataResponse, EmulatedResponse

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

logger = logging.getLogger(__name__)


SIGNING_NAME: Final = "appconfig"


# Paths this module answers; everything else on the appconfig endpoint stays moto's.
_CONTROL_PATHS = re.compile(
    r"^/(applications/[^/]+/environments(/[^/]+(/deployments(/[^/]+)?)?)?"
    r"|deploymentstrategies(/[^/]+)?|deployementstrategies/[^/]+"
    r"|extensionassociations(/[^/]+)?)/?$"
)
_DATA_PATHS = re.compile(r"^/(configurationsessions|configuration)/?$")
_CONTROL_HOST = re.compile(r"^appconfig\.[^.]+\.amazonaws\.com$")
_DATA_HOST = re.compile(r"^appconfigdata\.[^.]+\.amazonaws\.com$")


def emulated_response(host: str | None, path: str, signing_name: str | None) -> type[EmulatedResponse] | None:
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


def _server_app(response_class: type[EmulatedResponse]) -> Flask:
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
    apps: dict[type[EmulatedResponse], Flask] = {
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
        mock.patch.object(EmulatedResponse, "emulator", emulator),
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
