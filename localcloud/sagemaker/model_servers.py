"""The endpoint's models served by real inference-server processes, one per model, from moto's S3."""

from __future__ import annotations

import io
import logging
import tarfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends

from containers.inference.local_server import LocalServer
from localcloud.sagemaker.endpoints import PARTITION
from localcloud.sagemaker.exceptions import SageMakerValidationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Artifact:
    url: str
    bucket: str
    key: str
    etag: str


class ModelServers:
    """One inference server per model artifact, started on first use and kept until `stop_all`."""

    def __init__(self, work_dir: Path, *, workers: int, ready_timeout_s: float) -> None:
        self.work_dir = work_dir
        self.workers = workers
        self.ready_timeout_s = ready_timeout_s
        self._servers: dict[Artifact, LocalServer] = {}
        self._lock = threading.Lock()

    def running(self) -> dict[str, LocalServer]:
        """The servers started so far, by artifact URL."""
        with self._lock:
            return {artifact.url: server for artifact, server in self._servers.items()}

    def server_for(self, account_id: str, region: str, model_name: str) -> tuple[LocalServer, Artifact]:
        """The server of the model's artifact, started if need be (under a lock: one start per artifact)."""
        container = _primary_container(account_id, region, model_name)
        artifact = _artifact(account_id, model_name, container)
        with self._lock:
            server = self._servers.get(artifact)
            if server is None:
                server = self._start(account_id, artifact, container)
                self._servers[artifact] = server
        return server, artifact

    def _start(self, account_id: str, artifact: Artifact, container: Mapping[str, Any]) -> LocalServer:
        index = len(self._servers) + 1
        model_dir = self.work_dir / f"model-{index}"
        model_dir.mkdir(parents=True)
        data = _s3_object(account_id, artifact)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                archive.extractall(model_dir, filter="data")
        except tarfile.TarError as error:
            raise SageMakerValidationError(
                f"{artifact.url} is not a readable model.tar.gz: {error}"
            ) from None
        environment = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        log_path = self.work_dir / f"model-{index}.log"
        server = LocalServer(model_dir, workers=self.workers, extra_env=environment, log_path=log_path)
        logger.info("starting the inference server of %s (log %s)", artifact.url, log_path)
        return server.start(ready_timeout_s=self.ready_timeout_s)

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()


def _primary_container(account_id: str, region: str, model_name: str) -> Mapping[str, Any]:
    model = sagemaker_backends[account_id][region]._models.get(model_name)
    if model is None:
        raise SageMakerValidationError(f"Model {model_name} of account {account_id} not found.")
    container: Mapping[str, Any] = model.primary_container or {}
    if not container and model.containers:
        container = model.containers[0]
    package = container.get("ModelPackageName")
    if package and not container.get("ModelDataUrl"):
        # A model created from a registered package version runs that version's container.
        return {
            **_package_container(account_id, region, str(package)),
            **_without(container, "ModelPackageName"),
        }
    return container


def _package_container(account_id: str, region: str, package: str) -> Mapping[str, Any]:
    backend = sagemaker_backends[account_id][region]
    found = backend.model_packages.get(backend.model_package_name_mapping.get(package, package))
    if found is None:
        raise SageMakerValidationError(f"Model package {package} of account {account_id} not found.")
    containers = (found.inference_specification or {}).get("Containers") or []
    if not containers:
        raise SageMakerValidationError(f"Model package {package} has no inference containers.")
    return dict(containers[0])


def _without(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _artifact(account_id: str, model_name: str, container: Mapping[str, Any]) -> Artifact:
    url = str(container.get("ModelDataUrl") or "")
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise SageMakerValidationError(
            f"Model {model_name} has no s3:// ModelDataUrl ({url or 'none'}): the local runtime serves "
            "model.tar.gz artifacts from S3 only."
        )
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    stored = _s3_key(account_id, bucket, key, url)
    return Artifact(url=url, bucket=bucket, key=key, etag=str(stored.etag))


def _s3_key(account_id: str, bucket: str, key: str, url: str) -> Any:
    try:
        stored = s3_backends[account_id][PARTITION].get_object(bucket, key)
    except Exception as error:  # moto's MissingBucket / MissingKey and kin
        raise SageMakerValidationError(f"Could not read the model artifact {url}: {error}") from None
    if stored is None:
        raise SageMakerValidationError(f"Could not read the model artifact {url}: no such object.")
    return stored


def _s3_object(account_id: str, artifact: Artifact) -> bytes:
    value: bytes = _s3_key(account_id, artifact.bucket, artifact.key, artifact.url).value
    return value
