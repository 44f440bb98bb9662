"""AppConfig and AppConfigData requests routed to the emulation, in-process and through moto's server,
and `emulate_appconfig`, which opens it. What is emulated: README.md.
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
