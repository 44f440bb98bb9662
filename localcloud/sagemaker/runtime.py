"""SageMaker Runtime's InvokeEndpoint on moto, answered by real inference-server processes.

moto 5.2.5 answers InvokeEndpoint with canned results: it ignores the endpoint's variants, their
weights, `TargetVariant` and the model. `serve_endpoints` replaces moto's
`SageMakerRuntimeResponse.invoke_endpoint` while it is open (in-process calls under `mock_aws` and calls
through `moto.server.ThreadedMotoServer` in the same process both dispatch to it), and answers as an
endpoint does:

* **Routing.** The endpoint's *current* production variants and weights are moto's (`CurrentWeight`
  after CreateEndpoint, UpdateEndpointWeightsAndCapacities and the emulated UpdateEndpoint of
  `localcloud.sagemaker.control`); each variant's model is the one the endpoint's current config names.
  A request goes to one variant drawn with probability weight / sum of weights (an injectable
  `random.Random`), or to `TargetVariant`, which overrides the weights as the API reference says.
  A variant without a weight in moto's record takes the config's `InitialVariantWeight` (moto drops a 0)
  or SageMaker's default of 1.0.
* **Models.** A variant's model is moto's `PrimaryContainer.ModelDataUrl` (for a model created from a
  package version, `ModelPackageName`: the version's first inference container's), an `s3://` `model.tar.gz`
  read from moto's S3 and extracted into a temporary directory, served by the project's inference
  container (`containers.inference.local_server.LocalServer`: gunicorn on a free 127.0.0.1 port) with
  the container's `Environment`. One server per distinct artifact (URL and ETag), started on first use,
  reused, stopped when the context closes.
* **The request** goes to the container's `POST /invocations` with `Body`, `ContentType`, `Accept` and
  `CustomAttributes`; the answer is the container's body and content type, with
  `InvokedProductionVariant`. A 4xx or 5xx from the container is SageMaker's `ModelError` (HTTP 424) with
  `OriginalStatusCode`, `OriginalMessage` (the container's body) and `LogStreamArn`, its message worded as
  SageMaker words it (``Received client error (400) from primary with message "..." See ... for more
  information.``). A container that is not running or does not answer is a `ModelError` with original
  status 0, as SageMaker reports a container that timed out, naming the server's process, port and log.
* **Metrics**, per request and variant, into moto's CloudWatch (`AWS/SageMaker`, dimensions
  `EndpointName`, `VariantName`) at the request's time on the injectable clock: `Invocations` (1),
  `InvocationsPerInstance` (1 / the variant's instance count), `Invocation4XXErrors` and
  `Invocation5XXErrors` (1 or 0 each, by the container's status), `ModelLatency` (the container's round
  trip) and `OverheadLatency` (the rest of the request, less the one-off start of a server), both in
  microseconds measured on this machine. Requests refused before a variant is chosen (unknown endpoint
  or variant) publish nothing, as no variant served them.
* **Data capture**, when the endpoint's current config has `DataCaptureConfig` with capture enabled (the
  API's default): a request is captured with probability `InitialSamplingPercentage` (the same RNG), in
  the documented JSON-lines format (`captureData.endpointInput`/`endpointOutput` as `CaptureOptions`
  asks, each with `observedContentType`, `mode`, `data`, `encoding`; `eventMetadata` with `eventId`,
  `inferenceTime` and the request's `inferenceId`; `eventVersion` "0"). `data` is the payload as text
  with encoding `JSON` or `CSV` when its content type is listed in `CaptureContentTypeHeader`, else
  base64 (`BASE64`), as the API reference says. Files go to
  ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl`` in moto's S3: the
  lines of a variant are buffered and written as one file once `capture_flush_seconds` of the clock
  have passed since the file's first line, when the hour changes, on `flush_capture()` and on close
  (SageMaker, too, writes files every few minutes).
* **Shadow variants.** moto 5.2.5 drops `ShadowProductionVariants` from CreateEndpointConfig; while the
  context is open they are kept on moto's config (so DescribeEndpointConfig returns them, and their
  models must exist, as SageMaker checks). A request served by the production variants is copied to
  each shadow variant with probability shadow weight / sum of the production weights (capped at 1: a
  shadow weight equal to the production weight mirrors every request); the shadow's answer is
  discarded, its metrics and data capture are recorded under its own variant name, and its failures
  never reach the caller. SageMaker documents a shadow test's `SamplingPercentage` (the share of
  requests copied); that an endpoint config's shadow weight gives that share as the ratio above is this
  emulation's reading, not a documented formula.

Use it inside moto's mock (a `ThreadedMotoServer` of the same process shares it), or as a gap filler of
`localcloud.cloud.LocalCloud`::

    with mock_aws(), serve_endpoints(rng=random.Random(1), clock=clock) as runtime:
        ...  # CreateModel (ModelDataUrl in moto's S3), CreateEndpointConfig, CreateEndpoint, InvokeEndpoint
        runtime.flush_capture()  # the buffered data-capture files, now

    LocalCloud(..., gap_fillers={"sagemaker_runtime": lambda cloud: serve_endpoints(
        clock=cloud.clock.now if cloud.clock else time.time)})

Not faithful, and said here rather than faked:

* the endpoint's `EndpointStatus` is moto's; an endpoint that is not `InService` or is unknown is a
  `ValidationError` (``Endpoint <name> of account <account> not found.`` is SageMaker's wording for an
  unknown one). The wording for a not-in-service endpoint and for an unknown `TargetVariant` could not
  be checked against SageMaker: the code (`ValidationError`, HTTP 400) is the documented one;
* where SageMaker would have refused the endpoint before any request (a model without `ModelDataUrl`,
  an artifact missing from S3, a config deleted from moto) the request is a `ValidationError` naming the
  problem;
* the shadow copy is sent after the production answer is ready but before InvokeEndpoint returns, so
  the caller waits for it (SageMaker sends it asynchronously); one container process stands for all of
  a variant's instances; `LogStreamArn` names the stream SageMaker would use, but no log is written to
  moto's CloudWatch Logs (the container's log is the server's `log_path`, under the work directory);
* other InvokeEndpoint features (`TargetModel`, `TargetContainerHostname`, `InferenceComponentName`,
  sessions, explanations, InvokeEndpointAsync, streaming) are not emulated: they are refused with a
  `ValidationError` naming the header, rather than ignored;
* captures are of requests the container answered with a 2xx status.
"""

