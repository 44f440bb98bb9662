"""Start the training job: the image's train program on the run's train.csv.

The job is named after the run, so a retried task finds the job it created and starts no second one.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.jobs import start_job
from lambdas.retraining.aws.wiring import RetrainingServices, run_task
from lambdas.retraining.jobs import training_request
from lambdas.retraining.state import RetrainingState

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, start_train)


def start_train(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    started = start_job(state, services, "train", training_request(state, services.settings))
    logger.info("job started", extra={"step": "train", "job": started.jobs["train"]})
    return started
