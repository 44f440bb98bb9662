"""The rollout workflow: a Step Functions state machine over the rollout Lambdas, its tables and triggers.

Each handler receives the whole state and returns the whole state (tasks are `payload_response_only`;
the start task gets the execution's input with `execution_id` merged in), so the Choice states read what
the last handler decided: `gates.passed`, `deployment.status` (with `request.strategy`: blue/green goes
from in service to promote), `decision.action`, and the Wait reads `bake_seconds`. A failed start (the
lock is held elsewhere, or the input is refused) ends the execution at once: nothing was deployed.

Every task retries the transient errors with backoff; every task after the start catches everything else
into the rollback path, which never loops back: its function failing past its retries is tried once more
after a pause, and a second failure moves the traffic to the champion from the workflow itself, releases
the lock, is told on the topic and ends the execution as failed, for a person to look at. Whenever the
function that tells fails, the workflow publishes to the topic itself. A rolled-back rollout ends in the
Fail state "Rolled back" so that the console and the execution-status events show plainly that the
candidate did not ship; the ledger holds why. One the judge stopped for too little data restores the
champion on the same path and ends in "Too little data" (outcome `inconclusive`): nothing was shown wrong
with the candidate.

Each function's role grants exactly the calls its handler makes (see `tests/infra/test_rollout_workflow.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.alarms import EndpointAlarms
from infra.config import EnvironmentConfig
from infra.endpoint import ModelEndpoint
from infra.endpoint_settings import grant_read_endpoint_settings, settings_path_environment
from infra.feature_flags import FeatureFlags
from infra.lambda_function import ProjectFunction
from infra.nag import acknowledge_wildcard_resources
from infra.notifications import Notifications, failure_alarm
from infra.registry import ModelRegistry
from infra.rollout_targets import RolloutTargets
from infra.state_machine import acknowledge_state_machine_role, logged_state_machine
from infra.workflow_task import (
    METRICS_NAMESPACE,
    NAMED_INPUT,
    START_PAYLOAD_PATH,
    WorkflowFunction,
    WorkflowFunctions,
    alarm_raised_pattern,
    execution_ended_pattern,
    function_target,
    handler_name,
    state_machine_target,
    undelivered_events_queue,
)
from lambdas.rollout.payloads import RolloutRequest

HANDLER_MODULES = (
    "rollout_start",
    "rollout_gates",
    "rollout_deploy",
    "rollout_check_deployment",
    "rollout_set_traffic",
    "rollout_judge",
    "rollout_promote",
    "rollout_rollback",
    "rollout_release",
    "rollout_resume",
)
# Not a task of the state machine: the target of the abort rules, which stops and restarts it.
ABORT_MODULE = "rollout_abort"
# AppConfig's own extension that puts deployment events on the default bus.
APPCONFIG_EVENTS_EXTENSION = "AWS.AppConfig.DeploymentNotificationsToEventBridge"
# FAILED: a rollout whose release failed after recording its outcome has its lock released.
ABORTING_STATUSES = ["TIMED_OUT", "ABORTED", "FAILED"]
# The handlers' state always carries "outcome" (null until recorded); IsPresent alone is true for null.
OUTCOME_RECORDED = sfn.Condition.and_(
    sfn.Condition.is_present("$.outcome"), sfn.Condition.is_not_null("$.outcome")
)
# SageMaker refusing a change while the endpoint is still updating: retried longer than the transient
# errors every task retries (infra/workflow_task.py).
ENDPOINT_BUSY = "EndpointBusy"
# A task that ran out of time may have made its calls or not; every rollout task can be run again with
# the same input (its endpoint calls are skipped when done, its ledger entries written once).
TIMED_OUT = "Sandbox.Timedout"
ENDPOINT_LOCKED = "EndpointLocked"
ROLLED_BACK = "RolledBack"
REFUSED = "RolloutRefused"
# The Fail states that are ordinary ends, each told on its own path: Step Functions' ExecutionsFailed counts
# them with every genuine failure, so the failure alarm counts the other failed ends from the log.
ORDINARY_FAILED_ENDS = frozenset({ROLLED_BACK, ENDPOINT_LOCKED, REFUSED})
# A Fail state after a Catch shows the caught error's cause (the handler's message) in the console.
ERROR_CAUSE = "$.error.Cause"
# Where the rollback function's own failure goes: `error` keeps the reason it rolls back for.
ROLLBACK_ERROR = "$.rollback_error"
# The resume's answers that another try cannot change: nothing of the rollout was deployed, or the input
# is not an abort's.
NOT_RESUMABLE = ("RolloutNotResumable", "InvalidAbortTrigger")
# Where a telling task's own failure goes, beside the error it was to tell.
TELLING_ERROR = "$.telling_error"
# A task failing past its retries is tried once more after this pause (a throttled API, a function
# being redeployed); a second failure is told and ends the execution.
PAUSE_BEFORE_TRYING_AGAIN = Duration.minutes(5)
# SageMaker takes minutes to update an endpoint; asking once a minute costs nothing and reacts in time.
ENDPOINT_POLL = Duration.seconds(60)
# Creating instances and moving an endpoint config, twice at most (deploy and promote or roll back), plus
# every configured step baking as often as the judge may ask by default; beyond that a run is stuck, and
# its lease, no longer renewed, expires. A request that overrides the bakes upward may need a longer one.
DEPLOY_ALLOWANCE_MINUTES = 120
MAX_BAKES_PER_STEP: int = RolloutRequest.model_fields["max_bakes_per_step"].default


def workflow_timeout(config: EnvironmentConfig) -> Duration:
    """Long enough for the slowest endpoint's schedule (each endpoint may have its own)."""
    rollouts = [config.rollout_for(endpoint) for endpoint in config.endpoints]
    bakes = max(len(r.traffic_steps) * r.bake_minutes * MAX_BAKES_PER_STEP for r in rollouts)
    return Duration.minutes(DEPLOY_ALLOWANCE_MINUTES + bakes)


