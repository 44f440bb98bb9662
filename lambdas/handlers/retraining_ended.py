"""Clean up after a retraining execution stopped by hand or timed out: its jobs, its lock, a notification.

Target of the retraining workflow's "ended execution" rule (a "Step Functions Execution Status Change"
event of the retraining state machine, status ABORTED or TIMED_OUT); `lambdas.retraining.ended` derives
the run's job names and the family from the event. Each of the three jobs still in progress is stopped
(a job never created, or already ended, is left alone), the family's lock is released if this execution
still holds it (a conditional delete by the holder: another run's lock is never touched), and the topic
is told what ended, how, and what was stopped and released.

The same event delivered twice changes nothing the second time: the jobs are stopping or stopped, the
lock is gone, and with nothing changed nothing is published. The notification is sent after the clean-up,
so a topic that cannot be reached never keeps the family locked or a job running; that failure is raised
(the invocation fails, and the log names what was cleaned up). An event of another state machine, of
another status, or with an input that is no retraining request changes nothing and is refused by name.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.retraining.aws.ended import clean_up_after, services

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = clean_up_after(event, services())
    if result["stopped_jobs"]:
        metrics.add_metric(
            name="RetrainingJobsStopped", unit=MetricUnit.Count, value=len(result["stopped_jobs"])
        )
    return result