from __future__ import annotations

import base64
import functools
import http.client
import inspect
import io
import json
import logging
import random
import shutil
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import moto
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import ServiceException
from moto.s3.models import s3_backends
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from containers.inference.local_server import LOOPBACK, LocalServer

# The moto version whose methods this module replaces (shapes checked by `check_moto`).
MOTO_VERSION = "5.2.5"
NAMESPACE = "AWS/SageMaker"
PARTITION = "aws"
# SageMaker waits 60 s for a container's answer to /invocations.
CONTAINER_TIMEOUT_S = 60.0
DEFAULT_VARIANT_WEIGHT = 1.0
CAPTURE_EVENT_VERSION = "0"
HEADER_CONTENT_TYPE = "content-type"
HEADER_ACCEPT = "accept"
HEADER_CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
HEADER_TARGET_VARIANT = "x-amzn-sagemaker-target-variant"
HEADER_INFERENCE_ID = "x-amzn-sagemaker-inference-id"
# InvokeEndpoint inputs this emulation does not implement: refused by name rather than ignored.
UNSUPPORTED_HEADERS = {
    "x-amzn-sagemaker-target-model": "TargetModel",
    "x-amzn-sagemaker-target-container-hostname": "TargetContainerHostname",
    "x-amzn-sagemaker-inference-component": "InferenceComponentName",
    "x-amzn-sagemaker-session-id": "SessionId",
    "x-amzn-sagemaker-enable-explanations": "EnableExplanations",
}

