"""The clean-up after a retraining execution stopped by hand or timed out: its jobs, its lock, a message.

The workflow's names for the run come from ``lambdas.retraining.ended``; this module makes the calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock
from lambdas.retraining.aws.wiring import lock_key
from lambdas.retraining.ended import (
    EndedExecution,
    EndedSettings,
    JobOutcome,
    changed_anything,
    job_outcome,
    load_ended_settings,
    notification,
    parse_ended_event,
)
from lambdas.retraining.state import JobStep
from lambdas.shared.aws_clients import CLIENT_CONFIG, PublishesNotifications, throttling_as_retryable
from lambdas.shared.container import ContainerServices

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "EndedServices",
    "StopsJobs",
    "build_ended_services",
    "clean_up",
    "clean_up_after",
    "services",
    "use",
]

logger = Logger()


class StopsJobs(Protocol):
    """The SageMaker calls of the clean-up (the sagemaker stubs are not installed)."""

    def describe_processing_job(self, *, ProcessingJobName: str) -> Any: ...
    def describe_training_job(self, *, TrainingJobName: str) -> Any: ...
    def stop_processing_job(self, *, ProcessingJobName: str) -> Any: ...
    def stop_training_job(self, *, TrainingJobName: str) -> Any: ...


@dataclass(frozen=True)
class EndedServices:
    settings: EndedSettings
    sagemaker: StopsJobs
    lock: EndpointLock
    sns: PublishesNotifications


def build_ended_services(
    settings: EndedSettings,
    *,
    sagemaker: StopsJobs | None = None,
    dynamodb: DynamoDBClient | None = None,
    sns: PublishesNotifications | None = None,
) -> EndedServices:
    table = DynamoDBLockTable(
        client=dynamodb or boto3.client("dynamodb", config=CLIENT_CONFIG),
        table_name=settings.retraining.lock_table,
    )
    return EndedServices(
        settings=settings,
        sagemaker=sagemaker or cast("StopsJobs", boto3.client("sagemaker", config=CLIENT_CONFIG)),
        lock=EndpointLock(table),
        sns=sns or cast("PublishesNotifications", boto3.client("sns", config=CLIENT_CONFIG)),
    )


_container = ContainerServices(lambda: build_ended_services(load_ended_settings(os.environ)))
use = _container.use
services = _container.get


def clean_up_after(event: Mapping[str, Any], services: EndedServices) -> dict[str, Any]:
    """Parse the status change event (InvalidEndedEvent if it is not one of ours), then clean up."""
    ended = parse_ended_event(
        event,
        state_machine_arn=services.settings.state_machine_arn,
        name_prefix=services.settings.retraining.jobs.name_prefix,
    )
    with throttling_as_retryable():
        return clean_up(ended, services)


def clean_up(ended: EndedExecution, services: EndedServices) -> dict[str, Any]:
    """Stop the run's jobs in progress, release the family if this execution holds it, then notify."""
    family = ended.request.model_family
    services.settings.retraining.family(family)  # an unknown family is refused before anything changes
    outcomes = [_stop_if_running(step, name, services) for step, name in ended.jobs]
    key = lock_key(family)
    released = services.lock.release(key, ended.execution_arn)
    result: dict[str, Any] = {
        "execution_id": ended.execution_arn,
        "status": ended.status,
        "model_family": family,
        "run_id": ended.run_id,
        "stopped_jobs": [outcome.name for outcome in outcomes if outcome.action == "stop"],
        "jobs": [outcome.summary() for outcome in outcomes],
        "lock_released": released,
        "notified": False,
    }
    if not changed_anything(outcomes, released):
        logger.info("nothing left to clean up after the retraining", extra=result)
        return result
    logger.warning(f"retraining {ended.how}: cleaned up", extra=result)
    subject, message = notification(
        ended,
        outcomes,
        released=released,
        lock_key=key,
        prefix=services.settings.retraining.jobs.name_prefix,
    )
    services.sns.publish(TopicArn=services.settings.topic_arn, Subject=subject, Message=message)
    return result | {"notified": True}


def _stop_if_running(step: JobStep, name: str, services: EndedServices) -> JobOutcome:
    outcome = job_outcome(step, name, _describe(step, name, services))
    if outcome.action != "stop":
        return outcome
    sagemaker = services.sagemaker
    try:
        if step == "train":
            sagemaker.stop_training_job(TrainingJobName=name)
        else:
            sagemaker.stop_processing_job(ProcessingJobName=name)
    except ClientError as error:
        # The job ended between the describe and the stop: SageMaker refuses to stop an ended job.
        if _code(error) != "ValidationException":
            raise
        now = job_outcome(step, name, _describe(step, name, services))
        if now.action == "stop":
            raise
        return now
    logger.info("job stopped", extra={"step": step, "job": name})
    return outcome


def _describe(step: JobStep, name: str, services: EndedServices) -> dict[str, Any] | None:
    """The job's description; None when there is no job of that name (the run never reached it)."""
    try:
        if step == "train":
            return dict(services.sagemaker.describe_training_job(TrainingJobName=name))
        return dict(services.sagemaker.describe_processing_job(ProcessingJobName=name))
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def _not_found(error: ClientError) -> bool:
    """SageMaker answers Describe*Job of a missing job with ValidationException "Requested resource not
    found." (its documentation says ResourceNotFound; both are taken)."""
    detail = error.response.get("Error", {})
    message = str(detail.get("Message", "")).lower()
    return _code(error) == "ResourceNotFound" or (
        _code(error) == "ValidationException" and ("not found" in message or "could not find" in message)
    )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
