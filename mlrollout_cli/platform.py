"""One deployed environment as the command sees it: its resources (the operations parameter), its
endpoints' settings (their parameters) and AWS clients on the person's credentials.

`AWS_ENDPOINT_URL` (or `--endpoint-url`) points every client at another endpoint, such as the local cloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from pydantic import ValidationError

from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock, Lease
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.ledger import Ledger
from lambdas.rollout.settings import RolloutEndpoint
from lambdas.shared.endpoint_store import SettingsCatalog, endpoint_settings_path
from lambdas.shared.operations import OperationsDocument, environment_prefix, operations_parameter_name
from lambdas.shared.settings import SettingsError
from lambdas.shared.validation import describe_problems
from mlrollout_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["Platform", "aws_errors", "connect"]

CLIENT_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS's failures as the command's errors: what went wrong in words, and exit code 4."""
    try:
        yield
    except NoCredentialsError:
        raise CliError(
            "no AWS credentials: set AWS_PROFILE or pass --profile, or export AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (for the local cloud, --local)",
            ExitCode.AWS,
        ) from None
    except NoRegionError:
        raise CliError("no AWS region: pass --region or set AWS_REGION", ExitCode.AWS) from None
    except EndpointConnectionError as error:
        raise CliError(f"cannot reach AWS: {error}", ExitCode.AWS) from None
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise CliError(
            f"AWS refused {error.operation_name}: {detail.get('Code')}: {detail.get('Message')}", ExitCode.AWS
        ) from None
    except BotoCoreError as error:
        raise CliError(f"AWS call failed: {error}", ExitCode.AWS) from None


@dataclass(frozen=True)
class Platform:
    environment: str
    prefix: str
    resources: OperationsDocument
    endpoints: Mapping[str, RolloutEndpoint]
    session: boto3.Session
    endpoint_url: str | None

    def client(self, service: str) -> Any:
        # A service named at run time: the stubs type each service's client by its literal name.
        return self.session.client(service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)  # type: ignore[call-overload]

    def endpoint(self, name: str) -> RolloutEndpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise CliError(
                f"unknown endpoint {name!r}; environment {self.environment} has {sorted(self.endpoints)}",
                ExitCode.NOT_FOUND,
            ) from None
        except SettingsError as error:
            raise CliError(str(error), ExitCode.AWS) from None

    def ledger(self) -> Ledger:
        return Ledger(DynamoDBLedgerStore(client=self._dynamodb(), table_name=self.resources.ledger_table))

    def lease(self, endpoint: str) -> Lease | None:
        """The live lease on the endpoint: the rollout running there, if any."""
        table = DynamoDBLockTable(client=self._dynamodb(), table_name=self.resources.lock_table)
        return EndpointLock(table).live_lease(self.endpoint(endpoint).endpoint_name)

    def _dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client


def connect(
    environment: str, *, profile: str | None, region: str | None, endpoint_url: str | None
) -> Platform:
    """The environment as deployed in the account and region the credentials reach."""
    prefix = environment_prefix(environment)
    try:
        session = boto3.Session(profile_name=profile or None, region_name=region or None)
    except ProfileNotFound as error:
        raise CliError(str(error), ExitCode.AWS) from None
    if session.get_credentials() is None:
        with aws_errors():
            raise NoCredentialsError()
    if session.region_name is None:
        with aws_errors():
            raise NoRegionError()
    ssm = session.client("ssm", endpoint_url=endpoint_url, config=CLIENT_CONFIG)
    name = operations_parameter_name(prefix)
    with aws_errors():
        try:
            value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            raise CliError(
                f"environment {environment!r} is not deployed in {session.region_name}: no parameter {name} "
                "(deploy it with `cdk deploy --all -c env=NAME`, or pass --env, --region, --profile)",
                ExitCode.AWS,
            ) from None
    try:
        resources = OperationsDocument.model_validate(json.loads(value))
    except (ValueError, ValidationError) as error:
        problem = describe_problems(error) if isinstance(error, ValidationError) else str(error)
        raise CliError(f"{name} cannot be read: {problem}", ExitCode.AWS) from None
    endpoints = SettingsCatalog(RolloutEndpoint, endpoint_settings_path(prefix), client=ssm)
    return Platform(environment, prefix, resources, endpoints, session, endpoint_url)
