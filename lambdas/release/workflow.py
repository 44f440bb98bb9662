"""The next environment's release workflow: register the offered package, ask for approval, conclude.

``register`` copies the offered artifact and its gate files into this environment's registry bucket and
creates the package in the endpoint's package group, PendingManualApproval, with the offering
environment's evidence in its metadata (``lambdas.release.offer.evidence_metadata``). ``ask`` tells the
topic how to approve or reject it (the Step Functions task token the workflow waits on). ``approve``
approves it, which starts this environment's rollout like any approval; ``reject`` rejects it with the
reason (a person said no, or nobody answered in time) and tells the topic. An offer that cannot be
registered is ``refused`` and told; nothing is created for it.

Pure domain code over the clients' protocols; the boto3 clients are built in ``lambdas.release.wiring``.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from lambdas.release.offer import ReleaseOffer, evidence_metadata
from lambdas.release.settings import ReleaseSettings
from lambdas.shared.aws_clients import PublishesNotifications
from lambdas.shared.endpoint_store import EndpointSettingsError

__all__ = [
    "APPROVAL_TIMED_OUT",
    "REJECTED_ERROR",
    "ApprovalAnswer",
    "ReleaseRefused",
    "ReleaseServices",
    "ReleaseState",
    "StepError",
    "approve",
    "ask",
    "refused",
    "register",
    "reject",
]

# The error a person's rejection carries (SendTaskFailure --error), and the one Step Functions gives a
# wait that ran out of time.
REJECTED_ERROR = "Rejected"
APPROVAL_TIMED_OUT = "States.Timeout"
APPROVAL_DESCRIPTION_MAX = 1000
SUBJECT_MAX = 100
# Where a released package's files go in this environment's bucket (the gates read them beside the model).
RELEASED_PREFIX = "models/released"
GATES_FOLDER = "gates/"


class ReleaseRefused(Exception):
    """The offer cannot be registered here: the message names why; nothing was created."""


class RegistryControl(Protocol):
    def create_model_package(self, **request: Any) -> Mapping[str, Any]: ...
    def update_model_package(self, **request: Any) -> Mapping[str, Any]: ...


class CopiesObjects(Protocol):
    def copy_object(self, **request: Any) -> Any: ...
    def list_objects_v2(self, **request: Any) -> Any: ...


@dataclass(frozen=True)
class ReleaseServices:
    settings: ReleaseSettings
    sagemaker: RegistryControl
    s3: CopiesObjects
    sns: PublishesNotifications


class ApprovalAnswer(BaseModel):
    """What a person sends with SendTaskSuccess (``--task-output``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    approved_by: str = Field(default="a person", min_length=1, max_length=128)


class StepError(BaseModel):
    """What a Catch with ``ResultPath: "$.error"`` puts in the state; a rejection sent without a cause
    (``send-task-failure`` with no ``--cause``) has none."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")

    def describe(self) -> str:
        """`Error: message`; a Lambda's Cause is a JSON document whose errorMessage says what happened."""
        try:
            cause: Any = json.loads(self.cause or "")
        except json.JSONDecodeError:
            cause = self.cause
        message = cause.get("errorMessage", self.cause) if isinstance(cause, dict) else self.cause
        return f"{self.error}: {message}" if message else self.error


class ReleaseState(BaseModel):
    """The workflow's state: the offer, the package registered for it, and how the approval went."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    offer: ReleaseOffer
    model_package_arn: str | None = None
    approval: ApprovalAnswer | None = None
    error: StepError | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def register(offer: ReleaseOffer, services: ReleaseServices) -> ReleaseState:
    settings = services.settings
    if offer.target_environment != settings.environment:
        raise ReleaseRefused(
            f"the offer is for {offer.target_environment!r}, this is {settings.environment!r}"
        )
    if offer.source_environment != settings.source_environment:
        raise ReleaseRefused(
            f"{settings.environment!r} takes packages from {settings.source_environment!r} only, "
            f"not from {offer.source_environment!r}"
        )
    refusal = offer.refusal()
    if refusal is not None:
        raise ReleaseRefused(refusal)
    try:
        endpoint = settings.endpoints[offer.endpoint]
    except KeyError:
        raise ReleaseRefused(
            f"{settings.environment!r} has no endpoint {offer.endpoint!r}: add it to its configuration to "
            "take this endpoint's packages"
        ) from None
    except EndpointSettingsError as error:
        raise ReleaseRefused(str(error)) from None
    model_data_url = _copy_artifact(offer, endpoint.model_package_group, services)
    created = services.sagemaker.create_model_package(
        ModelPackageGroupName=endpoint.model_package_group,
        ModelPackageDescription=(
            f"released from {offer.source_environment}: {offer.model_package_arn}, promoted by rollout "
            f"{offer.rollout_id}"
        )[:1000],
        InferenceSpecification={
            "Containers": [{"Image": offer.image, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=evidence_metadata(offer),
        # One package per offer, whatever EventBridge or a retry delivers twice.
        ClientToken=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{offer.model_package_arn}>{settings.environment}")),
    )
    return ReleaseState(offer=offer, model_package_arn=str(created["ModelPackageArn"]))


def _copy_artifact(offer: ReleaseOffer, group: str, services: ReleaseServices) -> str:
    """Copy the model and its gate files into this environment's bucket; the new model's URL."""
    bucket, key = offer.model_data_url.removeprefix("s3://").split("/", 1)
    folder, _, name = key.rpartition("/")
    package = offer.model_package_arn.rsplit("/", 2)
    destination = f"{RELEASED_PREFIX}/{group}/{offer.source_environment}/{package[-2]}/v{package[-1]}"
    target = services.settings.artifact_bucket
    copies = [(key, f"{destination}/{name}")]
    gates = f"{folder}/{GATES_FOLDER}" if folder else GATES_FOLDER
    listed = services.s3.list_objects_v2(Bucket=bucket, Prefix=gates)
    copies += [
        (str(item["Key"]), f"{destination}/{GATES_FOLDER}{str(item['Key']).removeprefix(gates)}")
        for item in listed.get("Contents", [])
    ]
    for source_key, target_key in copies:
        services.s3.copy_object(
            Bucket=target, Key=target_key, CopySource={"Bucket": bucket, "Key": source_key}
        )
    return f"s3://{target}/{destination}/{name}"


def ask(state: ReleaseState, task_token: str, services: ReleaseServices) -> None:
    """Tell the topic what waits for approval, with the commands that approve or reject it."""
    offer, settings = state.offer, services.settings
    token = shlex.quote(task_token)
    region = shlex.quote(settings.region)
    message = {
        "event": "release_waiting_for_approval",
        "environment": settings.environment,
        "endpoint": offer.endpoint,
        "model_package_arn": state.model_package_arn,
        "released_from": offer.source_environment,
        "source_package": offer.model_package_arn,
        "evidence": {
            k: v for k, v in evidence_metadata(offer).items() if k.startswith(offer.source_environment)
        },
        "approve": (
            f"aws stepfunctions send-task-success --region {region} --task-token {token} "
            '--task-output \'{"approved_by": "YOUR NAME"}\''
        ),
        "reject": (
            f"aws stepfunctions send-task-failure --region {region} --task-token {token} "
            f"--error {REJECTED_ERROR} --cause 'WHY'"
        ),
        "if_nobody_answers": "the package is rejected when the approval times out",
    }
    services.sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"mlrollout: approve {offer.endpoint} for {settings.environment}?"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )


def approve(state: ReleaseState, services: ReleaseServices) -> ReleaseState:
    """Approved: this environment's rollout starts from the approval event, as for any package."""
    offer = state.offer
    who = state.approval.approved_by if state.approval else "the release chain (approval: none)"
    services.sagemaker.update_model_package(
        ModelPackageArn=_registered(state),
        ModelApprovalStatus="Approved",
        ApprovalDescription=(
            f"released from {offer.source_environment} (rollout {offer.rollout_id}), approved by {who}"
        )[:APPROVAL_DESCRIPTION_MAX],
        # UpdateModelPackage adds these keys on AWS, and moto replaces the map: resent, the evidence stays.
        CustomerMetadataProperties=evidence_metadata(offer),
    )
    return state


def reject(state: ReleaseState, services: ReleaseServices) -> ReleaseState:
    """Rejected, with why: a person's rejection, or an approval that did not come in time."""
    reason = _rejection_reason(state.error)
    services.sagemaker.update_model_package(
        ModelPackageArn=_registered(state),
        ModelApprovalStatus="Rejected",
        ApprovalDescription=reason[:APPROVAL_DESCRIPTION_MAX],
        CustomerMetadataProperties=evidence_metadata(state.offer),
    )
    _tell(state, services, "release_rejected", reason, "rejected")
    return state


def refused(offer: Any, error: StepError, services: ReleaseServices) -> None:
    """An offer that could not be registered, told (the execution then fails)."""
    detail = offer if isinstance(offer, Mapping) else {}
    message = {
        "event": "release_refused",
        "environment": services.settings.environment,
        "endpoint": detail.get("endpoint"),
        "source_package": detail.get("model_package_arn"),
        "released_from": detail.get("source_environment"),
        "reason": error.describe(),
        "action": "nothing was registered; fix the cause and offer the package again (docs/release-chain.md)",
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: release to {services.settings.environment} refused"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )


def _rejection_reason(error: StepError | None) -> str:
    if error is None:
        return "rejected"
    if error.error == APPROVAL_TIMED_OUT:
        return "rejected: nobody approved the release before its approval timed out"
    if error.error == REJECTED_ERROR:
        return f"rejected by a person: {error.cause or 'no reason given'}"
    return f"rejected: asking for approval failed ({error.describe()})"


def _tell(state: ReleaseState, services: ReleaseServices, event: str, reason: str, what: str) -> None:
    offer = state.offer
    message = {
        "event": event,
        "environment": services.settings.environment,
        "endpoint": offer.endpoint,
        "model_package_arn": state.model_package_arn,
        "source_package": offer.model_package_arn,
        "reason": reason,
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {offer.endpoint} release {what} in {services.settings.environment}"[
            :SUBJECT_MAX
        ],
        Message=json.dumps(message, indent=2),
    )


def _registered(state: ReleaseState) -> str:
    if state.model_package_arn is None:
        raise ValueError("the release state has no registered package")
    return state.model_package_arn
