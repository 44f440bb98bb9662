"""What every workflow of the project's state machines shares: logging, tracing, and the role's findings.

The rollout and the retraining workflows each build their definition; this module gives both the same
machine around it: a standard state machine with X-Ray tracing and every event logged with its
execution data to a retained log group under ``/aws/vendedlogs/states/`` (the prefix keeps the log
group's resource policy small as machines are added). The states hold ARNs, names, S3 URIs and numbers,
never inference payloads or training data, and on-call needs them to see why an execution went its way.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.lambda_function import LOG_RETENTION
from infra.nag import acknowledge_wildcard_resources


def logged_state_machine(
    scope: Construct, *, name: str, definition: sfn.IChainable, timeout: Duration, comment: str
) -> sfn.StateMachine:
    """The machine `StateMachine` and its log group `StateMachineLogs`, children of `scope`."""
    log_group = logs.LogGroup(
        scope,
        "StateMachineLogs",
        log_group_name=f"/aws/vendedlogs/states/{name}",
        retention=LOG_RETENTION,
        removal_policy=RemovalPolicy.RETAIN,
    )
    return sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_name=name,
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        comment=comment,
    )


def acknowledge_state_machine_role(machine: sfn.StateMachine, invoked: Iterable[lambda_.IFunction]) -> None:
    """The wildcards aws-cdk-lib writes into the machine's role, each with its reason."""
    acknowledge_wildcard_resources(
        machine.role,
        ["*"],
        "X-Ray tracing and the CloudWatch Logs delivery actions of Step Functions logging support "
        "no resource-level permission.",
    )
    acknowledge_wildcard_resources(
        machine.role,
        [f"{function.function_arn}:*" for function in invoked],
        "Step Functions invokes this one function; aws-cdk-lib also allows its versions and "
        "aliases (the :* suffix), never another function.",
    )
