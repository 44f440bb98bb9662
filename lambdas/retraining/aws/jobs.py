"""Starting and checking the run's SageMaker jobs through the standard API (Create*/Describe*Job)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lambdas.retraining.aws.wiring import RetrainingServices, already_exists
from lambdas.retraining.state import JobRecord, JobStep, RetrainingState


def create_job(services: RetrainingServices, step: JobStep, request: dict[str, Any]) -> str:
    """Create the step's job; a job of that name already there is this run's (a retried task)."""
    sagemaker = services.sagemaker
    try:
        if step == "train":
            sagemaker.create_training_job(**request)
        else:
            sagemaker.create_processing_job(**request)
    except ClientError as error:
        if not already_exists(error):
            raise
    return str(request["TrainingJobName" if step == "train" else "ProcessingJobName"])


def start_job(
    state: RetrainingState, services: RetrainingServices, step: JobStep, request: dict[str, Any]
) -> RetrainingState:
    """Renew the family's lease, start the step's job and record it as the job the next checks follow."""
    services.hold_lock(state)
    name = create_job(services, step, request)
    return state.model_copy(
        update={"job": JobRecord(step=step, name=name), "jobs": state.jobs | {step: name}}
    )


def describe_job(services: RetrainingServices, step: JobStep, name: str) -> dict[str, Any]:
    if step == "train":
        return dict(services.sagemaker.describe_training_job(TrainingJobName=name))
    return dict(services.sagemaker.describe_processing_job(ProcessingJobName=name))
