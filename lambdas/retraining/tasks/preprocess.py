"""Start the preprocessing job: validate every data drop of the family, write train.csv and the manifest.

The job is named after the run, so a retried task finds the job it created and starts no second one.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.retraining.aws.jobs import start_job
from lambdas.retraining.aws.wiring import RetrainingServices
from lambdas.retraining.jobs import preprocess_request
from lambdas.retraining.state import RetrainingState

logger = Logger()


def start_preprocess(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    started = start_job(state, services, "preprocess", preprocess_request(state, services.settings))
    logger.info("job started", extra={"step": "preprocess", "job": started.jobs["preprocess"]})
    return started
