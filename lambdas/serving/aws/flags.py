"""The flags through AppConfigData, via Powertools' AppConfigProvider (its cache is the flags TTL).

AppConfigData returns a native feature-flag profile in its values form; `FlagSet.from_values` parses
it (Powertools' FeatureFlags utility cannot read that format).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import AppConfigProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from lambdas.flags import EndpointVariants, FlagError, FlagSet
from lambdas.serving.ports import FlagsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient

# AppConfigData's lower bound for a session's poll interval.
MIN_POLL_INTERVAL_SECONDS = 15
# After a failed read, requests fail safe at once for this long instead of each waiting on AppConfig.
RETRY_AFTER_FAILURE_SECONDS = 5.0


class AppConfigFlagSource:
    def __init__(
        self,
        *,
        application: str,
        environment: str,
        profile: str,
        ttl_seconds: int,
        catalog: Sequence[EndpointVariants] | Callable[[], Sequence[EndpointVariants]],
        client: AppConfigDataClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_after_seconds: float = RETRY_AFTER_FAILURE_SECONDS,
    ) -> None:
        self._application = application
        self._environment = environment
        self._profile = profile
        self._ttl_seconds = ttl_seconds
        # A callable catalog is asked on every read: endpoints come and go with their stacks.
        self._catalog = catalog if callable(catalog) else (lambda fixed=tuple(catalog): fixed)
        self._client = client
        self._clock = clock
        self._retry_after_seconds = retry_after_seconds
        self._provider: AppConfigProvider | None = None
        self._failed_at: float | None = None
        self._failure = ""
        # Parsed once per fetched document (the provider hands back the same object until its TTL);
        # a rejected document is remembered as its error message.
        self._parsed: tuple[Any, tuple[EndpointVariants, ...], FlagSet | str] | None = None

    def flags(self) -> FlagSet:
        raw = self._fetch()
        catalog = tuple(self._catalog())
        if self._parsed is None or self._parsed[0] is not raw or self._parsed[1] != catalog:
            self._parsed = (raw, catalog, _parse(raw, catalog))
        parsed = self._parsed[2]
        if isinstance(parsed, str):
            raise FlagsUnavailable(parsed)
        return parsed

    def _fetch(self) -> Any:
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._retry_after_seconds:
            raise FlagsUnavailable(self._failure)
        try:
            raw = self._get_provider().get(
                self._profile,
                max_age=self._ttl_seconds,
                transform="json",
                # AppConfigData refuses polls sooner than the session's interval (default 60 s) with
                # "Request too early", so the session is opened with the TTL as its interval.
                RequiredMinimumPollIntervalInSeconds=max(MIN_POLL_INTERVAL_SECONDS, self._ttl_seconds),
            )
        except (GetParameterError, TransformParameterError) as error:
            self._failed_at, self._failure = now, f"AppConfig {self._application}/{self._profile}: {error}"
            # The next attempt opens a new session: this one's token may be what failed.
            self._provider = None
            raise FlagsUnavailable(self._failure) from error
        self._failed_at = None
        return raw

    def _get_provider(self) -> AppConfigProvider:
        # Created on first use: the provider creates its boto3 client, which moto must see in tests.
        if self._provider is None:
            self._provider = AppConfigProvider(
                environment=self._environment, application=self._application, boto3_client=self._client
            )
        return self._provider


def deployed_flags(
    *,
    application: str,
    environment: str,
    profile: str,
    catalog: Sequence[EndpointVariants] | Callable[[], Sequence[EndpointVariants]],
    client: AppConfigDataClient | None = None,
) -> Callable[[], FlagSet]:
    """A reader of the flags as deployed now (the abort's): a new session per read, never a cached copy."""

    def read() -> FlagSet:
        return AppConfigFlagSource(
            application=application,
            environment=environment,
            profile=profile,
            ttl_seconds=MIN_POLL_INTERVAL_SECONDS,
            catalog=catalog,
            client=client,
        ).flags()

    return read


def _parse(raw: Any, catalog: Sequence[EndpointVariants]) -> FlagSet | str:
    try:
        return FlagSet.from_values(raw, catalog, partial=True)
    except FlagError as error:
        return f"flag document rejected: {error}"
