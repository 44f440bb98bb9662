"""SageMaker's UpdateEndpoint on moto (which moto 5.2.5 lacks), and the model registry's events."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult
from moto.events.models import events_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from localcloud.sagemaker import blue_green
from localcloud.sagemaker.blue_green import BlueGreenDeployments

# moto's SageMaker had no UpdateEndpoint up to this version; a later one may (see `check_moto`).
MOTO_VERSION = "5.2.5"
# How often, in real seconds, blue/green deployments move on and look at their alarms between requests.
GUARDRAIL_POLL_SECONDS = 0.1


class MotoHasUpdateEndpointError(RuntimeError):
    """moto implements UpdateEndpoint itself now: this emulation would hide its behaviour."""


@dataclass
class EndpointUpdates:
    """What the emulated UpdateEndpoint received, and which endpoints SageMaker silently rolls back.

    `blue_green` holds the deployments with guardrails when the emulation runs on a clock."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    silently_roll_back: set[str] = field(default_factory=set)
    blue_green: BlueGreenDeployments | None = None

    def configs_requested(self, endpoint_name: str) -> list[str]:
        return [str(r["EndpointConfigName"]) for r in self.requests if r["EndpointName"] == endpoint_name]


def check_moto() -> None:
    if hasattr(SageMakerResponse, "update_endpoint"):
        raise MotoHasUpdateEndpointError(
            "moto's SageMakerResponse has update_endpoint: drop localcloud.sagemaker.control's emulation "
            f"(written for moto {MOTO_VERSION}, which had none)"
        )


@contextmanager
def emulate_update_endpoint(
    updates: EndpointUpdates | None = None, *, clock: Callable[[], float] | None = None
) -> Iterator[EndpointUpdates]:
    """While open, moto answers UpdateEndpoint (in-process and through its server).

    With a `clock`, an update with a blue/green DeploymentConfig shifts its traffic on that clock under
    its guardrails (`localcloud.sagemaker.blue_green`); without one, every update switches at once.
    """
    check_moto()
    received = updates if updates is not None else EndpointUpdates()
    if clock is not None and received.blue_green is None:
        received.blue_green = BlueGreenDeployments(clock)
    deployments = received.blue_green

    def update_endpoint(response: SageMakerResponse) -> ActionResult:
        name = str(response._get_param("EndpointName"))
        config_name = str(response._get_param("EndpointConfigName"))
        endpoint, config = _endpoint_and_config(response, name, config_name)
        backend = response.sagemaker_backend
        if deployments is not None and deployments.in_progress(backend.account_id, backend.region_name, name):
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        received.requests.append(dict(response._get_params()))
        if name in received.silently_roll_back:
            return ActionResult({"EndpointArn": endpoint.arn})
        deployment_config = response._get_param("DeploymentConfig") or {}
        if deployments is not None and "BlueGreenUpdatePolicy" in deployment_config:
            deployments.start(
                endpoint,
                config,
                deployment_config,
                account_id=backend.account_id,
                region=backend.region_name,
                on_complete=switch_config,
            )
        else:
            switch_config(endpoint, config)
            blue_green.describe(endpoint, "last_deployment_config", deployment_config or None)
        return ActionResult({"EndpointArn": endpoint.arn})

    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(deployments, stop), daemon=True, name="blue-green")
    if deployments is not None:
        ticker.start()
    original_describe = SageMakerResponse.describe_endpoint
    original_weights = SageMakerModelBackend.update_endpoint_weights_and_capacities

    def describe_endpoint(response: SageMakerResponse) -> ActionResult:
        if deployments is not None:
            backend = response.sagemaker_backend
            deployments.advance(
                backend.account_id, backend.region_name, str(response._get_param("EndpointName"))
            )
        return original_describe(response)

    def update_weights(backend: SageMakerModelBackend, endpoint_name: str, *args: Any, **kwargs: Any) -> str:
        if deployments is not None and deployments.in_progress(
            backend.account_id, backend.region_name, endpoint_name
        ):
            arn = FakeEndpoint.arn_formatter(endpoint_name, backend.account_id, backend.region_name)
            raise ValidationError(message=f'Cannot update in-progress endpoint "{arn}".')
        return original_weights(backend, endpoint_name, *args, **kwargs)

    blue_green.activate(deployments)
    try:
        with (
            mock.patch.object(SageMakerResponse, "update_endpoint", update_endpoint, create=True),
            mock.patch.object(SageMakerResponse, "describe_endpoint", describe_endpoint),
            mock.patch.object(
                SageMakerModelBackend, "update_endpoint_weights_and_capacities", update_weights
            ),
        ):
            yield received
    finally:
        blue_green.activate(None)
        stop.set()
        if ticker.is_alive():
            ticker.join()


