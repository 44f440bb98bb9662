"""A step of a workflow: its function with a least-privilege role, and the retrying task that invokes it.

Both workflows (``infra/rollout_workflow.py``, ``infra/retraining_workflow.py``) are state machines over
handlers that each receive the whole state and return the whole state. Each handler gets a
``WorkflowFunction``: a ``ProjectFunction`` named after its module, whose role starts with nothing but
its log group and X-Ray; the workflow ``allow``s it exactly the calls its handler makes. ``invoke``
gives a state of the workflow that runs it and retries Lambda's transient errors with backoff. A
workflow declares its functions as a ``WorkflowFunctions`` dataclass, one typed field per handler, so it
and the stack refer to them by attribute.

The rules that start a workflow or clean up after one deliver their events with retries and, failing
that, to a dead-letter queue a person reads: ``undelivered_events_queue``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.lambda_function import ProjectFunction
from infra.nag import acknowledge

METRICS_NAMESPACE = "mlrollout"
# The start handler receives the execution's input with the execution's id added beside its keys (the
# run's id in the lock and the ledger). Step Functions has no "add a key" for JSONPath, so a Pass state
# nests both and the start task's payload merges them back into one flat object.
NAMED_INPUT = {"input.$": "$", "execution": {"execution_id.$": "$$.Execution.Id"}}
START_PAYLOAD_PATH = "States.JsonMerge($.input, $.execution, false)"
# Transient: Lambda's own throttling and faults, a throttled AWS API inside a handler; LockContention
# means the lock changed hands while being taken (the domain says: try again).
TRANSIENT_ERRORS = (
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "ThrottlingException",
    "LockContention",
)
# EventBridge retries a failed delivery (throttled, say) this often before the dead-letter queue.
EVENT_RETRY_ATTEMPTS = 8
EVENT_MAX_AGE = Duration.hours(2)


# EventBridge refuses an event pattern over 2,048 characters (its default quota). A rule that lists one
# value per endpoint or family lists at most so many, and more rules take the rest: these bounds keep a
# pattern within the quota with the longest names the config allows (a 61-character alarm name in an
# ARN of about 125 characters; a 51-character package group name).
ALARMS_PER_RULE = 12
PACKAGE_GROUPS_PER_RULE = 30


def split_for_rules(construct_id: str, values: Sequence[str], per_rule: int) -> dict[str, list[str]]:
    """Rule id -> its share of `values`, `per_rule` at most: the first keeps `construct_id`, the next are
    `<construct_id>-2`, `-3`... (so an environment with few endpoints keeps its one rule)."""
    return {
        construct_id if start == 0 else f"{construct_id}-{start // per_rule + 1}": list(
            values[start : start + per_rule]
        )
        for start in range(0, len(values), per_rule)
    }


def handler_name(module: str) -> str:
    return f"lambdas.handlers.{module}.handler"


class WorkflowFunction(ProjectFunction):
    """The function of one handler module (``lambdas/handlers/<module>.py``) that a workflow invokes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        module: str,
        workflow: str,
        prefix: str,
        environment: Mapping[str, str],
        log_key: kms.IKey,
        timeout: Duration | None = None,
        memory_size: int = 256,
    ) -> None:
        """`workflow` names the workflow in the function's description ("rollout workflow"); a step
        makes a few API calls, so a minute is its default timeout."""
        service = module.replace("_", "-")
        super().__init__(
            scope,
            construct_id,
            handler=handler_name(module),
            description=f"{prefix}: {service} step of the {workflow}",
            environment={**environment, "POWERTOOLS_SERVICE_NAME": service},
            timeout=timeout or Duration.minutes(1),
            log_key=log_key,
            memory_size=memory_size,
        )
        self.module = module

    def invoke(
        self,
        scope: Construct,
        name: str,
        *,
        payload: sfn.TaskInput | None = None,
        result_path: str | None = None,
    ) -> tasks.LambdaInvoke:
        """A state named `name` in `scope` (the workflow) whose input and output are the whole state: a
        payload replaces its input; a result path keeps the state as it was and drops the answer."""
        task = tasks.LambdaInvoke(
            scope,
            name,
            lambda_function=self.function,
            payload=payload,
            # Without a payload the function ARN is the Resource and the state goes in and out as is;
            # with one, the lambda:invoke integration sends it and the response's Payload is the state.
            payload_response_only=payload is None,
            output_path=None if payload is None else "$.Payload",
            result_path=result_path,
            # The retries below name Lambda's service errors explicitly, with their own backoff.
            retry_on_service_exceptions=False,
        )
        task.add_retry(
            errors=list(TRANSIENT_ERRORS),
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task


def undelivered_events_queue(scope: Construct, construct_id: str, *, of: str) -> sqs.Queue:
    """The dead-letter queue of `of` (a rule's target, say): events that could not be delivered wait
    here for a person."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue is itself the dead-letter queue of {of}; nothing consumes it automatically, a "
        "person reads and redrives its events.",
    )
    return queue


@dataclass(frozen=True)
class WorkflowFunctions:
    """Base of a workflow's typed set of step functions: one field per handler, by what it does."""

    def all(self) -> tuple[WorkflowFunction, ...]:
        """Every step function, in the order the fields are declared."""
        steps = tuple(getattr(self, field.name) for field in fields(self))
        assert all(isinstance(step, WorkflowFunction) for step in steps)
        return steps


def function_target(function: ProjectFunction, *, dead_letter_queue: sqs.IQueue) -> targets.LambdaFunction:
    """A rule's target that invokes the function, retried, then left in the dead-letter queue."""
    return targets.LambdaFunction(
        function.function,
        retry_attempts=EVENT_RETRY_ATTEMPTS,
        max_event_age=EVENT_MAX_AGE,
        dead_letter_queue=dead_letter_queue,
    )


def state_machine_target(
    machine: sfn.IStateMachine,
    *,
    dead_letter_queue: sqs.IQueue,
    execution_input: events.RuleTargetInput | None = None,
) -> targets.SfnStateMachine:
    """A rule's target that starts the machine (with the event as its input unless one is given),
    retried, then left in the dead-letter queue; the target's role may start this machine only."""
    return targets.SfnStateMachine(
        machine,
        input=execution_input,
        retry_attempts=EVENT_RETRY_ATTEMPTS,
        max_event_age=EVENT_MAX_AGE,
        dead_letter_queue=dead_letter_queue,
    )


def execution_ended_pattern(machine: sfn.IStateMachine, statuses: list[str]) -> events.EventPattern:
    """The machine's executions ending in one of these statuses (TIMED_OUT, ABORTED: stopped by hand)."""
    return events.EventPattern(
        source=["aws.states"],
        detail_type=["Step Functions Execution Status Change"],
        detail={"status": statuses, "stateMachineArn": [machine.state_machine_arn]},
    )


def alarm_raised_pattern(alarm_arns: list[str]) -> events.EventPattern:
    """One of these alarms going into ALARM."""
    return events.EventPattern(
        source=["aws.cloudwatch"],
        detail_type=["CloudWatch Alarm State Change"],
        resources=alarm_arns,
        detail={"state": {"value": ["ALARM"]}},
    )