logger = logging.getLogger("localcloud.sagemaker.runtime")

Clock = Callable[[], float]


class MotoChangedError(RuntimeError):
    """moto's methods are no longer the ones this module knows how to replace."""


class SageMakerValidationError(ServiceException):
    """SageMaker Runtime's `ValidationError` (HTTP 400), serialized by moto from the API model."""

    code = "ValidationError"


class SageMakerModelError(ServiceException):
    """SageMaker Runtime's `ModelError` (HTTP 424): the container answered 4xx/5xx, or did not answer."""

    code = "ModelError"

    def __init__(
        self, message: str, *, original_status_code: int, original_message: str, log_stream_arn: str
    ):
        super().__init__(message)
        # Read by moto's serializer under the ModelError shape's member names.
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn


def check_moto() -> None:
    """Fails loudly when moto's replaced methods changed shape, instead of routing nothing silently."""
    replaced: dict[str, Callable[..., Any]] = {
        "SageMakerRuntimeResponse.invoke_endpoint": SageMakerRuntimeResponse.invoke_endpoint,
        "SageMakerResponse.create_endpoint_config": SageMakerResponse.create_endpoint_config,
    }
    for name, method in replaced.items():
        parameters = tuple(inspect.signature(method).parameters)
        if parameters != ("self",):
            raise MotoChangedError(
                f"moto {moto.__version__}: {name}{parameters} is not the {name}(self) of moto "
                f"{MOTO_VERSION} that localcloud.sagemaker.runtime replaces; re-read moto's sagemaker code"
            )
    if "shadow_production_variants" in inspect.signature(FakeEndpointConfig.__init__).parameters:
        raise MotoChangedError(
            f"moto {moto.__version__} keeps ShadowProductionVariants itself: drop "
            "localcloud.sagemaker.runtime's recording of them"
        )


# --- what the endpoint runs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """A variant as the endpoint runs it now: its weight, model and instances."""

    name: str
    weight: float
    model_name: str
    instance_count: int


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """The endpoint config's DataCaptureConfig, as this emulation applies it."""

    destination: str
    sampling_percentage: float
    capture_input: bool
    capture_output: bool
    json_types: frozenset[str]
    csv_types: frozenset[str]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CaptureSettings | None:
        if not config or not config.get("EnableCapture", True):
            return None
        modes = {str(option.get("CaptureMode")) for option in config.get("CaptureOptions") or ()}
        headers = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=str(config["DestinationS3Uri"]),
            sampling_percentage=float(config.get("InitialSamplingPercentage", 0)),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            json_types=frozenset(t.lower() for t in headers.get("JsonContentTypes") or ()),
            csv_types=frozenset(t.lower() for t in headers.get("CsvContentTypes") or ()),
        )

    def encoded(self, payload: bytes, content_type: str) -> tuple[str, str]:
        """(data, encoding): text for the listed JSON and CSV types, else base64."""
        mime = content_type.split(";", 1)[0].strip().lower()
        for types, encoding in ((self.json_types, "JSON"), (self.csv_types, "CSV")):
            if mime in types:
                try:
                    return payload.decode("utf-8"), encoding
                except UnicodeDecodeError:
                    break  # not text after all: base64 keeps it intact
        return base64.b64encode(payload).decode("ascii"), "BASE64"


