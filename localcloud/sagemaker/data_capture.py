"""Data capture: the endpoint's requests and responses written to S3 in SageMaker's JSON Lines format."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

from moto.s3.models import s3_backends

from localcloud.sagemaker.endpoints import PARTITION, CaptureSettings

logger = logging.getLogger(__name__)


@dataclass
class CaptureBuffer:
    bucket: str
    key_prefix: str
    first_time: float
    lines: list[str] = field(default_factory=list)


class CaptureWriter:
    """Captured lines per (destination, endpoint, variant, hour), written to moto's S3 as JSON-lines files."""

    def __init__(self, flush_seconds: float, new_id: Callable[[], uuid.UUID]) -> None:
        self.flush_seconds = flush_seconds
        self._new_id = new_id
        self._buffers: dict[tuple[str, str, str, str, str], CaptureBuffer] = {}
        self._lock = threading.Lock()

    def add(
        self,
        account_id: str,
        settings: CaptureSettings,
        *,
        endpoint: str,
        variant: str,
        when: float,
        line: str,
    ) -> None:
        url = urlparse(settings.destination)
        hour = datetime.fromtimestamp(when, UTC).strftime("%Y/%m/%d/%H")
        folder = "/".join(part for part in (url.path.strip("/"), endpoint, variant, hour) if part)
        key = (account_id, url.netloc, endpoint, variant, folder)
        with self._lock:
            # A newer hour, or a file open long enough on the clock, closes the variant's older files.
            for other_key, other in list(self._buffers.items()):
                same_variant = other_key[:4] == key[:4]
                if same_variant and (other_key != key or when - other.first_time >= self.flush_seconds):
                    self._write(other_key[0], self._buffers.pop(other_key))
            buffer = self._buffers.setdefault(key, CaptureBuffer(url.netloc, folder, when))
            buffer.lines.append(line)

    def flush(self) -> None:
        with self._lock:
            buffers, self._buffers = self._buffers, {}
            for key, buffer in buffers.items():
                self._write(key[0], buffer)

    def _write(self, account_id: str, buffer: CaptureBuffer) -> None:
        started = datetime.fromtimestamp(buffer.first_time, UTC)
        name = f"{started:%M-%S}-{started.microsecond // 1000:03d}-{self._new_id()}"
        key = f"{buffer.key_prefix}/{name}.jsonl"
        body = ("\n".join(buffer.lines) + "\n").encode()
        try:
            s3_backends[account_id][PARTITION].put_object(buffer.bucket, key, body)
        except Exception as error:  # a missing bucket must not fail the invocations already answered
            logger.error("data capture to s3://%s/%s failed: %s", buffer.bucket, key, error)