@dataclass(frozen=True)
class RolloutFunctions(WorkflowFunctions):
    """The workflow's step functions, one per handler module of HANDLER_MODULES, in its order."""

    start: WorkflowFunction
    gates: WorkflowFunction
    deploy: WorkflowFunction
    check_deployment: WorkflowFunction
    set_traffic: WorkflowFunction
    judge: WorkflowFunction
    promote: WorkflowFunction
    rollback: WorkflowFunction
    release: WorkflowFunction
    resume: WorkflowFunction


class RolloutWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        registry: ModelRegistry,
        endpoints: Mapping[str, ModelEndpoint],
        alarms: Mapping[str, EndpointAlarms],
        notifications: Notifications,
        flags: FeatureFlags,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._flags = flags
        self.state_machine_name = f"{config.prefix}-rollout"
        self._registry = registry
        self._notifications = notifications
        self.lock_table = self._lock_table()
        self.ledger_table = self._ledger_table()
        self._targets = RolloutTargets.of(
            Stack.of(self), endpoints=endpoints, alarms=alarms, package_groups=self._package_groups()
        )
        environment = {
            **settings_path_environment(config.prefix),
            "LOCK_TABLE": self.lock_table.table_name,
            "LEDGER_TABLE": self.ledger_table.table_name,
            "TOPIC_ARN": notifications.topic.topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        self.functions = self._functions(environment)
        for function in self.functions.all():
            grant_read_endpoint_settings(function.role, config.prefix)
        self._grant()
        self.state_machine = self._state_machine()
        # The workflow tells the topic itself when a telling function fails: SNS asks KMS for a data key.
        notifications.key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge_state_machine_role(self.state_machine, [step.function for step in self.functions.all()])
        self.abort_function = self._abort_function(environment)
        grant_read_endpoint_settings(self.abort_function.role, config.prefix)
        self.rules = [self._approval_rule(), *self._abort_rules(alarms)]
        self._abort_dead_letters()
        self.failure_alarms = self._failure_alarms()
        self._reserve_concurrency()

    # --- Tables -----------------------------------------------------------------------------------------

    def _lock_table(self) -> dynamodb.Table:
        # Both tables: the AWS-managed key shows every use in CloudTrail and needs no key policy; the data
        # (endpoint names, package ARNs, verdicts) never leaves the account.
        return dynamodb.Table(
            self,
            "LockTable",
            partition_key=dynamodb.Attribute(name="endpoint", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # A crashed run's lease is removed by DynamoDB; the handler also ignores an expired one.
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Leases are hours of state at most, but PITR costs little here and keeps the two tables alike.
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _ledger_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "LedgerTable",
            partition_key=dynamodb.Attribute(name="rollout_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sequence", type=dynamodb.AttributeType.NUMBER),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # The audit trail of every rollout decision outlives the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )

    # --- Functions --------------------------------------------------------------------------------------

    def _functions(self, environment: Mapping[str, str]) -> RolloutFunctions:
        def step(module: str, timeout: Duration | None = None, memory_size: int = 256) -> WorkflowFunction:
            return WorkflowFunction(
                self,
                "".join(part.title() for part in module.split("_")),
                module=module,
                workflow="rollout workflow",
                prefix=self._config.prefix,
                environment=environment,
                timeout=timeout,
                memory_size=memory_size,
            )

        return RolloutFunctions(
            start=step("rollout_start"),
            # The gates read captured requests and run golden inputs; the others make a few API calls.
            gates=step("rollout_gates", timeout=Duration.minutes(5), memory_size=1024),
            deploy=step("rollout_deploy"),
            check_deployment=step("rollout_check_deployment"),
            set_traffic=step("rollout_set_traffic"),
            judge=step("rollout_judge"),
            promote=step("rollout_promote"),
            rollback=step("rollout_rollback"),
            release=step("rollout_release"),
            resume=step("rollout_resume"),
        )

    def _package_groups(self) -> list[str]:
        """The package groups of the families this environment's endpoints serve."""
        return sorted({self._registry.package_group_names[e.model_family] for e in self._config.endpoints})

    # --- Least privilege --------------------------------------------------------------------------------

    def _grant(self) -> None:
        """Each function gets the calls its handler makes (lambdas/handlers/rollout_*.py), on these ARNs."""
        f = self.functions
        for function in f.all():
            if function not in (f.release, f.resume):
                # Evidence: every step appends to the ledger (conditional put, read back on a retry).
                self.ledger_table.grant(
                    function.role, "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"
                )
                # Each entry is written in a transaction that checks the lock's generation (the fence).
                self.lock_table.grant(function.role, "dynamodb:ConditionCheckItem")
            if function not in (f.start, f.check_deployment, f.release, f.resume):
                # Renewing the lease: a conditional update by the holder, then a read of who holds it.
                self.lock_table.grant(function.role, "dynamodb:UpdateItem", "dynamodb:GetItem")
        # Taking the lock: a conditional put, and a read of the lease that refused it.
        self.lock_table.grant(f.start.role, "dynamodb:PutItem", "dynamodb:GetItem")
        # Releasing it: a delete conditional on the holder.
        self.lock_table.grant(f.release.role, "dynamodb:DeleteItem")
        # Resuming an aborted rollout: its entries, read to rebuild its state; its lock taken over at a
        # new generation.
        self.ledger_table.grant(f.resume.role, "dynamodb:Query")
        self.lock_table.grant(f.resume.role, "dynamodb:UpdateItem")
        self._grant_sagemaker()
        self._grant_gates_reads()
        f.judge.allow(["cloudwatch:GetMetricData"], ["*"])
        acknowledge_wildcard_resources(
            f.judge.role,
            ["*"],
            "xray:PutTraceSegments, xray:PutTelemetryRecords and cloudwatch:GetMetricData support no "
            "resource-level permission; the judge only reads metrics.",
        )
        for function in (f.deploy, f.promote, f.rollback):
            # Endpoint configs carry the artifact key (KmsKeyId): SageMaker creates grants as the caller.
            self._registry.key.grant(function.role, "kms:CreateGrant", "kms:DescribeKey")
        self._grant_deploy()
        self._grant_notify(f.rollback)
        # A rollback that failed is told by the release that ends its path.
        self._grant_notify(f.release)

    def _grant_sagemaker(self) -> None:
        targets = self._targets
        f = self.functions
        live_config_readers = (f.start, f.gates, f.deploy, f.promote, f.rollback)
        for function in f.all():
            if function in (f.release, f.judge, f.resume):
                continue
            function.allow(["sagemaker:DescribeEndpoint"], targets.endpoints)
            if function in live_config_readers:
                function.allow(["sagemaker:DescribeEndpointConfig"], targets.endpoint_configs)
        for function in live_config_readers:
            function.allow(["sagemaker:DescribeModelPackage"], targets.packages)
            acknowledge_wildcard_resources(
                function.role,
                [*targets.packages, *targets.endpoint_configs],
                "Package versions and the endpoint's configs are named at run time: only this "
                "environment's package groups and configs named after its endpoints are reachable.",
            )
        for function in (f.deploy, f.promote, f.rollback):
            function.allow(["sagemaker:CreateEndpointConfig"], targets.endpoint_configs)
            function.allow(["sagemaker:UpdateEndpoint"], [*targets.endpoints, *targets.endpoint_configs])
        for function in (f.promote, f.rollback):
            function.allow(["sagemaker:UpdateModelPackage"], targets.packages)
        for function in (f.set_traffic, f.rollback):
            function.allow(["sagemaker:UpdateEndpointWeightsAndCapacities"], targets.endpoints)
        # The gates read the champion's model to find its package; deploy creates the candidate's model.
        f.gates.allow(["sagemaker:DescribeModel"], targets.models)
        acknowledge_wildcard_resources(
            f.gates.role,
            targets.models,
            "Models are named after their endpoint with a run-time suffix; only those are readable.",
        )

    def _grant_gates_reads(self) -> None:
        gates = self.functions.gates
        bucket = self._registry.bucket
        objects = [bucket.arn_for_objects("models/*"), bucket.arn_for_objects("data-capture/*")]
        gates.allow(["s3:GetObject"], objects)
        # Listing the newest captured requests: only under the capture prefix.
        gates.allow(
            ["s3:ListBucket"],
            [bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": ["data-capture/*"]}},
        )
        self._registry.key.grant(gates.role, "kms:Decrypt")
        acknowledge_wildcard_resources(
            gates.role,
            objects,
            "The gates read a package's gate files beside its artifact under models/ and the endpoint's "
            "captured requests under data-capture/, whose object keys are only known at run time.",
        )

    def _grant_deploy(self) -> None:
        """Deploy builds the candidate's model from its package and may hand SageMaker rollback alarms."""
        targets = self._targets
        deploy = self.functions.deploy
        deploy.allow(["sagemaker:CreateModel", "sagemaker:DescribeModel"], targets.models)
        deploy.allow(["cloudwatch:DescribeAlarms"], targets.alarms)
        deploy.allow(
            ["iam:PassRole"],
            targets.execution_roles,
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        acknowledge_wildcard_resources(
            deploy.role,
            targets.models,
            "Each rollout creates a model named after its endpoint with a suffix from the package; "
            "no other model is reachable.",
        )

    def _grant_notify(self, function: WorkflowFunction) -> None:
        """Publishing to the encrypted topic: SNS asks KMS for a data key as the caller."""
        function.allow(["sns:Publish"], [self._notifications.topic.topic_arn])
        # Not topic.grant_publish: it grants kms:GenerateDataKey* where one action is enough.
        self._notifications.key.grant(function.role, "kms:Decrypt", "kms:GenerateDataKey")

    # --- State machine ----------------------------------------------------------------------------------

    def _task(
        self, name: str, function: WorkflowFunction, payload: sfn.TaskInput | None = None
    ) -> tasks.LambdaInvoke:
        """The function's retrying task, which also waits out an endpoint that is being updated."""
        task = function.invoke(self, name, payload=payload)
        task.add_retry(
            errors=[TIMED_OUT],
            interval=Duration.seconds(5),
            max_attempts=3,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        # "Endpoint is being updated": SageMaker needs minutes, so wait longer and keep trying for ~45 min.
        task.add_retry(
            errors=[ENDPOINT_BUSY],
            interval=Duration.seconds(30),
            max_attempts=10,
            backoff_rate=1.5,
            max_delay=Duration.minutes(5),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _state_machine(self) -> sfn.StateMachine:
        return logged_state_machine(
            self,
            name=self.state_machine_name,
            definition=self._definition(),
            timeout=workflow_timeout(self._config),
            comment=f"{self._config.prefix}: gates, traffic steps with bake and judge, promote or roll back",
        )

    def _rollback_path(self) -> tasks.LambdaInvoke:
        """Restore the champion, wait for that update, come back to record; release the lock either way.

        A rollback function failing past its retries is tried once more after a pause (its own error goes
        to `rollback_error`, so the reason it rolls back for is kept). A rollback that cannot restore the
        champion (SageMaker fails every restoring update) records the outcome `failed` itself, rejects the
        package and tells why. A rollback function that fails twice cannot restore anything: the workflow
        moves the traffic to the champion itself, and the release function tells why (or the workflow,
        if that fails too). Either ends in "Rollback failed", for a person."""
        rollback = self._task("Roll back to the champion", self.functions.rollback)
        pause = sfn.Wait(
            self, "Pause before rolling back again", time=sfn.WaitTime.duration(PAUSE_BEFORE_TRYING_AGAIN)
        )
        rollback_again = self._task("Roll back to the champion again", self.functions.rollback)
        check = self._task("Is the champion restored?", self.functions.check_deployment)
        released = self._task("Release the lock after the rollback", self.functions.release)
        released_anyway = self._task("Release the lock after a failed rollback", self.functions.release)
        rolled_back = sfn.Fail(
            self, "Rolled back", error=ROLLED_BACK, cause="The challenger was rolled back; see the ledger."
        )
        # Stopped for too little data: the champion is restored the same way, but nothing was shown wrong.
        too_little_data = sfn.Fail(
            self,
            "Too little data",
            error="Inconclusive",
            cause="Too little data to judge the challenger: the champion serves again and the package waits "
            "for approval; the notification and the ledger say what would fit.",
        )
        ended = (
            sfn.Choice(self, "Rolled back or too little data?")
            .when(sfn.Condition.string_equals("$.outcome", "inconclusive"), too_little_data)
            .otherwise(rolled_back)
        )
        needs_person = sfn.Fail(
            self,
            "Rollback failed",
            error="RollbackFailed",
            cause="The champion could not be restored: the topic and the ledger say why; the endpoint "
            "needs a person (docs/rollout-workflow.md, Failure modes).",
        )
        told_anyway = self._told_by_the_workflow(
            "Tell from the workflow that the rollback failed",
            event="rollout_rollback_failed",
            action="the endpoint needs a person: check which config it runs and restore the champion",
            reason=f"{ROLLBACK_ERROR}.Cause",
        )
        released.add_catch(
            sfn.Fail(
                self,
                "Rolled back, lock not released",
                error="LockNotReleased",
                cause_path=ERROR_CAUSE,
            ),
            errors=["States.ALL"],
            result_path="$.error",
        )
        released_anyway.add_catch(told_anyway, errors=["States.ALL"], result_path=TELLING_ERROR)
        told_anyway.add_catch(needs_person, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        told_anyway.next(needs_person)
        rollback.add_catch(pause, errors=["States.ALL"], result_path=ROLLBACK_ERROR)
        pause.next(rollback_again)
        traffic_back = self._traffic_to_the_champion()
        rollback_again.add_catch(traffic_back, errors=["States.ALL"], result_path=ROLLBACK_ERROR)
        traffic_back.add_catch(released_anyway, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        traffic_back.next(released_anyway)
        # A check that fails hands back to the rollback, which looks at the endpoint itself: an update
        # still running is waited for, a restored champion is recorded.
        check.add_catch(rollback, errors=["States.ALL"], result_path="$.error")
        wait = sfn.Wait(self, "Wait for the rollback", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        recorded = (
            sfn.Choice(self, "Is the rollback recorded?")
            .when(sfn.Condition.string_equals("$.outcome", "failed"), released_anyway)
            .when(OUTCOME_RECORDED, released.next(ended))
            .otherwise(wait)
        )
        rollback.next(recorded)
        rollback_again.next(recorded)
        wait.next(check)
        # Whatever the update ended in, the rollback looks again: its own restoring update failed (it sends
        # it again, a few times), or another update it waited for has ended.
        check.next(
            sfn.Choice(self, "Is the champion back in service?")
            .when(sfn.Condition.string_equals("$.deployment.status", "in_service"), rollback)
            .when(sfn.Condition.string_equals("$.deployment.status", "failed"), rollback)
            .otherwise(wait)
        )
        released_anyway.next(needs_person)
        return rollback

    def _promotion_path(self, rollback: sfn.IChainable) -> tasks.LambdaInvoke:
        """Swap the endpoint to the candidate, wait for that update, come back to record and approve."""
        promote = self._task("Promote the challenger", self.functions.promote)
        check = self._task("Is the promotion done?", self.functions.check_deployment)
        release = self._task("Release the lock", self.functions.release)
        for task in (promote, check):
            task.add_catch(rollback, errors=["States.ALL"], result_path="$.error")
        release.add_catch(
            sfn.Fail(
                self,
                "Promoted, lock not released",
                error="LockNotReleased",
                cause_path=ERROR_CAUSE,
            ),
            errors=["States.ALL"],
            result_path="$.error",
        )
        wait = sfn.Wait(self, "Wait for the promotion", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        promote.next(
            sfn.Choice(self, "Is the promotion recorded?")
            .when(OUTCOME_RECORDED, release.next(sfn.Succeed(self, "Promoted")))
            .otherwise(wait)
        )
        wait.next(check)
        check.next(
            sfn.Choice(self, "Is the candidate in service?")
            .when(sfn.Condition.string_equals("$.deployment.status", "in_service"), promote)
            .when(sfn.Condition.string_equals("$.deployment.status", "failed"), rollback)
            .otherwise(wait)
        )
        return promote

    def _traffic_to_the_champion(self) -> tasks.CallAwsService:
        """All traffic to the champion by Step Functions' own SageMaker call, when the rollback function
        has failed twice: users leave the candidate within seconds although nothing else can be done.
        Where there is no weighted challenger (shadow, blue/green) or the endpoint is being updated,
        SageMaker refuses it and the failed path goes on."""
        variants = "$.request.variants"
        call = tasks.CallAwsService(
            self,
            "Send all traffic to the champion, from the workflow",
            service="sagemaker",
            action="updateEndpointWeightsAndCapacities",
            parameters={
                "EndpointName": sfn.JsonPath.string_at("$.request.endpoint_name"),
                "DesiredWeightsAndCapacities": [
                    {"VariantName": sfn.JsonPath.string_at(f"{variants}.champion"), "DesiredWeight": 1},
                    {"VariantName": sfn.JsonPath.string_at(f"{variants}.challenger"), "DesiredWeight": 0},
                ],
            },
            iam_resources=self._targets.endpoints,
            iam_action="sagemaker:UpdateEndpointWeightsAndCapacities",
            result_path=sfn.JsonPath.DISCARD,
        )
        call.add_retry(
            errors=["States.ALL"],
            interval=Duration.seconds(10),
            max_attempts=3,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return call

    def _tell_not_started(self, name: str, end: sfn.Fail) -> tasks.LambdaInvoke:
        """The release function told that the start failed; if it cannot, the workflow tells itself. The
        execution ends at `end` either way."""
        tell = self._task(
            name,
            self.functions.release,
            sfn.TaskInput.from_object({"not_started": sfn.JsonPath.entire_payload}),
        )
        # The state keeps the start's error for the Fail's cause, even if telling failed.
        told_anyway = self._told_by_the_workflow(
            f"{name}, from the workflow",
            event="rollout_not_started",
            action="the package stays approved: start its rollout again once the endpoint is free",
        )
        tell.add_catch(told_anyway, errors=["States.ALL"], result_path=TELLING_ERROR)
        told_anyway.add_catch(end, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        told_anyway.next(end)
        tell.next(end)
        return tell

    def _told_by_the_workflow(
        self,
        name: str,
        *,
        event: str,
        action: str,
        rollout_id: str = "$$.Execution.Id",
        reason: str = ERROR_CAUSE,
        after_telling_failed: bool = True,
    ) -> tasks.SnsPublish:
        """The topic told by Step Functions itself, when the function that tells has failed past its
        retries (or there is none): a path that shares nothing with the functions but the topic. The
        paths are JSONPaths of the state; the state passes through unchanged."""
        message: dict[str, object] = {
            "event": event,
            "rollout_id": sfn.JsonPath.string_at(rollout_id),
            "input": sfn.JsonPath.object_at("$$.Execution.Input"),
            "reason": sfn.JsonPath.string_at(reason),
            "action": action,
        }
        if after_telling_failed:
            message["telling_failed"] = sfn.JsonPath.string_at(f"{TELLING_ERROR}.Cause")
        publish = tasks.SnsPublish(
            self,
            name,
            topic=self._notifications.topic,
            subject=f"{self._config.prefix}: {event.replace('_', ' ')}",
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        publish.add_retry(
            errors=["SNS.ThrottledException", "SNS.InternalErrorException", "States.Timeout"],
            interval=Duration.seconds(2),
            max_attempts=4,
            backoff_rate=2,
        )
        return publish

    def _definition(self) -> sfn.IChainable:
        rollback = self._rollback_path()
        promote = self._promotion_path(rollback)
        name_rollout = sfn.Pass(self, "Name the rollout after this execution", parameters=NAMED_INPUT)
        take_lock = self._task(
            "Take the endpoint's lock",
            self.functions.start,
            sfn.TaskInput.from_json_path_at(START_PAYLOAD_PATH),
        )
        locked = sfn.Fail(
            self,
            "Another rollout holds this endpoint",
            error=ENDPOINT_LOCKED,
            cause_path=ERROR_CAUSE,
        )
        refused = sfn.Fail(
            self,
            "Rollout refused",
            error=REFUSED,
            cause_path=ERROR_CAUSE,
        )
        # Nothing is deployed before the start succeeds, so there is nothing to roll back. A start that
        # fails is told on the topic (the approval is refused, not queued: a person starts it again) and
        # a lock this run took before failing is released; then the execution ends with the start's error.
        take_lock.add_catch(
            self._tell_not_started("Tell that another rollout holds the endpoint", locked),
            errors=[ENDPOINT_LOCKED],
            result_path="$.error",
        )
        take_lock.add_catch(
            self._tell_not_started("Tell why the rollout was refused", refused),
            errors=["States.ALL"],
            result_path="$.error",
        )

        gates = self._task("Run pre-traffic gates", self.functions.gates)
        deploy = self._task("Deploy the challenger at 0 %", self.functions.deploy)
        check = self._task("Is the deployment done?", self.functions.check_deployment)
        shift = self._task("Shift traffic to the next step", self.functions.set_traffic)
        judge = self._task("Ask the judge", self.functions.judge)
        for task in (gates, deploy, check, shift, judge):
            task.add_catch(rollback, errors=["States.ALL"], result_path="$.error")

        wait_for_endpoint = sfn.Wait(self, "Wait for the endpoint", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        bake = sfn.Wait(self, "Bake", time=sfn.WaitTime.seconds_path("$.bake_seconds"))
        wait_for_endpoint.next(check)
        shift.next(bake)
        bake.next(judge)
        in_service = sfn.Condition.string_equals("$.deployment.status", "in_service")
        # blue_green: SageMaker's guardrails have shifted all traffic and baked by then; nothing to step.
        guarded = sfn.Condition.string_equals("$.request.strategy", "blue_green")
        check.next(
            sfn.Choice(self, "Is the endpoint in service?")
            .when(sfn.Condition.and_(in_service, guarded), promote)
            .when(in_service, shift)
            .when(sfn.Condition.string_equals("$.deployment.status", "failed"), rollback)
            .otherwise(wait_for_endpoint)
        )
        judge.next(
            sfn.Choice(self, "What did the judge say?")
            .when(sfn.Condition.string_equals("$.decision.action", "advance"), shift)
            .when(sfn.Condition.string_equals("$.decision.action", "bake"), bake)
            .when(sfn.Condition.string_equals("$.decision.action", "promote"), promote)
            .otherwise(rollback)
        )
        gates_passed = (
            sfn.Choice(self, "Did the gates pass?")
            .when(sfn.Condition.boolean_equals("$.gates.passed", True), deploy.next(wait_for_endpoint))
            .otherwise(rollback)
        )
        resume = self._resume(rollback)
        name_rollout.next(take_lock).next(gates).next(gates_passed)
        # The abort function starts the machine with {"abort": ...} to roll a stopped rollout back.
        return (
            sfn.Choice(self, "Abort or new rollout?")
            .when(sfn.Condition.is_present("$.abort"), resume)
            .otherwise(name_rollout)
        )

    def _resume(self, rollback: tasks.LambdaInvoke) -> tasks.LambdaInvoke:
        """Load the aborted rollout and hand it to the rollback. A rollout the ledger cannot resume (it
        never started) ends at once; a resume failing past its retries is tried once more after a pause,
        and a second failure is told by the workflow: the aborted rollout is not rolled back."""
        resume = self._task("Load the aborted rollout", self.functions.resume)
        pause = sfn.Wait(
            self,
            "Pause before loading the aborted rollout again",
            time=sfn.WaitTime.duration(PAUSE_BEFORE_TRYING_AGAIN),
        )
        resume_again = self._task("Load the aborted rollout again", self.functions.resume)
        not_found = sfn.Fail(
            self, "Aborted rollout not found", error="RolloutNotResumable", cause_path=ERROR_CAUSE
        )
        not_resumed = sfn.Fail(
            self, "Aborted rollout not rolled back", error="RolloutNotResumed", cause_path=ERROR_CAUSE
        )
        told = self._told_by_the_workflow(
            "Tell that the aborted rollout was not rolled back",
            event="rollout_rollback_failed",
            action="the aborted rollout was not rolled back: restore the endpoint's champion and release "
            "its lock, or abort it again",
            rollout_id="$.abort.rollout_id",
            after_telling_failed=False,
        )
        resume.add_catch(not_found, errors=list(NOT_RESUMABLE), result_path="$.error")
        # The input stays as it was for the second try (the handler refuses unknown keys).
        resume.add_catch(pause, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        pause.next(resume_again)
        resume_again.add_catch(not_found, errors=list(NOT_RESUMABLE), result_path="$.error")
        resume_again.add_catch(told, errors=["States.ALL"], result_path="$.error")
        told.add_catch(not_resumed, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        told.next(not_resumed)
        resume.next(rollback)
        resume_again.next(rollback)
        return resume

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
        alarm_arns = [a.composite_alarm.alarm_arn for a in alarms.values()]
        patterns = {
            "AlarmAborts": (
                f"{prefix}: an endpoint's composite alarm in ALARM aborts its running rollout",
                alarm_raised_pattern(alarm_arns),
            ),
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

    # --- Triggers ---------------------------------------------------------------------------------------

    def _approval_rule(self) -> events.Rule:
        rule = events.Rule(
            self,
            "PackageApproved",
            description=f"{self._config.prefix}: an approved model package starts its rollout",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelApprovalStatus": ["Approved"], "ModelPackageGroupName": self._package_groups()},
            ),
        )
        # An approval whose rollout could not be started must not vanish: it waits here for a person.
        undelivered = undelivered_events_queue(self, "UndeliveredApprovals", of="the approval rule's target")
        # The event itself is the execution's input.
        rule.add_target(state_machine_target(self.state_machine, dead_letter_queue=undelivered))
        self.undelivered_approvals = undelivered
        return rule