@dataclass(frozen=True, slots=True)
class EndpointView:
    """The endpoint's current state, read from moto's SageMaker backend for one request."""

    name: str
    account_id: str
    region: str
    config_name: str
    variants: tuple[Variant, ...]
    shadows: tuple[Variant, ...]
    capture: CaptureSettings | None

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def read_endpoint(account_id: str, region: str, name: str) -> EndpointView:
    backend = sagemaker_backends[account_id][region]
    endpoint: FakeEndpoint | None = backend.endpoints.get(name)
    if endpoint is None:
        raise SageMakerValidationError(f"Endpoint {name} of account {account_id} not found.")
    if endpoint.endpoint_status != "InService":
        raise SageMakerValidationError(
            f"Endpoint {name} of account {account_id} is {endpoint.endpoint_status}, not InService: "
            "it cannot be invoked."
        )
    config: FakeEndpointConfig | None = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    if config is None:
        raise SageMakerValidationError(
            f"Endpoint {name} runs endpoint config {endpoint.endpoint_config_name}, which moto no longer "
            "has: the local runtime reads each variant's model from it."
        )
    configured = {str(v["VariantName"]): v for v in config.production_variants}
    variants = []
    for running in endpoint.production_variants:
        variant_name = str(running["VariantName"])
        declared = configured.get(variant_name)
        if declared is None:
            raise SageMakerValidationError(
                f"Endpoint {name} runs variant {variant_name}, which its config "
                f"{config.endpoint_config_name} does not declare."
            )
        variants.append(_variant(running, declared))
    shadows = tuple(_variant({}, declared) for declared in shadow_variants_of(config))
    return EndpointView(
        name=name,
        account_id=account_id,
        region=region,
        config_name=config.endpoint_config_name,
        variants=tuple(variants),
        shadows=shadows,
        capture=CaptureSettings.from_config(config.data_capture_config),
    )


def _variant(running: Mapping[str, Any], declared: Mapping[str, Any]) -> Variant:
    # moto records no weight for an InitialVariantWeight of 0 and None after an update without one.
    weight = running.get("CurrentWeight")
    if weight is None:
        weight = declared.get("InitialVariantWeight", DEFAULT_VARIANT_WEIGHT)
    instances = running.get("CurrentInstanceCount") or declared.get("InitialInstanceCount") or 1
    return Variant(
        name=str(declared["VariantName"]),
        weight=float(weight),
        model_name=str(declared["ModelName"]),
        instance_count=int(instances),
    )


def shadow_variants_of(config: FakeEndpointConfig) -> list[dict[str, Any]]:
    """The shadow variants recorded on moto's config while `serve_endpoints` was open."""
    shadows: list[dict[str, Any]] = getattr(config, "shadow_production_variants", None) or []
    return shadows


# --- the servers ----------------------------------------------------------------------------------------


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


# --- one request ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    endpoint_name: str
    body: bytes
    headers: Mapping[str, str]  # lower-case names

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class ContainerAnswer:
    status: int
    body: bytes
    content_type: str
    custom_attributes: str | None
    model_latency_s: float
    startup_s: float


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


