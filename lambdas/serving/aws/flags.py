"""The flags through AppConfigData, via Powertools' AppConfigProvider (its cache is the flags TTL).

AppConfigData returns a native feature-flag profile in its values form; `FlagSet.from_values` parses
it (Powertools' FeatureFlags utility cannot read that format).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import AppConfigProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from lambdas.flags import EndpointVariants, FlagError, FlagSet
from lambdas.serving.ports import FlagsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient

# AppConfigData's lower bound for a session's poll interval.
MIN_POLL_INTERVAL_SECONDS = 15


class AppConfigFlagSource:
    def __init__(
        self,
        *,
        application: str,
        environment: str,
        profile: str,
        ttl_seconds: int,
        catalog: Sequence[EndpointVariants],
        client: AppConfigDataClient | None = None,
    ) -> None:
        self._application = application
        self._environment = environment
        self._profile = profile
        self._ttl_seconds = ttl_seconds
        self._catalog = tuple(catalog)
        self._client = client
        self._provider: AppConfigProvider | None = None
        # Parsed once per fetched document: the provider hands back the same object until its TTL.
        self._parsed: tuple[Any, FlagSet] | None = None

    def flags(self) -> FlagSet:
        raw = self._fetch()
        if self._parsed is not None and self._parsed[0] is raw:
            return self._parsed[1]
        try:
            flags = FlagSet.from_values(raw, self._catalog)
        except FlagError as error:
            raise FlagsUnavailable(f"flag document rejected: {error}") from error
        self._parsed = (raw, flags)
        return flags

    def _fetch(self) -> Any:
        try:
            return self._get_provider().get(
                self._profile,
                max_age=self._ttl_seconds,
                transform="json",
                # AppConfigData refuses polls sooner than the session's interval (default 60 s) with
                # "Request too early", so the session is opened with the TTL as its interval.
                RequiredMinimumPollIntervalInSeconds=max(MIN_POLL_INTERVAL_SECONDS, self._ttl_seconds),
            )
        except (GetParameterError, TransformParameterError) as error:
            raise FlagsUnavailable(f"AppConfig {self._application}/{self._profile}: {error}") from error

    def _get_provider(self) -> AppConfigProvider:
        # Created on first use: the provider creates its boto3 client, which moto must see in tests.
        if self._provider is None:
            self._provider = AppConfigProvider(
                environment=self._environment, application=self._application, boto3_client=self._client
            )
        return self._provider
