"""The jobs' S3 inputs and outputs, read and written through moto's S3 backend."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moto.s3.models import s3_backends
from moto.sagemaker.models import FakeTrainingJob
from moto.utilities.utils import get_partition

from localcloud.sagemaker.job_models import (
    JobFailedError,
)


def _s3(account_id: str, region: str) -> Any:
    return s3_backends[account_id][get_partition(region)]


def _split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise JobFailedError(f"ClientError: {uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def join_uri(uri: str, relative: str) -> str:
    return f"{uri.rstrip('/')}/{relative}"


def list_objects_under(account_id: str, region: str, uri: str) -> list[tuple[str, bytes]]:
    """Every object under the prefix: (path relative to the prefix's folder, body), in key order."""
    bucket_name, prefix = _split_uri(uri)
    backend = _s3(account_id, region)
    try:
        bucket = backend.get_bucket(bucket_name)
        keys, _, _, _ = backend.list_objects(bucket, prefix or None, None, None, None)
    except Exception as error:  # moto's MissingBucket and kin
        raise JobFailedError(f"ClientError: cannot read {uri}: {error}") from None
    folder = prefix[: prefix.rfind("/") + 1]
    found = []
    for key in sorted(keys, key=lambda k: k.name):
        if key.name.endswith("/"):
            continue  # a console "folder" marker, no data
        relative = key.name[len(folder) :]
        if any(part in {"", ".", ".."} for part in relative.split("/")):
            raise JobFailedError(f"ClientError: s3://{bucket_name}/{key.name} has no file path under {uri}")
        found.append((relative, bytes(key.value)))
    return found


def put_object_at(account_id: str, region: str, uri: str, body: bytes) -> None:
    bucket, key = _split_uri(uri)
    try:
        _s3(account_id, region).put_object(bucket, key, body)
    except Exception as error:  # moto's MissingBucket and kin
        raise JobFailedError(f"ClientError: cannot upload to {uri}: {error}") from None


def model_artifact_uri(record: FakeTrainingJob) -> str:
    return join_uri(
        str(record.output_data_config["S3OutputPath"]), f"{record.training_job_name}/output/model.tar.gz"
    )


def tar_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()
