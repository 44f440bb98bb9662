"""Judge the current step: the variants' windows since the step started, the judge's verdict, the next action.

The task is ``lambdas.rollout.tasks.judge.judge_step``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.aws.wiring import run_task
from lambdas.rollout.tasks.judge import judge_step

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = run_task(event, judge_step)
    metrics.add_dimension(name="Action", value=str(state["decision"]["action"]))
    metrics.add_metric(name="JudgeDecision", unit=MetricUnit.Count, value=1)
    return state
