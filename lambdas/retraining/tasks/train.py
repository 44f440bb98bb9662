"""Start the training job: the image's train program on the run's train.csv.

The job is named after the run, so a retried task finds the job it created and starts no second one.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.retraining.aws.jobs import start_job
from lambdas.retraining.aws.wiring import RetrainingServices
from lambdas.retraining.jobs import training_request
from lambdas.retraining.state import RetrainingState

logger = Logger()


def start_train(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    started = start_job(state, services, "train", training_request(state, services.settings))
    logger.info("job started", extra={"step": "train", "job": started.jobs["train"]})
    return started
