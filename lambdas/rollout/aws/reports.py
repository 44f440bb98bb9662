"""A rollout's report, written to the registry's bucket when it ends: the page `mlrollout report` renders
from the same ledger (lambdas/rollout/report.py), under ``rollout-reports/<endpoint>/<execution>.html``.

The package's metadata and the notification link to it. A report that cannot be written never holds up
a promotion or a rollback: the caller records that it is missing and goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.rollout.ledger import LedgerEntry
from lambdas.rollout.report import REPORT_PREFIX, report_html

__all__ = ["REPORT_PREFIX", "ReportLink", "RolloutReports", "WritesObjects", "report_key"]


class WritesObjects(Protocol):
    """S3 PutObject (boto3's `s3` client has it; its stubs are not installed)."""

    def put_object(self, **request: Any) -> Any: ...


def report_key(endpoint: str, rollout_id: str) -> str:
    """The object key: the execution's name (the last part of its ARN) under the endpoint's folder."""
    return f"{REPORT_PREFIX}{endpoint}/{rollout_id.rsplit(':', 1)[-1]}.html"


@dataclass(frozen=True, slots=True)
class ReportLink:
    bucket: str
    key: str
    region: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def console_url(self) -> str:
        return (
            f"https://{self.region}.console.aws.amazon.com/s3/object/{self.bucket}"
            f"?region={self.region}&prefix={quote(self.key, safe='')}"
        )


@dataclass(frozen=True, slots=True)
class RolloutReports:
    client: WritesObjects
    bucket: str
    region: str

    def write(self, endpoint: str, rollout_id: str, entries: Sequence[LedgerEntry]) -> ReportLink:
        """Render the ledger and put the page; the bucket's default key encrypts it (SSE-KMS)."""
        link = ReportLink(self.bucket, report_key(endpoint, rollout_id), self.region)
        self.client.put_object(
            Bucket=self.bucket,
            Key=link.key,
            Body=report_html(entries).encode(),
            ContentType="text/html; charset=utf-8",
        )
        return link


REPORT_ERRORS = (ClientError, BotoCoreError, ValueError)
"""What writing a report may raise: S3's refusals and failures, a ledger with nothing to report."""
