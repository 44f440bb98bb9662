"""The retraining tasks' services, built from the settings on a function's first call (never at import).

Every boto3 client is created here unless a test injects one; the running function keeps its services
for later invocations of the same container. The lock is the rollout's (``lambdas.locking.lock``) on
the same table, under the key ``retraining#<family>``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock
from lambdas.retraining.settings import RetrainingSettings, load_retraining_settings
from lambdas.retraining.state import RetrainingState
from lambdas.shared.aws_clients import CLIENT_CONFIG, ReadsObjects, throttling_as_retryable
from lambdas.shared.container import ContainerServices

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCK_KEY_PREFIX = "retraining#"


class RunsJobs(Protocol):
    """The SageMaker calls of the retraining tasks (the sagemaker stubs are not installed)."""

    def create_processing_job(self, **request: Any) -> Any: ...
    def describe_processing_job(self, *, ProcessingJobName: str) -> Any: ...
    def create_training_job(self, **request: Any) -> Any: ...
    def describe_training_job(self, *, TrainingJobName: str) -> Any: ...
    def create_model_package(self, **request: Any) -> Any: ...


class ArtifactMissing(Exception):
    """An output a finished job should have left in S3 is not there."""


def lock_key(family: str) -> str:
    return f"{LOCK_KEY_PREFIX}{family}"


@dataclass(frozen=True)
class RetrainingServices:
    settings: RetrainingSettings
    sagemaker: RunsJobs
    s3: ReadsObjects
    lock: EndpointLock

    def hold_lock(self, state: RetrainingState) -> None:
        """Renew the family's lease (a long job outlasts one); NotLockHolder if this run lost it."""
        self.lock.renew(lock_key(state.model_family), state.execution_id)

    def read_json(self, uri: str) -> Any:
        """The JSON document at an s3:// URI; ArtifactMissing when there is none."""
        url = urlparse(uri)
        try:
            body = self.s3.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ArtifactMissing(f"{uri} is missing") from None
            raise
        return json.loads(body)


def already_exists(error: ClientError) -> bool:
    """SageMaker's answer to a job name in use: a retried start task created it the first time."""
    detail = error.response.get("Error", {})
    message = str(detail.get("Message", "")).lower()
    return detail.get("Code") == "ResourceInUse" or (
        detail.get("Code") == "ValidationException" and ("already exist" in message or "unique" in message)
    )


def build_services(
    settings: RetrainingSettings,
    *,
    sagemaker: RunsJobs | None = None,
    dynamodb: DynamoDBClient | None = None,
    s3: ReadsObjects | None = None,
    clock: Callable[[], float] = time.time,
) -> RetrainingServices:
    table = DynamoDBLockTable(
        client=dynamodb or boto3.client("dynamodb", config=CLIENT_CONFIG), table_name=settings.lock_table
    )
    return RetrainingServices(
        settings=settings,
        sagemaker=sagemaker or cast("RunsJobs", boto3.client("sagemaker", config=CLIENT_CONFIG)),
        s3=s3 or cast("ReadsObjects", boto3.client("s3", config=CLIENT_CONFIG)),
        lock=EndpointLock(table, clock=clock),
    )


_container = ContainerServices(lambda: build_services(load_retraining_settings(os.environ)))
use = _container.use
services = _container.get


def run_task(
    event: Any, task: Callable[[RetrainingState, RetrainingServices], RetrainingState]
) -> dict[str, Any]:
    """Parse the state, run one task, return the new state as the state machine's JSON."""
    state = RetrainingState.model_validate(event)
    with throttling_as_retryable():
        return task(state, services()).dump()
