"""The kill switch and pins of an endpoint, changed as a person would in the console: the flags as
deployed now, one flag changed, a new hosted version deployed through AppConfig and waited for.

The flag model and its native document are `lambdas.flags`, as the router and the abort read them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lambdas.flags import EndpointFlags, EndpointVariants, FlagError, FlagSet, KillSwitch, UserPin
from mlrollout_cli.errors import CliError, ExitCode
from mlrollout_cli.platform import Platform

__all__ = ["deploy_flags", "pin_user", "read_flags", "switch"]

DEPLOYMENT_DEADLINE_SECONDS = 1800.0
DEPLOYMENT_POLL_SECONDS = 2.0


def read_flags(platform: Platform) -> FlagSet:
    """The flags as AppConfigData serves them now (what the router and the abort read)."""
    where = platform.resources.flags
    data = platform.client("appconfigdata")
    session = data.start_configuration_session(
        ApplicationIdentifier=where.application_id,
        EnvironmentIdentifier=where.environment_id,
        ConfigurationProfileIdentifier=where.profile_id,
    )
    served = data.get_latest_configuration(ConfigurationToken=session["InitialConfigurationToken"])
    content = served["Configuration"].read()
    catalog = [_variants(platform, name) for name in platform.endpoints]
    try:
        return FlagSet.from_values(json.loads(content) if content else {}, catalog, partial=True)
    except (FlagError, ValueError) as error:
        raise CliError(f"the deployed flags cannot be read: {error}", ExitCode.AWS) from None


def _variants(platform: Platform, name: str) -> EndpointVariants:
    endpoint = platform.endpoint(name)
    return EndpointVariants(endpoint=name, champion=endpoint.champion, challenger=endpoint.challenger)


def _changed(flags: FlagSet, endpoint: str, change: Callable[[EndpointFlags], EndpointFlags]) -> FlagSet:
    try:
        current = flags.for_endpoint(endpoint)
    except KeyError:
        raise CliError(
            f"the deployed flags have no flags for endpoint {endpoint!r} yet (its stack deploys them)",
            ExitCode.NOT_FOUND,
        ) from None
    updated = change(current)
    return FlagSet(endpoints=tuple(updated if f is current else f for f in flags.endpoints))


def switch(platform: Platform, endpoint: str, *, on: bool, reason: str | None) -> dict[str, Any]:
    platform.endpoint(endpoint)
    try:
        kill = KillSwitch(on=on, reason=reason if on else None)
    except ValueError as error:
        raise CliError(f"invalid kill switch: {error}", ExitCode.USAGE) from None
    flags = _changed(read_flags(platform), endpoint, lambda f: f.model_copy(update={"kill_switch": kill}))
    return deploy_flags(platform, flags, f"{endpoint} kill switch {'on' if on else 'off'}")


def pin_user(platform: Platform, endpoint: str, user: str, variant: str) -> dict[str, Any]:
    """Add the user to the endpoint's allow-list pinned to `variant` (one variant per list: pinning to
    another variant moves the list)."""
    platform.endpoint(endpoint)

    def pinned(flags: EndpointFlags) -> EndpointFlags:
        users = flags.user_pin.users if flags.user_pin is not None else ()
        try:
            pin = UserPin(users=(*(u for u in users if u != user), user), variant=variant)
            return EndpointFlags(
                endpoint=flags.endpoint,
                kill_switch=flags.kill_switch,
                segment_pin=flags.segment_pin,
                user_pin=pin,
            )
        except ValueError as error:
            raise CliError(f"cannot pin {user!r} to {variant!r}: {error}", ExitCode.USAGE) from None

    flags = _changed(read_flags(platform), endpoint, pinned)
    return deploy_flags(platform, flags, f"{endpoint}: user {user} pinned to {variant}")


def deploy_flags(
    platform: Platform,
    flags: FlagSet,
    description: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """A new hosted version of the flag document, deployed with the environment's flag strategy; returns
    once AppConfig says COMPLETE. A deployment rolled back (a monitor alarmed) is an error."""
    where = platform.resources.flags
    appconfig = platform.client("appconfig")
    version = appconfig.create_hosted_configuration_version(
        ApplicationId=where.application_id,
        ConfigurationProfileId=where.profile_id,
        Content=json.dumps(flags.document()).encode(),
        ContentType="application/json",
        Description=description[:1024],
    )
    started = appconfig.start_deployment(
        ApplicationId=where.application_id,
        EnvironmentId=where.environment_id,
        DeploymentStrategyId=where.deployment_strategy_id,
        ConfigurationProfileId=where.profile_id,
        ConfigurationVersion=str(version["VersionNumber"]),
        Description=description[:1024],
    )
    number = started["DeploymentNumber"]
    deadline = clock() + DEPLOYMENT_DEADLINE_SECONDS
    while True:
        deployment = appconfig.get_deployment(
            ApplicationId=where.application_id, EnvironmentId=where.environment_id, DeploymentNumber=number
        )
        state = str(deployment["State"])
        if state == "COMPLETE":
            return {"deployment": number, "version": version["VersionNumber"], "state": state}
        if state in {"ROLLED_BACK", "REVERTED"}:
            raise CliError(
                f"flag deployment {number} was {state.lower().replace('_', ' ')}: the flags are as before",
                ExitCode.REFUSED,
            )
        if clock() > deadline:
            raise CliError(
                f"flag deployment {number} still {state} after {DEPLOYMENT_DEADLINE_SECONDS:.0f} s",
                ExitCode.AWS,
            )
        sleep(DEPLOYMENT_POLL_SECONDS)
