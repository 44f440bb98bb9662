"""Start the evaluation job: gate files, evaluation.json and the manifest beside model.tar.gz.

The job is named after the run, so a retried task finds the job it created and starts no second one.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.retraining.aws.jobs import start_job
from lambdas.retraining.aws.wiring import RetrainingServices
from lambdas.retraining.jobs import evaluation_request
from lambdas.retraining.state import RetrainingState

logger = Logger()


def start_evaluate(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    started = start_job(state, services, "evaluate", evaluation_request(state, services.settings))
    logger.info("job started", extra={"step": "evaluate", "job": started.jobs["evaluate"]})
    return started