class LocalSageMakerRuntime:
    """Answers InvokeEndpoint for every endpoint in moto while `serve_endpoints` is open.

    `rng` draws the variant, the capture sample and the shadow copies (replace it to reseed);
    `clock` gives the time of metrics and captures (epoch seconds).
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        rng: random.Random | None = None,
        clock: Clock = time.time,
        server_workers: int = 1,
        ready_timeout_s: float = 60.0,
        capture_flush_seconds: float = 60.0,
    ) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.clock = clock
        self.servers = ModelServers(work_dir, workers=server_workers, ready_timeout_s=ready_timeout_s)
        self.capture = CaptureWriter(capture_flush_seconds, self._new_id)
        self._rng_lock = threading.Lock()

    def flush_capture(self) -> None:
        """Write every buffered data-capture file to S3 now."""
        self.capture.flush()

    def close(self) -> None:
        try:
            self.capture.flush()
        finally:
            self.servers.stop_all()

    # The whole InvokeEndpoint: what moto's response method returns.
    def invoke(self, account_id: str, region: str, request: Request) -> TYPE_RESPONSE:
        arrived = time.perf_counter()
        when = self.clock()
        for header, parameter in UNSUPPORTED_HEADERS.items():
            if request.header(header) is not None:
                raise SageMakerValidationError(
                    f"{parameter} is not supported by the local SageMaker runtime."
                )
        endpoint = read_endpoint(account_id, region, request.endpoint_name)
        variant = self._choose(endpoint, request.header(HEADER_TARGET_VARIANT))
        try:
            answer = self._call(endpoint, variant, request)
        except SageMakerModelError:
            self._publish(endpoint, variant, when, status=500, model_latency_s=0.0, overhead_s=0.0)
            raise
        overhead = time.perf_counter() - arrived - answer.model_latency_s - answer.startup_s
        self._publish(
            endpoint,
            variant,
            when,
            status=answer.status,
            model_latency_s=answer.model_latency_s,
            overhead_s=overhead,
        )
        self._maybe_capture(endpoint, variant, request, answer, when)
        if answer.status >= 400:
            raise self._model_error(endpoint, variant, answer)
        for shadow in endpoint.shadows:
            self._mirror(endpoint, shadow, request, when)
        headers = {"Content-Type": answer.content_type, "x-Amzn-Invoked-Production-Variant": variant.name}
        if answer.custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = answer.custom_attributes
        return 200, headers, answer.body

    def _choose(self, endpoint: EndpointView, target: str | None) -> Variant:
        if target is not None:
            chosen = endpoint.variant(target)
            if chosen is None:
                names = ", ".join(v.name for v in endpoint.variants)
                raise SageMakerValidationError(
                    f'The variant "{target}" is not present within endpoint {endpoint.name} (its config '
                    f"{endpoint.config_name} has: {names})."
                )
            return chosen
        weighted = [v for v in endpoint.variants if v.weight > 0]
        if not weighted:
            raise SageMakerValidationError(
                f"No variant of endpoint {endpoint.name} has a positive weight: send a TargetVariant."
            )
        with self._rng_lock:
            return self.rng.choices(weighted, weights=[v.weight for v in weighted])[0]

    def _new_id(self) -> uuid.UUID:
        """A version-4 UUID from the runtime's generator: seeded runs name the same events and files."""
        with self._rng_lock:
            return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _chance(self, percentage: float) -> bool:
        with self._rng_lock:
            return self.rng.random() * 100.0 < percentage

    def _call(self, endpoint: EndpointView, variant: Variant, request: Request) -> ContainerAnswer:
        started = time.perf_counter()
        server, artifact = self.servers.server_for(endpoint.account_id, endpoint.region, variant.model_name)
        startup = time.perf_counter() - started
        headers = {
            name: value
            for name, value in (
                ("Content-Type", request.header(HEADER_CONTENT_TYPE)),
                ("Accept", request.header(HEADER_ACCEPT)),
                ("X-Amzn-SageMaker-Custom-Attributes", request.header(HEADER_CUSTOM_ATTRIBUTES)),
            )
            if value is not None
        }
        sent = time.perf_counter()
        connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=CONTAINER_TIMEOUT_S)
        try:
            connection.request("POST", "/invocations", body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except OSError as error:
            raise self._unreachable(endpoint, variant, server, artifact, error) from None
        finally:
            connection.close()
        return ContainerAnswer(
            status=response.status,
            body=body,
            content_type=response.getheader("Content-Type") or "application/octet-stream",
            custom_attributes=response.getheader("X-Amzn-SageMaker-Custom-Attributes"),
            model_latency_s=time.perf_counter() - sent,
            startup_s=startup,
        )

    def _unreachable(
        self,
        endpoint: EndpointView,
        variant: Variant,
        server: LocalServer,
        artifact: Artifact,
        error: OSError,
    ) -> SageMakerModelError:
        process = server._process
        exit_code = None if process is None else process.poll()
        state = (
            "is not running"
            if process is None
            else (f"exited with code {exit_code}" if exit_code is not None else f"did not answer ({error})")
        )
        original = (
            f"The inference server of variant {variant.name} ({artifact.url}, {LOOPBACK}:{server.port}) "
            f"{state}; its log: {server.log_path}"
        )
        message = f'Received server error (0) from primary with message "{original}". {_log_hint(endpoint)}'
        return SageMakerModelError(
            message,
            original_status_code=0,
            original_message=original,
            log_stream_arn=_log_stream_arn(endpoint, variant),
        )

    def _model_error(
        self, endpoint: EndpointView, variant: Variant, answer: ContainerAnswer
    ) -> SageMakerModelError:
        side = "client" if answer.status < 500 else "server"
        original = answer.body.decode("utf-8", errors="replace")
        message = (
            f'Received {side} error ({answer.status}) from primary with message "{original}". '
            f"{_log_hint(endpoint)}"
        )
        return SageMakerModelError(
            message,
            original_status_code=answer.status,
            original_message=original,
            log_stream_arn=_log_stream_arn(endpoint, variant),
        )

    def _mirror(self, endpoint: EndpointView, shadow: Variant, request: Request, when: float) -> None:
        production_weight = sum(v.weight for v in endpoint.variants)
        share = 1.0 if production_weight <= 0 else min(1.0, shadow.weight / production_weight)
        if not self._chance(share * 100.0):
            return
        arrived = time.perf_counter()
        try:
            answer = self._call(endpoint, shadow, request)
        except SageMakerModelError as error:
            logger.warning("shadow variant %s of %s failed: %s", shadow.name, endpoint.name, error.message)
            self._publish(endpoint, shadow, when, status=500, model_latency_s=0.0, overhead_s=0.0)
            return
        overhead = time.perf_counter() - arrived - answer.model_latency_s - answer.startup_s
        self._publish(
            endpoint,
            shadow,
            when,
            status=answer.status,
            model_latency_s=answer.model_latency_s,
            overhead_s=overhead,
        )
        self._maybe_capture(endpoint, shadow, request, answer, when)

    def _publish(
        self,
        endpoint: EndpointView,
        variant: Variant,
        when: float,
        *,
        status: int,
        model_latency_s: float,
        overhead_s: float,
    ) -> None:
        timestamp = datetime.fromtimestamp(when, UTC).replace(tzinfo=None)
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint.name},
            {"Name": "VariantName", "Value": variant.name},
        ]
        values: list[tuple[str, float, str]] = [
            ("Invocations", 1.0, "None"),
            ("InvocationsPerInstance", 1.0 / variant.instance_count, "None"),
            ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0, "None"),
            ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0, "None"),
        ]
        if model_latency_s > 0:
            values.append(("ModelLatency", round(model_latency_s * 1e6), "Microseconds"))
            values.append(("OverheadLatency", max(0, round(overhead_s * 1e6)), "Microseconds"))
        cloudwatch_backends[endpoint.account_id][endpoint.region].put_metric_data(
            NAMESPACE,
            [
                {
                    "MetricName": name,
                    "Value": value,
                    "Unit": unit,
                    "Timestamp": timestamp,
                    "Dimensions": dimensions,
                }
                for name, value, unit in values
            ],
        )

    def _maybe_capture(
        self, endpoint: EndpointView, variant: Variant, request: Request, answer: ContainerAnswer, when: float
    ) -> None:
        settings = endpoint.capture
        if settings is None or answer.status >= 300 or not self._chance(settings.sampling_percentage):
            return
        captured: dict[str, Any] = {}
        if settings.capture_input:
            observed = request.header(HEADER_CONTENT_TYPE) or "application/octet-stream"
            data, encoding = settings.encoded(request.body, observed)
            captured["endpointInput"] = {
                "observedContentType": observed,
                "mode": "INPUT",
                "data": data,
                "encoding": encoding,
            }
        if settings.capture_output:
            data, encoding = settings.encoded(answer.body, answer.content_type)
            captured["endpointOutput"] = {
                "observedContentType": answer.content_type,
                "mode": "OUTPUT",
                "data": data,
                "encoding": encoding,
            }
        event_id = str(self._new_id())
        metadata = {
            "eventId": event_id,
            "inferenceTime": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        inference_id = request.header(HEADER_INFERENCE_ID)
        if inference_id:
            metadata["inferenceId"] = inference_id
        line = json.dumps(
            {"captureData": captured, "eventMetadata": metadata, "eventVersion": CAPTURE_EVENT_VERSION}
        )
        self.capture.add(
            endpoint.account_id, settings, endpoint=endpoint.name, variant=variant.name, when=when, line=line
        )


def _log_group(endpoint: EndpointView) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint.name}"


