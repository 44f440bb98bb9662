"""Abort the rollout running on an endpoint: stop its execution, roll it back on a new one.

Targets of EventBridge rules (an endpoint's composite alarm to ALARM, an AppConfig deployment of the
flags, a rollout execution timed out or stopped) and of a person (``aws lambda invoke`` with
``{"endpoint": ..., "reason": ...}``); `lambdas.rollout.abort` says which endpoints each names.

Per endpoint: the live lease names the running rollout (with no live lease, a running execution that
is a rollout of the endpoint: its lease expired); if it has recorded an outcome it is ending on its own
and is left alone. Otherwise its execution is stopped (if still running) and the state machine
is started on its rollback path for the same rollout, under a name derived from the rollout: the same
trigger delivered twice, or two triggers for one rollout, start one rollback. A task of the stopped
execution that was already running may still finish its one call; every task that changes the endpoint
renews the lock first, and the rollback restores the champion after whatever it did.

The result lists what was aborted and what was left alone, with why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.rollout.abort import parse_trigger
from lambdas.rollout.aws.aborts import AbortServices, RunsExecutions, abort, build_abort_services
from lambdas.rollout.settings import AbortSettings, load_abort_settings
from lambdas.serving.aws.flags import deployed_flags
from lambdas.shared.aws_clients import CLIENT_CONFIG, throttling_as_retryable
from lambdas.shared.container import ContainerServices

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger()
tracer = Tracer()
metrics = Metrics()


# The rollout package does not read the flags (they are the serving side's): the abort's services get
# the serving side's reader here.
def build_services(
    settings: AbortSettings,
    *,
    dynamodb: DynamoDBClient | None = None,
    states: RunsExecutions | None = None,
    appconfigdata: AppConfigDataClient | None = None,
    clock: Callable[[], float] = time.time,
) -> AbortServices:
    read_flags = deployed_flags(
        application=settings.appconfig_application,
        environment=settings.appconfig_environment,
        profile=settings.appconfig_profile,
        catalog=settings.flag_catalog,
        client=appconfigdata or boto3.client("appconfigdata", config=CLIENT_CONFIG),
    )
    return build_abort_services(
        settings, read_flags=read_flags, dynamodb=dynamodb, states=states, clock=clock
    )


_container = ContainerServices(lambda: build_services(load_abort_settings(os.environ)))
use = _container.use


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    trigger = parse_trigger(event)
    with throttling_as_retryable():
        result = abort(trigger, _container.get())
    if result.get("aborted"):
        metrics.add_metric(name="RolloutAborted", unit=MetricUnit.Count, value=len(result["aborted"]))
    logger.info("abort handled", extra=result)
    return result