def _tick(deployments: BlueGreenDeployments | None, stop: threading.Event) -> None:
    """Deployments move on and watch their alarms even while nobody describes or invokes the endpoint."""
    while deployments is not None and not stop.wait(GUARDRAIL_POLL_SECONDS):
        deployments.advance_all()


def switch_config(endpoint: FakeEndpoint, config: FakeEndpointConfig) -> None:
    """The endpoint as a finished update leaves it: running the config, with the config's variants."""
    endpoint.endpoint_config_name = config.endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
    endpoint.endpoint_status = "InService"


def _endpoint_and_config(
    response: SageMakerResponse, name: str, config_name: str
) -> tuple[FakeEndpoint, FakeEndpointConfig]:
    backend = response.sagemaker_backend
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f'Could not find endpoint "{arn}".')
    config = backend.endpoint_configs.get(config_name)
    if config is None:
        arn = FakeEndpointConfig.arn_formatter(config_name, backend.account_id, backend.region_name)
        raise ValidationError(message=f'Could not find endpoint configuration "{arn}".')
    return endpoint, config


# --- model registry events ---------------------------------------------------------------------------

PACKAGE_EVENT = "SageMaker Model Package State Change"


@contextmanager
def emit_registry_events() -> Iterator[list[dict[str, Any]]]:
    """While open, creating a model package version or changing its approval puts SageMaker's
    "SageMaker Model Package State Change" event on the default bus, as SageMaker does (moto emits
    none). The detail carries the fields the project's rules and handlers read (ModelPackageGroupName,
    ModelPackageVersion, ModelPackageArn, ModelApprovalStatus, ...); what was put is yielded."""
    emitted: list[dict[str, Any]] = []
    original_update = SageMakerModelBackend.update_model_package
    original_create = SageMakerModelBackend.create_model_package

    def emit(backend: SageMakerModelBackend, arn: str) -> None:
        package = backend.model_packages[backend.model_package_name_mapping.get(arn, arn)]
        detail = {
            "ModelPackageGroupName": package.model_package_group_name,
            "ModelPackageVersion": package.model_package_version,
            "ModelPackageArn": package.arn,
            "ModelApprovalStatus": package.model_approval_status,
            "ApprovalDescription": package.approval_description,
            "CreationTime": str(package.creation_time),
        }
        entry = {
            "Source": "aws.sagemaker",
            "DetailType": PACKAGE_EVENT,
            "Detail": json.dumps(detail, default=str),
            "Resources": [package.arn],
        }
        emitted.append(detail)
        events_backends[backend.account_id][backend.region_name].put_events([entry])

    def update(backend: SageMakerModelBackend, model_package_arn: str, *args: Any, **kwargs: Any) -> str:
        arn = original_update(backend, model_package_arn, *args, **kwargs)
        emit(backend, arn)
        return arn

    def create(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        arn = original_create(backend, *args, **kwargs)
        if backend.model_packages[arn].model_package_group_name:
            emit(backend, arn)
        return arn

    with (
        mock.patch.object(SageMakerModelBackend, "update_model_package", update),
        mock.patch.object(SageMakerModelBackend, "create_model_package", create),
    ):
        yield emitted