def _log_hint(endpoint: EndpointView) -> str:
    region = endpoint.region
    return (
        f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group={_log_group(endpoint)} in account {endpoint.account_id} for more information."
    )


def _log_stream_arn(endpoint: EndpointView, variant: Variant) -> str:
    # SageMaker's container log streams are named <variant>/<instance id>.
    return (
        f"arn:aws:logs:{endpoint.region}:{endpoint.account_id}:log-group:{_log_group(endpoint)}"
        f":log-stream:{variant.name}/local-instance"
    )


# --- moto's methods, replaced --------------------------------------------------------------------------


def _request_of(response: SageMakerRuntimeResponse) -> Request:
    name = response._get_param("EndpointName")
    if not name:
        name = response.path.split("/")[2]  # /endpoints/<name>/invocations
    raw = response.raw_body if response.raw_body is not None else b""
    body = raw.encode() if isinstance(raw, str) else bytes(raw)
    headers = {str(key).lower(): str(value) for key, value in dict(response.headers or {}).items()}
    return Request(endpoint_name=str(name), body=body, headers=headers)


def _record_shadow_variants(
    original: Callable[[SageMakerResponse], Any],
) -> Callable[[SageMakerResponse], Any]:
    """CreateEndpointConfig that keeps ShadowProductionVariants on moto's config (moto drops them)."""

    @functools.wraps(original)  # its signature stays moto's, for `check_moto`
    def create_endpoint_config(response: SageMakerResponse) -> Any:
        shadows: Sequence[dict[str, Any]] = response._get_param("ShadowProductionVariants") or []
        backend = response.sagemaker_backend
        for shadow in shadows:
            model_name = str(shadow.get("ModelName"))
            if model_name not in backend._models:
                arn = (
                    f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:model/{model_name.lower()}"
                )
                raise SageMakerValidationError(f"Could not find model '{arn}'.")
        result = original(response)
        if shadows:
            config = backend.endpoint_configs[str(response._get_param("EndpointConfigName"))]
            config.shadow_production_variants = [dict(s) for s in shadows]  # type: ignore[attr-defined]
        return result

    return create_endpoint_config


