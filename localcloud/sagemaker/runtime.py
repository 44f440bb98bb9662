"""SageMaker Runtime's InvokeEndpoint on moto, answered by real inference-server processes: the routing
of each request and `serve_endpoints`. What is served, and how: README.md.
"""

from __future__ import annotations

import functools
import http.client
import inspect
import json
import logging
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import moto
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_types import TYPE_RESPONSE
from moto.sagemaker.models import FakeEndpointConfig
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from containers.inference.local_server import LOOPBACK, LocalServer
from localcloud.sagemaker.data_capture import CaptureWriter
from localcloud.sagemaker.endpoints import EndpointView, Variant, read_endpoint
from localcloud.sagemaker.exceptions import SageMakerModelError, SageMakerValidationError
from localcloud.sagemaker.model_servers import Artifact, ModelServers

# The moto version whose methods this module replaces (shapes checked by `check_moto`).
MOTO_VERSION = "5.2.5"
NAMESPACE = "AWS/SageMaker"
# SageMaker waits 60 s for a container's answer to /invocations.
CONTAINER_TIMEOUT_S = 60.0
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

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class MotoChangedError(RuntimeError):
    """moto's methods are no longer the ones this module knows how to replace."""


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
        # Counted as it arrives: a slow variant's requests are in its count while they wait for an answer.
        self._count(endpoint, variant, when)
        try:
            answer = self._call(endpoint, variant, request)
        except SageMakerModelError:
            self._publish(
                endpoint, variant, when, status=500, model_latency_s=0.0, overhead_s=0.0, counted=True
            )
            raise
        overhead = time.perf_counter() - arrived - answer.model_latency_s - answer.startup_s
        self._publish(
            endpoint,
            variant,
            when,
            status=answer.status,
            model_latency_s=answer.model_latency_s,
            overhead_s=overhead,
            counted=True,
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
        fleet = endpoint.variants
        if endpoint.green_percent > 0 and self._chance(endpoint.green_percent):
            fleet = endpoint.green  # a blue/green deployment sends this request to the new fleet
        weighted = [v for v in fleet if v.weight > 0]
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
        counted: bool = False,
    ) -> None:
        """The request's outcome; its `Invocations` too unless `_count` published them as it arrived."""
        values: list[tuple[str, float, str]] = [
            ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0, "None"),
            ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0, "None"),
        ]
        if not counted:
            values = [*_invocation_counts(variant), *values]
        if model_latency_s > 0:
            values.append(("ModelLatency", round(model_latency_s * 1e6), "Microseconds"))
            values.append(("OverheadLatency", max(0, round(overhead_s * 1e6)), "Microseconds"))
        _put_metrics(endpoint, variant, when, values)

    def _count(self, endpoint: EndpointView, variant: Variant, when: float) -> None:
        _put_metrics(endpoint, variant, when, _invocation_counts(variant))

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


def _invocation_counts(variant: Variant) -> list[tuple[str, float, str]]:
    return [("Invocations", 1.0, "None"), ("InvocationsPerInstance", 1.0 / variant.instance_count, "None")]


def _put_metrics(
    endpoint: EndpointView, variant: Variant, when: float, values: list[tuple[str, float, str]]
) -> None:
    timestamp = datetime.fromtimestamp(when, UTC).replace(tzinfo=None)
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint.name},
        {"Name": "VariantName", "Value": variant.name},
    ]
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
