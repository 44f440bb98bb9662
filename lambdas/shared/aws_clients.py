"""How the functions' boto3 clients are configured, and which of their errors the state machines retry.

Only configuration and protocols: no client is created here (each adapter creates its own on first use).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import ClientError

__all__ = [
    "CLIENT_CONFIG",
    "THROTTLING_CODES",
    "PublishesNotifications",
    "PutsEvents",
    "ReadsObjects",
    "ThrottlingException",
    "throttling_as_retryable",
]

# Throttling is retried by botocore first, then by the state machine, which matches the error by name.
CLIENT_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=20)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        # SNS (and other services encrypting with a customer key) passing on KMS's throttling.
        "KMSThrottling",
        "KMSThrottlingException",
    }
)


class ThrottlingException(Exception):
    """An AWS API throttled the task beyond botocore's retries; the state machine retries it by this name.

    botocore raises most throttling as a plain ClientError, which Step Functions would only see as
    "ClientError": indistinguishable from a real failure.
    """


@contextmanager
def throttling_as_retryable() -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in THROTTLING_CODES:
            raise ThrottlingException(f"{code}: {error}") from error
        raise


class ReadsObjects(Protocol):
    """The S3 calls of the gates (boto3's `s3` client has them; its stubs are not installed)."""

    def get_object(self, *, Bucket: str, Key: str) -> Any: ...
    def list_objects_v2(self, **request: Any) -> Any: ...


class PutsEvents(Protocol):
    """EventBridge PutEvents (boto3's `events` client has it)."""

    def put_events(self, *, Entries: Any) -> Any: ...


class PublishesNotifications(Protocol):
    """SNS Publish (boto3's `sns` client has it; its stubs are not installed)."""

    def publish(self, *, TopicArn: str, Subject: str, Message: str) -> Any: ...
