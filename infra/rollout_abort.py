"""The rollout's abort: its function, the rules that call it, its dead letters and the failure alarms.

Part of the workflow construct (infra/rollout_workflow.py), which builds its state machine first.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.alarms import EndpointAlarms, composite_alarm_name
from infra.config import EnvironmentConfig
from infra.feature_flags import FeatureFlags
from infra.lambda_function import ProjectFunction
from infra.nag import acknowledge_wildcard_resources
from infra.notifications import Notifications, failure_alarm
from infra.registry import ModelRegistry
from infra.rollout_parts import (
    ABORT_MODULE,
    ABORTING_STATUSES,
    APPCONFIG_EVENTS_EXTENSION,
    ORDINARY_FAILED_ENDS,
    RolloutFunctions,
)
from infra.rollout_targets import guardrail_alarm_arns
from infra.workflow_task import (
    ALARMS_PER_RULE,
    METRICS_NAMESPACE,
    alarm_raised_pattern,
    execution_ended_pattern,
    function_target,
    handler_name,
    split_for_rules,
    undelivered_events_queue,
)


class RolloutAbort(Construct):
    """The abort's builders; `RolloutWorkflow` is the construct that has them."""

    # What the workflow construct sets before it builds the abort (infra/rollout_workflow.py).
    _config: EnvironmentConfig
    _flags: FeatureFlags
    functions: RolloutFunctions
    state_machine: sfn.StateMachine
    state_machine_name: str
    abort_function: ProjectFunction
    undelivered_aborts: sqs.Queue
    undelivered_approvals: sqs.Queue
    lock_table: dynamodb.Table
    ledger_table: dynamodb.Table
    _notifications: Notifications
    _registry: ModelRegistry

    # --- Abort ------------------------------------------------------------------------------------------

    def _abort_function(self, environment: Mapping[str, str]) -> ProjectFunction:
        flags = self._flags
        machine = self.state_machine
        function = ProjectFunction(
            self,
            "RolloutAbort",
            handler=handler_name(ABORT_MODULE),
            description=f"{self._config.prefix}: abort a running rollout (alarm, kill switch, timeout)",
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": "rollout-abort",
                "STATE_MACHINE_ARN": machine.state_machine_arn,
                "APPCONFIG_APPLICATION": flags.application_name,
                "APPCONFIG_ENVIRONMENT": flags.environment_name,
                "APPCONFIG_PROFILE": flags.profile_name,
            },
            timeout=Duration.minutes(1),
            log_key=self._registry.key,
            memory_size=256,
        )
        role = function.role
        # Who holds the endpoint, and what that rollout (or a running one without a live lease) recorded.
        self.lock_table.grant(role, "dynamodb:GetItem")
        # A lock a failed execution left after recording its outcome: a delete conditional on the holder.
        self.lock_table.grant(role, "dynamodb:DeleteItem")
        self.ledger_table.grant(role, "dynamodb:Query")
        stack = Stack.of(self)
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.allow(["states:DescribeExecution", "states:StopExecution"], [executions])
        machine.grant_start_execution(role)
        # A running rollout whose lease expired is found from its execution.
        function.allow(["states:ListExecutions"], [machine.state_machine_arn])
        flags.grant_read(role)
        acknowledge_wildcard_resources(
            role,
            [executions],
            "Executions are named at run time; only this state machine's executions can be described or "
            "stopped.",
        )
        return function

    def _abort_rules(self, alarms: Mapping[str, EndpointAlarms]) -> list[events.Rule]:
        """An endpoint's composite alarm in ALARM, the flags deployed, a rollout timed out or stopped."""
        prefix = self._config.prefix
        undelivered = undelivered_events_queue(self, "UndeliveredAborts", of="the abort rules' target")
        self.undelivered_aborts = undelivered
        # By name: the alarms live in the endpoints' own stacks.
        alarm_arns = [
            Stack.of(self).format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=composite_alarm_name(prefix, endpoint),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for endpoint in self._config.endpoints
            if endpoint.name in alarms
        ]
        # The alarms outside the stack that guard the endpoints' rollouts: referenced, never owned.
        alarm_arns += guardrail_alarm_arns(Stack.of(self), self._config)
        patterns = {
            rule_id: (
                f"{prefix}: an endpoint's composite alarm or a guardrail alarm in ALARM aborts its running "
                "rollout",
                alarm_raised_pattern(arns),
            )
            for rule_id, arns in split_for_rules("AlarmAborts", alarm_arns, ALARMS_PER_RULE).items()
        }
        patterns.update(
            {
                "KillSwitchAborts": (
                    f"{prefix}: a flag deployment aborts the rollouts whose kill switch it turned on",
                    events.EventPattern(source=["aws.appconfig"], detail_type=["On Deployment Complete"]),
                ),
                "EndedExecutionAborts": (
                    f"{prefix}: a rollout timed out or stopped by hand is rolled back and its lock released; "
                    "one that failed after its outcome has its lock released",
                    execution_ended_pattern(self.state_machine, ABORTING_STATUSES),
                ),
            }
        )
        rules = []
        for rule_id, (description, pattern) in patterns.items():
            rule = events.Rule(self, rule_id, description=description, event_pattern=pattern)
            rule.add_target(function_target(self.abort_function, dead_letter_queue=undelivered))
            rules.append(rule)
        # AppConfig puts deployment events on the default bus through its own extension.
        appconfig.CfnExtensionAssociation(
            self,
            "FlagDeploymentEvents",
            extension_identifier=APPCONFIG_EVENTS_EXTENSION,
            resource_identifier=self._flags.application.application_arn,
        )
        return rules

    def _abort_dead_letters(self) -> None:
        """An abort that fails after Lambda's two retries of its asynchronous invocation (throttled by
        AppConfigData or Step Functions, say) waits in the undelivered aborts' queue for a person, beside
        the events the rules could not deliver: it never vanishes."""
        function = self.abort_function.function
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.undelivered_aborts.queue_arn
        )
        self.abort_function.allow(["sqs:SendMessage"], [self.undelivered_aborts.queue_arn])

    def _reserve_concurrency(self) -> None:
        """The abort and rollback functions keep their own concurrency (config `reserved_concurrency`)."""
        reserved = self._config.reserved_concurrency
        for function, executions in (
            (self.abort_function.function, reserved.abort),
            (self.functions.rollback.function, reserved.rollback),
        ):
            if executions is None:
                continue
            cfn_function = function.node.default_child
            assert isinstance(cfn_function, lambda_.CfnFunction)
            cfn_function.reserved_concurrent_executions = executions

    def _failure_alarms(self) -> list[cloudwatch.Alarm]:
        """What must not end silently, as alarms on the environment's topic: an abort or rollback that
        errs, an event waiting in a dead-letter queue, a rollout execution that timed out or genuinely
        failed."""
        prefix = self._config.prefix
        window = Duration.minutes(5)
        metrics: dict[str, tuple[cloudwatch.IMetric, str]] = {
            "AbortErrorsAlarm": (
                self.abort_function.function.metric_errors(period=window, statistic="Sum"),
                "abort-errors",
            ),
            "RollbackErrorsAlarm": (
                self.functions.rollback.function.metric_errors(period=window, statistic="Sum"),
                "rollback-errors",
            ),
            "UndeliveredAbortsAlarm": (
                self.undelivered_aborts.metric_approximate_number_of_messages_visible(
                    period=window, statistic="Maximum"
                ),
                "undelivered-aborts",
            ),
            "UndeliveredApprovalsAlarm": (
                self.undelivered_approvals.metric_approximate_number_of_messages_visible(
                    period=window, statistic="Maximum"
                ),
                "undelivered-approvals",
            ),
            "RolloutTimedOutAlarm": (
                self.state_machine.metric_timed_out(period=window, statistic="Sum"),
                "rollout-timed-out",
            ),
            "RolloutFailedAlarm": (self._failed_executions(window), "rollout-failed"),
        }
        descriptions = {
            "abort-errors": "The rollout abort function failed: an abort may not have stopped its rollout.",
            "rollback-errors": "The rollback function failed: a rollout may not be rolled back.",
            "undelivered-aborts": "An abort could not be delivered or failed: its events wait for a person.",
            "undelivered-approvals": "An approved package's rollout could not be started: see the queue.",
            "rollout-timed-out": "A rollout execution timed out: it is rolled back, check that it was.",
            "rollout-failed": "A rollout execution failed other than by rolling back or being refused (a "
            "rollback that failed, a lock not released, an abort not rolled back): the topic and its "
            "execution say why.",
        }
        return [
            failure_alarm(
                self,
                construct_id,
                name=f"{prefix}-{name}",
                description=descriptions[name],
                metric=metric,
                topic=self._notifications.topic,
            )
            for construct_id, (metric, name) in metrics.items()
        ]

    def _failed_executions(self, window: Duration) -> cloudwatch.IMetric:
        """The executions that failed other than by an ordinary end, counted from the machine's own log:
        whatever function failed, the machine logs how its execution ended."""
        log_group = self.node.find_child("StateMachineLogs")
        assert isinstance(log_group, logs.LogGroup)
        pattern = logs.FilterPattern.all(
            logs.FilterPattern.string_value("$.type", "=", "ExecutionFailed"),
            *(
                logs.FilterPattern.string_value("$.details.error", "!=", error)
                for error in sorted(ORDINARY_FAILED_ENDS)
            ),
        )
        metric_filter = log_group.add_metric_filter(
            "FailedExecutions",
            filter_pattern=pattern,
            metric_namespace=METRICS_NAMESPACE,
            metric_name=f"{self.state_machine_name}-failed-executions",
            metric_value="1",
        )
        return metric_filter.metric(period=window, statistic="Sum")
