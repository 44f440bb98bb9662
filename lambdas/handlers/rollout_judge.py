"""Look at the rollout: every window since it started, the judge's verdict, the next action.

The task is ``lambdas.rollout.tasks.judge.judge_step``.

What the judge sees and what the rollout does after it is `lambdas.rollout.decision` (the same
function the benchmark drives). The look reads up to the last whole minute before now, so a retried
judge in the same minute asks CloudWatch about the same minutes. CloudWatch may still have received
late datapoints for them since: a retry whose verdict is already in the ledger keeps that verdict (the
first judgment stands, and the ledger never holds two) instead of judging again.

The state machine waits ``bake_seconds`` before each look: this handler sets it to the decision's
next look (a minute by default), so harm is looked for after every window.
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
