"""SageMaker's UpdateEndpoint on moto (which moto 5.2.5 lacks), and the model registry's events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult
from moto.events.models import events_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

# moto's SageMaker had no UpdateEndpoint up to this version; a later one may (see `check_moto`).
MOTO_VERSION = "5.2.5"


class MotoHasUpdateEndpointError(RuntimeError):
    """moto implements UpdateEndpoint itself now: this emulation would hide its behaviour."""


@dataclass
class EndpointUpdates:
    """What the emulated UpdateEndpoint received, and which endpoints SageMaker silently rolls back."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    silently_roll_back: set[str] = field(default_factory=set)

    def configs_requested(self, endpoint_name: str) -> list[str]:
        return [str(r["EndpointConfigName"]) for r in self.requests if r["EndpointName"] == endpoint_name]


def check_moto() -> None:
    if hasattr(SageMakerResponse, "update_endpoint"):
        raise MotoHasUpdateEndpointError(
            "moto's SageMakerResponse has update_endpoint: drop localcloud.sagemaker.control's emulation "
            f"(written for moto {MOTO_VERSION}, which had none)"
        )


@contextmanager
def emulate_update_endpoint(updates: EndpointUpdates | None = None) -> Iterator[EndpointUpdates]:
    """While open, moto answers UpdateEndpoint (in-process and through its server)."""
    check_moto()
    received = updates if updates is not None else EndpointUpdates()

    def update_endpoint(response: SageMakerResponse) -> ActionResult:
        name = str(response._get_param("EndpointName"))
        config_name = str(response._get_param("EndpointConfigName"))
        endpoint, config = _endpoint_and_config(response, name, config_name)
        received.requests.append(dict(response._get_params()))
        if name not in received.silently_roll_back:
            switch_config(endpoint, config)
        return ActionResult({"EndpointArn": endpoint.arn})

    with mock.patch.object(SageMakerResponse, "update_endpoint", update_endpoint, create=True):
        yield received


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
