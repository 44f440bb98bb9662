"""The endpoint's models served by real inference-server processes, one per model, from moto's S3."""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


# A container's environment variables, sorted.
Environment = tuple[tuple[str, str], ...]
# What a kept server serves: the artifact's content (its S3 ETag), the container's environment, and the
# number of gunicorn workers.
ServedModel = tuple[str, Environment, int]


class KeptServers:
    """Servers whose runtime has closed, kept for the next runtime that serves the same model with the same
    container (`model_servers_kept`). A server serves one runtime at a time, as each of SageMaker's
    deployments gets containers of its own; past `capacity` idle servers, the longest idle is stopped."""

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory = directory
        self.capacity = capacity
        self._idle: OrderedDict[tuple[ServedModel, int], LocalServer] = OrderedDict()
        self._lock = threading.Lock()
        self.started = 0

    def take(self, model: ServedModel) -> LocalServer | None:
        with self._lock:
            for key in [key for key in self._idle if key[0] == model]:
                server = self._idle.pop(key)
                if server.running:
                    return server
                server.stop()
        return None

    def give_back(self, model: ServedModel, server: LocalServer) -> None:
        if not server.running:
            server.stop()
            return
        with self._lock:
            self._idle[(model, id(server))] = server
            evicted = [self._idle.popitem(last=False)[1] for _ in range(len(self._idle) - self.capacity)]
        for idle in evicted:
            idle.stop()

    def new_model_dir(self) -> Path:
        with self._lock:
            self.started += 1
            return self.directory / f"model-{self.started}"

    def stop_all(self) -> None:
        with self._lock:
            servers, self._idle = list(self._idle.values()), OrderedDict()
        for server in servers:
            server.stop()


# The open `model_servers_kept`, if any (a list: no module global is rebound).
_keepers: list[KeptServers] = []


@contextmanager
def model_servers_kept(capacity: int = 6) -> Iterator[KeptServers]:
    """While open, a runtime that closes keeps its inference servers running, and a later runtime that
    serves the same artifact content with the same container environment takes one instead of starting
    another (a server starts in about 2.5 CPU-seconds: Python twice, scikit-learn and SciPy, the model).
    For test sessions, whose rollouts deploy the same few models again and again."""
    if _keepers:  # already open further up: that one keeps them
        yield _keepers[0]
        return
    directory = Path(tempfile.mkdtemp(prefix="kept-model-servers-"))
    kept = KeptServers(directory, capacity)
    _keepers.append(kept)
    try:
        yield kept
    finally:
        _keepers.clear()
        kept.stop_all()
        shutil.rmtree(directory, ignore_errors=True)


class ModelServers:
    """One inference server per model artifact, started on first use and kept until `stop_all` (or, with
    `model_servers_kept` open, handed on to the next runtime that serves the same model)."""

    def __init__(self, work_dir: Path, *, workers: int, ready_timeout_s: float) -> None:
        self.work_dir = work_dir
        self.workers = workers
        self.ready_timeout_s = ready_timeout_s
        # By artifact and container environment: two models of one artifact in different environments
        # are two containers.
        self._servers: dict[tuple[Artifact, Environment], LocalServer] = {}
        # The keeper each server goes back to at `stop_all`, where one was open at its start.
        self._kept: dict[tuple[Artifact, Environment], KeptServers] = {}
        self._lock = threading.Lock()

    def running(self) -> dict[str, LocalServer]:
        """The servers started so far, by artifact URL (the last started, where one artifact has several)."""
        with self._lock:
            return {artifact.url: server for (artifact, _), server in self._servers.items()}

    def server_for(self, account_id: str, region: str, model_name: str) -> tuple[LocalServer, Artifact]:
        """The server of the model's artifact in its container's environment, started if need be (under a
        lock: one start per artifact and environment)."""
        container = _primary_container(account_id, region, model_name)
        artifact = _artifact(account_id, model_name, container)
        environment: Environment = tuple(
            sorted((str(k), str(v)) for k, v in (container.get("Environment") or {}).items())
        )
        with self._lock:
            server = self._servers.get((artifact, environment))
            if server is None:
                server = self._start(account_id, artifact, environment)
                self._servers[(artifact, environment)] = server
        return server, artifact

    def _served_model(self, artifact: Artifact, environment: Environment) -> ServedModel:
        return (artifact.etag, environment, self.workers)

    def _start(self, account_id: str, artifact: Artifact, environment: Environment) -> LocalServer:
        kept = _keepers[0] if _keepers else None
        if kept is None:
            return self._start_server(
                account_id, artifact, environment, self.work_dir / f"model-{len(self._servers) + 1}"
            )
        self._kept[(artifact, environment)] = kept
        server = kept.take(self._served_model(artifact, environment))
        if server is not None:
            logger.info("serving %s on a kept inference server (log %s)", artifact.url, server.log_path)
            return server
        return self._start_server(account_id, artifact, environment, kept.new_model_dir())

    def _start_server(
        self, account_id: str, artifact: Artifact, environment: Environment, model_dir: Path
    ) -> LocalServer:
        model_dir.mkdir(parents=True)
        data = _s3_object(account_id, artifact)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                archive.extractall(model_dir, filter="data")
        except tarfile.TarError as error:
            raise SageMakerValidationError(
                f"{artifact.url} is not a readable model.tar.gz: {error}"
            ) from None
        log_path = model_dir.with_suffix(".log")
        server = LocalServer(model_dir, workers=self.workers, extra_env=dict(environment), log_path=log_path)
        logger.info("starting the inference server of %s (log %s)", artifact.url, log_path)
        return server.start(ready_timeout_s=self.ready_timeout_s)

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, {}
            kept, self._kept = self._kept, {}
        for (artifact, environment), server in servers.items():
            keeper = kept.get((artifact, environment))
            if keeper is not None:
                keeper.give_back(self._served_model(artifact, environment), server)
            else:
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
