"""The drift checks' inputs in S3: the gate files beside a model artifact, and the captured requests.

Two readers share this: the rollout's pre-traffic gates (``lambdas/rollout/tasks/gates.py``), which
check a candidate before it takes traffic, and the drift monitor
(``lambdas/retraining/aws/drift_monitor.py``), which watches the champion's live inputs afterwards.
Both must find the same files and read the same captured records, or the two would judge drift on
different data.

* Gate files live beside a model artifact: ``s3://<bucket>/<dir>/model.tar.gz`` has them under
  ``s3://<bucket>/<dir>/gates/`` (``pipelines/gate_files.py`` writes them there).
* Captured requests are SageMaker data-capture JSON lines under the endpoint config's capture
  destination, ``<DestinationS3Uri>/<endpoint name>/<variant>/yyyy/mm/dd/hh/...``; the newest
  ``CAPTURE_FILES_MAX`` files are read (``newest_objects``), and the records are taken from each
  captured ``{"instances": [{feature: value}]}`` request (anything else: CSV, arrays, broken lines, is
  skipped).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from math import isfinite
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from lambdas.gates import CapturedFeatures, TrainingBaseline
from lambdas.shared.aws_clients import ReadsObjects
from lambdas.shared.endpoint_config import DescribesEndpointConfigs, read_live_config

__all__ = [
    "BASELINE_FILE",
    "CAPTURE_FILES_MAX",
    "GATES_FOLDER",
    "GateFolder",
    "GateInputMissing",
    "captured_features",
    "captured_records",
    "gates_folder_of_artifact",
    "gates_folder_of_package",
    "newest_objects",
    "read_gate_json",
    "records_captured_under",
    "records_of_capture_line",
]

GATES_FOLDER = "gates"
BASELINE_FILE = "baseline.json"
CAPTURE_FILES_MAX = 20
"""Newest capture files read: enough requests for the drift gate's minimum, bounded in time."""

GateFolder = tuple[str, str]
"""(bucket, key prefix ending in ``gates/``)."""


class GateInputMissing(ValueError):
    """A file the gates need is not where the package says its artifacts are."""


def gates_folder_of_artifact(artifact: str, owner: str) -> GateFolder:
    """(bucket, key prefix) of the gate files beside ``artifact`` (an ``s3://`` model data URL).

    ``owner`` names what the artifact belongs to (a package ARN, a model) in the error when the URL is
    not an S3 object.
    """
    url = urlparse(artifact)
    if url.scheme != "s3" or not url.netloc or not url.path.strip("/"):
        raise GateInputMissing(
            f"{owner} names no S3 model artifact ({artifact!r}), so its gate files cannot be found"
        )
    folder = url.path.lstrip("/").rsplit("/", 1)[0] if "/" in url.path.strip("/") else ""
    prefix = f"{folder}/{GATES_FOLDER}/" if folder else f"{GATES_FOLDER}/"
    return url.netloc, prefix


def gates_folder_of_package(package: Mapping[str, Any]) -> GateFolder:
    """(bucket, key prefix) of a model package's gate files, beside its first container's artifact."""
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    artifact = str(containers[0].get("ModelDataUrl") or "")
    return gates_folder_of_artifact(artifact, f"model package {package.get('ModelPackageArn')}")


def read_gate_json(s3: ReadsObjects, folder: GateFolder, name: str) -> Any:
    """One gate file, parsed; GateInputMissing when it is not there."""
    bucket, prefix = folder
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise GateInputMissing(f"s3://{bucket}/{prefix}{name} is missing") from None
        raise
    return json.loads(body)


def captured_records(
    sagemaker: DescribesEndpointConfigs,
    s3: ReadsObjects,
    *,
    endpoint_name: str,
    variant: str,
    files_max: int = CAPTURE_FILES_MAX,
) -> Iterator[dict[str, Any]]:
    """The records of the newest captured requests of one variant; none when the endpoint captures none.

    The capture destination is the live endpoint config's, so it follows the configs a rollout creates.
    """
    capture = read_live_config(sagemaker, endpoint_name).carried.get("DataCaptureConfig")
    if capture:
        yield from records_captured_under(
            capture, s3, endpoint_name=endpoint_name, variant=variant, files_max=files_max
        )


def records_captured_under(
    capture: Mapping[str, Any],
    s3: ReadsObjects,
    *,
    endpoint_name: str,
    variant: str,
    files_max: int = CAPTURE_FILES_MAX,
) -> Iterator[dict[str, Any]]:
    """The records of the newest ``files_max`` capture files under an endpoint config's DataCaptureConfig."""
    url = urlparse(str(capture["DestinationS3Uri"]))
    prefix = f"{url.path.strip('/')}/{endpoint_name}/{variant}/".lstrip("/")
    for item in newest_objects(s3, url.netloc, prefix, files_max):
        body = s3.get_object(Bucket=url.netloc, Key=item["Key"])["Body"].read().decode()
        for line in body.splitlines():
            yield from records_of_capture_line(line)


def newest_objects(s3: ReadsObjects, bucket: str, prefix: str, count: int) -> list[dict[str, Any]]:
    """The ``count`` newest objects under ``prefix`` (ListObjectsV2 items), newest first.

    S3 lists keys in name order only, a page of 1000 at a time, so the first page of a long-lived
    capture prefix holds the *oldest* files. Data capture names its files by time
    (``.../<variant>/yyyy/mm/dd/hh/<file>``), so the folders are walked one level at a time from the
    last name down, and only as far as ``count`` files need: a handful of calls however long the
    endpoint has been capturing.
    """
    files, folders = _list_level(s3, bucket, prefix)
    found: list[dict[str, Any]] = []
    for folder in sorted(folders, reverse=True):
        if len(found) >= count:
            break
        found.extend(newest_objects(s3, bucket, folder, count - len(found)))
    return sorted([*files, *found], key=lambda item: (item["LastModified"], item["Key"]), reverse=True)[
        :count
    ]


def _list_level(s3: ReadsObjects, bucket: str, prefix: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects directly under ``prefix`` and its sub-folders (every page)."""
    files: list[dict[str, Any]] = []
    folders: list[str] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    while True:
        page = s3.list_objects_v2(**request)
        files.extend(page.get("Contents") or [])
        folders.extend(str(common["Prefix"]) for common in page.get("CommonPrefixes") or [])
        if not page.get("IsTruncated"):
            return files, folders
        request["ContinuationToken"] = page["NextContinuationToken"]


def records_of_capture_line(line: str) -> Iterator[dict[str, Any]]:
    """The records of one captured request; anything else (CSV, arrays, broken lines) is skipped."""
    try:
        captured = json.loads(line)["captureData"]["endpointInput"]
        data = captured["data"]
        if captured.get("encoding") == "BASE64":
            data = base64.b64decode(data).decode()
        instances = json.loads(data).get("instances", [])
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    yield from (record for record in instances if isinstance(record, dict))


def captured_features(records: Iterable[Mapping[str, Any]], baseline: TrainingBaseline) -> CapturedFeatures:
    """The baseline's features as columns: only records with a finite number for every one of them."""
    features = sorted(baseline.features)
    rows = [row for row in records if all(_number(row.get(f)) for f in features)]
    return CapturedFeatures(features={f: tuple(float(row[f]) for row in rows) for f in features})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)