@contextmanager
def serve_endpoints(
    *,
    rng: random.Random | None = None,
    clock: Clock = time.time,
    server_workers: int = 1,
    work_dir: Path | None = None,
    ready_timeout_s: float = 60.0,
    capture_flush_seconds: float = 60.0,
) -> Iterator[LocalSageMakerRuntime]:
    """While open, moto's InvokeEndpoint (in-process and through its server) runs on real inference servers.

    `work_dir` holds the extracted models and the servers' logs (a temporary directory, removed on
    exit, when not given). CreateEndpointConfig keeps `ShadowProductionVariants` while open: create the
    configs with shadow variants inside the context.
    """
    check_moto()
    owned = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="sagemaker-runtime-")) if work_dir is None else work_dir
    runtime = LocalSageMakerRuntime(
        directory,
        rng=rng,
        clock=clock,
        server_workers=server_workers,
        ready_timeout_s=ready_timeout_s,
        capture_flush_seconds=capture_flush_seconds,
    )

    @functools.wraps(SageMakerRuntimeResponse.invoke_endpoint)  # its signature stays moto's, for `check_moto`
    def invoke_endpoint(response: SageMakerRuntimeResponse) -> TYPE_RESPONSE:
        return runtime.invoke(response.current_account, response.region, _request_of(response))

    try:
        with (
            mock.patch.object(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint),
            mock.patch.object(
                SageMakerResponse,
                "create_endpoint_config",
                _record_shadow_variants(SageMakerResponse.create_endpoint_config),
            ),
        ):
            yield runtime
    finally:
        try:
            runtime.close()
        finally:
            if owned:
                shutil.rmtree(directory, ignore_errors=True)
