"""Where the run's current job stands: still running, completed, or ended without its output.

A failed or stopped job fails this task with SageMaker's reason (the script's first line for a bad data
drop), which the state machine catches into the failure path. A completed training job's artifact is
recorded for the evaluation and the registration. The family's lease is renewed at every check: a job
may run longer than one lease.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lambdas.retraining.aws.jobs import describe_job
from lambdas.retraining.aws.wiring import RetrainingServices
from lambdas.retraining.jobs import job_status, layout
from lambdas.retraining.state import RetrainingState

logger = Logger()


def check_job(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    if state.job is None:
        raise ValueError(f"retraining {state.execution_id} has no job to check")
    services.hold_lock(state)
    job = state.job
    description = describe_job(services, job.step, job.name)
    status = job_status(job.step, job.name, description)
    update: dict[str, Any] = {"job": job.model_copy(update={"status": status})}
    if status == "Completed":
        logger.info("job completed", extra={"step": job.step, "job": job.name})
        if job.step == "train":
            artifacts = description.get("ModelArtifacts") or {}
            fallback = layout(state, services.settings).model_archive(job.name)
            update["model_data_url"] = str(artifacts.get("S3ModelArtifacts") or fallback)
    return state.model_copy(update=update)
