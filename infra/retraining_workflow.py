"""The retraining workflow: new data, a schedule or a drift alarm trains, evaluates and registers a model.

A Step Functions state machine over the retraining Lambdas (`lambdas/handlers/retraining_*.py`): take the
family's lock (the rollout's lock table, key ``retraining#<family>``; held -> "Already retraining", no
failure), then three SageMaker jobs, each started by a task and polled by a Wait/check loop (the Lambdas
call Create*/Describe*Job: Step Functions' .sync integrations would poll for us, but a Lambda per step
keeps every call testable and the state in one shape), then the gate and the registration, then the lock
is released. An approved package starts its rollout through the rollout's approval rule, the same path a
person's approval takes; a pending one waits in the registry for a person.

Every task retries Lambda's transient errors; every failure after the lock is caught into one path that
publishes the reason to the notifications topic, releases the lock and ends the execution as failed
with the caught error and its message.

The training data lives in its own bucket (objects under ``<family>/``), encrypted with the registry's
key, TLS-only, versioned, with EventBridge notifications on: a new object under a family's prefix starts
that family's retraining. The triggers (the schedule, new data, the drift alarms) are per family, so they
live in the family's stack (`RetrainingTriggers`) and start this machine by its name, which the platform
publishes as an SSM parameter (infra/platform_parameters.py). Each function's role grants exactly the
calls its handler makes, and the SageMaker jobs run as a role that reads the data, reads and writes the
run's prefix of the artifact bucket and pulls the training image (see
`tests/infra/test_retraining_workflow.py`).

An execution stopped by hand or timed out runs none of its states: a rule on its status change (ABORTED,
TIMED_OUT) invokes `retraining_ended`, which stops the run's job in progress, releases the family's lock
if that execution still holds it and notifies (`lambdas/handlers/retraining_ended.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import Endpoint, EnvironmentConfig
from infra.drift_monitor import drift_alarm_name
from infra.endpoint_settings import grant_read_settings
from infra.lambda_function import ProjectFunction
from infra.nag import acknowledge_wildcard_resources
from infra.notifications import Notifications, failure_alarm
from infra.platform_parameters import SharedRetraining
from infra.registry import ModelRegistry, package_group_name
from infra.retraining_job_role import RetrainingJobRole
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
from lambdas.retraining.jobs import ARTIFACTS_PREFIX, job_name_stem
from lambdas.retraining.state import JobStep
from lambdas.shared.endpoint_store import FAMILY_SETTINGS_PATH_VARIABLE, family_settings_path

HANDLER_MODULES = (
    "retraining_start",
    "retraining_preprocess",
    "retraining_train",
    "retraining_evaluate",
    "retraining_check_job",
    "retraining_register",
    "retraining_release",
)
ERROR = "$.error"
# lambdas/retraining/state.py: RetrainingState.notify_error
NOTIFY_ERROR = "$.notify_error"
# Three jobs at most their configured runtime each, plus the polls, the gate and the registration.
WORKFLOW_ALLOWANCE_MINUTES = 60
# Not a task of the state machine: the target of the rule for an execution stopped by hand or timed out.
ENDED_MODULE = "retraining_ended"
# lambdas/retraining/ended.py: ENDED_STATUSES
ENDED_STATUSES = ["ABORTED", "TIMED_OUT"]


def workflow_timeout(config: EnvironmentConfig) -> Duration:
    return Duration.minutes(3 * config.retraining.max_runtime_minutes + WORKFLOW_ALLOWANCE_MINUTES)


def execution_input(family: str, kind: str, detail: Mapping[str, object] | None = None) -> dict[str, object]:
    """The state machine's input as a trigger sends it."""
    return {"model_family": family, "trigger": {"kind": kind, "detail": dict(detail or {})}}


@dataclass(frozen=True)
class RetrainingFunctions(WorkflowFunctions):
    """The workflow's step functions, one per handler module of HANDLER_MODULES, in its order."""

    start: WorkflowFunction
    preprocess: WorkflowFunction
    train: WorkflowFunction
    evaluate: WorkflowFunction
    check_job: WorkflowFunction
    register: WorkflowFunction
    release: WorkflowFunction

    def job_starters(self) -> dict[JobStep, WorkflowFunction]:
        """The function that starts each step's SageMaker job."""
        return {"preprocess": self.preprocess, "train": self.train, "evaluate": self.evaluate}


class RetrainingWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        registry: ModelRegistry,
        lock_table: dynamodb.ITable,
        notifications: Notifications,
        artifact_readers: Sequence[iam.IRole] = (),
        gate_readers: Sequence[iam.IRole] = (),
    ) -> None:
        """`artifact_readers` (the endpoints' execution roles) load retrained artifacts; `gate_readers`
        (the rollout's gates function) read the gate files beside them. What starts a run is in each
        family's stack (`RetrainingTriggers`)."""
        super().__init__(scope, construct_id)
        retraining = config.retraining
        if retraining.training_image_uri is None:
            raise ValueError("retraining.training_image_uri is required for the retraining workflow")
        self._config = config
        self._registry = registry
        self._lock_table = lock_table
        self._notifications = notifications
        self._image_uri = retraining.training_image_uri
        self.state_machine_name = f"{config.prefix}-retraining"
        self.families = config.model_families
        self.package_groups = {family: registry.package_group_names[family] for family in self.families}
        self.data_bucket = self._data_bucket()
        self.job_role = RetrainingJobRole(
            self,
            "JobRole",
            prefix=config.prefix,
            data_bucket=self.data_bucket,
            registry=registry,
            image_uri=self._image_uri,
        )
        self.functions = self._functions()
        for function in self.functions.all():
            grant_read_settings(function.role, family_settings_path(config.prefix))
        self._grant()
        self._grant_artifact_readers(artifact_readers, gate_readers)
        self.state_machine = self._state_machine()
        self._acknowledge_state_machine_role()
        self.ended_function = self._ended_function()
        grant_read_settings(self.ended_function.role, family_settings_path(config.prefix))
        self.ended_rule = self._ended_rule()
        self.failure_alarms = self._failure_alarms()

    # --- Data -------------------------------------------------------------------------------------------

    def _data_bucket(self) -> s3.Bucket:
        registry = self._registry
        bucket = s3.Bucket(
            self,
            "TrainingData",
            bucket_name=self._config.retraining.data_bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=registry.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=registry.access_log_bucket,
            server_access_logs_prefix="training-data/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # "Object Created" events start the family's retraining. The bucket's own property, not
        # event_bridge_enabled, which adds a custom-resource Lambda to set the same thing.
        resource = bucket.node.default_child
        assert isinstance(resource, s3.CfnBucket)
        resource.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        return bucket

    def _artifacts(self, pattern: str = "*") -> str:
        return self._registry.bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}/{pattern}")

    # --- Functions --------------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        config = self._config
        retraining = config.retraining
        stack = Stack.of(self)
        jobs = {
            "name_prefix": config.prefix,
            "image_uri": self._image_uri,
            "recipe": retraining.recipe,
            "seed": retraining.seed,
            "processing_instance_type": retraining.processing_instance_type,
            "training_instance_type": retraining.training_instance_type,
            "volume_size_gb": retraining.volume_size_gb,
            "max_runtime_minutes": retraining.max_runtime_minutes,
        }
        return {
            "LOCK_TABLE": self._lock_table.table_name,
            "DATA_BUCKET": self.data_bucket.bucket_name,
            "ARTIFACTS_BUCKET": self._registry.bucket.bucket_name,
            "SAGEMAKER_ROLE_ARN": self.job_role.role_arn,
            "AUTO_APPROVE": "true" if retraining.auto_approve else "false",
            "JOBS": stack.to_json_string(jobs),
            FAMILY_SETTINGS_PATH_VARIABLE: family_settings_path(config.prefix),
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }

    def _functions(self) -> RetrainingFunctions:
        def step(module: str) -> WorkflowFunction:
            return WorkflowFunction(
                self,
                "".join(part.title() for part in module.removeprefix("retraining_").split("_")),
                module=module,
                workflow="retraining workflow",
                prefix=self._config.prefix,
                environment=self._environment(),
                log_key=self._registry.key,
            )

        return RetrainingFunctions(
            start=step("retraining_start"),
            preprocess=step("retraining_preprocess"),
            train=step("retraining_train"),
            evaluate=step("retraining_evaluate"),
            check_job=step("retraining_check_job"),
            register=step("retraining_register"),
            release=step("retraining_release"),
        )

    # --- Least privilege --------------------------------------------------------------------------------

    def job_arns(self, kind: str) -> list[str]:
        """ARNs of this environment's jobs of a kind ("processing-job", "training-job"): every family's
        job name starts with "<prefix>-" (`job_name_stem` keeps more than the prefix). One pattern, not one
        per family: a role's policies stop at 10 KB inline, and the policies keep their size however many
        families the environment retrains."""
        prefix = self._config.prefix
        assert all(job_name_stem(prefix, family).startswith(f"{prefix}-") for family in self.families)
        return [Stack.of(self).format_arn(service="sagemaker", resource=kind, resource_name=f"{prefix}-*")]

    def _grant(self) -> None:
        """Each function gets the calls its handler makes (lambdas/handlers/retraining_*.py) on these ARNs."""
        f = self.functions
        table = self._lock_table
        # Taking the lock: a conditional put, and a read of the lease that refused it.
        table.grant(f.start.role, "dynamodb:PutItem", "dynamodb:GetItem")
        # Renewing it at every step: a conditional update by the holder, then a read of who holds it.
        for function in (*f.job_starters().values(), f.check_job, f.register):
            table.grant(function.role, "dynamodb:UpdateItem", "dynamodb:GetItem")
        # Releasing it: a delete conditional on the holder.
        table.grant(f.release.role, "dynamodb:DeleteItem")

        processing_jobs, training_jobs = self.job_arns("processing-job"), self.job_arns("training-job")
        pass_job_role = iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[self.job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        for step, function in f.job_starters().items():
            if step == "train":
                function.allow(["sagemaker:CreateTrainingJob"], training_jobs)
            else:
                function.allow(["sagemaker:CreateProcessingJob"], processing_jobs)
            function.role.add_to_principal_policy(pass_job_role)
            acknowledge_wildcard_resources(
                function.role,
                training_jobs if step == "train" else processing_jobs,
                "Jobs are named per run at run time; only names starting with this environment's "
                "family stem can be created.",
            )
        f.check_job.allow(["sagemaker:DescribeProcessingJob"], processing_jobs)
        f.check_job.allow(["sagemaker:DescribeTrainingJob"], training_jobs)
        acknowledge_wildcard_resources(
            f.check_job.role,
            [*processing_jobs, *training_jobs],
            "Jobs are named per run at run time; only this environment's retraining jobs can be described.",
        )
        self._grant_register()

    def _grant_register(self) -> None:
        """The registration reads the evaluation's report and manifest, then creates a package version."""
        stack = Stack.of(self)
        register = self.functions.register
        run_objects = self._artifacts()
        register.allow(["s3:GetObject"], [run_objects])
        self._registry.key.grant(register.role, "kms:Decrypt")
        # Every family's group is "<prefix>-<family>" (infra/registry.py): one pattern for them all, as for
        # the jobs, so the policy keeps its size however many families there are.
        prefix = self._config.prefix
        assert all(group.startswith(f"{prefix}-") for group in self.package_groups.values())
        packages = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{prefix}-*/*"
        )
        package_groups = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=f"{prefix}-*"
        )
        register.allow(["sagemaker:CreateModelPackage"], [packages, package_groups])
        acknowledge_wildcard_resources(
            register.role,
            [run_objects, packages, package_groups],
            "The evaluation's files are under the run's folder named at run time; package versions are "
            "numbered by SageMaker, and only in this environment's groups (named <prefix>-<family>).",
        )

    def _grant_artifact_readers(
        self, artifact_readers: Sequence[iam.IRole], gate_readers: Sequence[iam.IRole]
    ) -> None:
        """A retrained package's artifact and gate files live under retraining/, not models/: the endpoints
        load the one and the rollout's gates read the others."""
        models = self._artifacts("*/model/*")
        gate_files = self._artifacts("*/gates/*")
        for role, objects, reason in (
            *(
                (role, models, "model.tar.gz of a retrained version, which a rollout deploys")
                for role in artifact_readers
            ),
            *(
                (role, gate_files, "the gate files beside a retrained version's artifact")
                for role in gate_readers
            ),
        ):
            role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
            acknowledge_wildcard_resources(
                role,
                [objects],
                f"Reads {reason}; run and job names are only known at run time, and only retraining's "
                "folders are readable.",
            )

    # --- State machine ----------------------------------------------------------------------------------

    def _notify(self, name: str, outcome: str) -> tasks.SnsPublish:
        """Publish the caught error to the notifications topic; the state passes through unchanged."""
        publish = tasks.SnsPublish(
            self,
            name,
            topic=self._notifications.topic,
            subject=f"{self._config.prefix}: retraining {outcome}",
            message=sfn.TaskInput.from_object(
                {
                    "event": f"retraining_{outcome}",
                    "execution_id": sfn.JsonPath.string_at("$$.Execution.Id"),
                    "input": sfn.JsonPath.object_at("$$.Execution.Input"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        publish.add_retry(
            errors=["SNS.ThrottledException", "SNS.InternalErrorException", "States.Timeout"],
            interval=Duration.seconds(2),
            max_attempts=4,
            backoff_rate=2,
        )
        return publish

    def _failure_path(self) -> tasks.SnsPublish:
        notify = self._notify("Notify the failure", "failed")
        release = self.functions.release.invoke(
            self, "Release the lock after the failure", result_path=sfn.JsonPath.DISCARD
        )
        failed = sfn.Fail(self, "Retraining failed", error_path="$.error.Error", cause_path="$.error.Cause")
        # A notification that cannot be sent must not keep the family locked.
        notify.add_catch(release, errors=["States.ALL"], result_path=NOTIFY_ERROR)
        release.add_catch(
            sfn.Fail(
                self,
                "Retraining failed, lock not released",
                error_path="$.error.Error",
                cause_path="$.error.Cause",
            ),
            errors=["States.ALL"],
            result_path="$.release_error",
        )
        notify.next(release).next(failed)
        return notify

    def _job(
        self, step: JobStep, title: str, failure: sfn.IChainable, then: sfn.IChainable
    ) -> tasks.LambdaInvoke:
        """Start the step's job, then wait and check until it has completed (a failed job fails the check)."""
        start = self.functions.job_starters()[step].invoke(self, f"Start {title}")
        check = self.functions.check_job.invoke(self, f"Is {title} done?")
        wait = sfn.Wait(
            self,
            f"Wait for {title}",
            time=sfn.WaitTime.duration(Duration.seconds(self._config.retraining.poll_seconds)),
        )
        for task in (start, check):
            task.add_catch(failure, errors=["States.ALL"], result_path=ERROR)
        start.next(wait)
        wait.next(check)
        check.next(
            sfn.Choice(self, f"Has {title} completed?")
            .when(sfn.Condition.string_equals("$.job.status", "Completed"), then)
            .otherwise(wait)
        )
        return start

    def _definition(self) -> sfn.IChainable:
        failure = self._failure_path()
        register = self.functions.register.invoke(self, "Gate and register the model")
        release = self.functions.release.invoke(self, "Release the lock")
        register.add_catch(failure, errors=["States.ALL"], result_path=ERROR)
        release.add_catch(
            sfn.Fail(
                self, "Registered, lock not released", error_path="$.error.Error", cause_path="$.error.Cause"
            ),
            errors=["States.ALL"],
            result_path=ERROR,
        )
        register.next(release).next(
            sfn.Choice(self, "Approved or pending?")
            .when(
                sfn.Condition.string_equals("$.registration.approval_status", "Approved"),
                sfn.Succeed(self, "Handed to the rollout", comment="the approval rule starts its rollout"),
            )
            .otherwise(sfn.Succeed(self, "Awaiting approval", comment="a person approves it in the registry"))
        )
        evaluate = self._job("evaluate", "the evaluation", failure, register)
        train = self._job("train", "the training", failure, evaluate)
        preprocess = self._job("preprocess", "the preprocessing", failure, train)

        name_run = sfn.Pass(self, "Name the run after this execution", parameters=NAMED_INPUT)
        take_lock = self.functions.start.invoke(
            self, "Take the family's lock", payload=sfn.TaskInput.from_json_path_at(START_PAYLOAD_PATH)
        )
        # Nothing was started and no lock taken: tell on-call and stop.
        refused = self._notify("Notify the refusal", "refused")
        refused.next(
            sfn.Fail(self, "Retraining refused", error_path="$.error.Error", cause_path="$.error.Cause")
        )
        take_lock.add_catch(refused, errors=["States.ALL"], result_path=ERROR)
        return name_run.next(take_lock).next(
            sfn.Choice(self, "Is the lock ours?")
            .when(sfn.Condition.boolean_equals("$.lock.taken", True), preprocess)
            .otherwise(sfn.Succeed(self, "Already retraining", comment="another run holds this family"))
        )

    def _state_machine(self) -> sfn.StateMachine:
        return logged_state_machine(
            self,
            name=self.state_machine_name,
            definition=self._definition(),
            timeout=workflow_timeout(self._config),
            comment=f"{self._config.prefix}: preprocess, train, evaluate, gate and register a model version",
        )

    def _acknowledge_state_machine_role(self) -> None:
        # The failure path publishes to the encrypted topic: SNS asks KMS for a data key as the caller.
        self._notifications.key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge_state_machine_role(self.state_machine, [step.function for step in self.functions.all()])

    def _failure_alarms(self) -> list[cloudwatch.Alarm]:
        """A run that failed or timed out, on the topic: the retraining's ordinary ends all succeed, so
        every failed execution is a genuine failure."""
        prefix = self._config.prefix
        window = Duration.minutes(5)
        machine = self.state_machine
        return [
            failure_alarm(
                self,
                "FailedAlarm",
                name=f"{prefix}-retraining-failed",
                description="A retraining run failed: its notification and execution say why.",
                metric=machine.metric_failed(period=window, statistic="Sum"),
                topic=self._notifications.topic,
            ),
            failure_alarm(
                self,
                "TimedOutAlarm",
                name=f"{prefix}-retraining-timed-out",
                description="A retraining run timed out: the ended-run function stops its jobs and frees "
                "its lock.",
                metric=machine.metric_timed_out(period=window, statistic="Sum"),
                topic=self._notifications.topic,
            ),
        ]

    # --- An execution stopped by hand or timed out --------------------------------------------------------

    def _ended_function(self) -> ProjectFunction:
        """Stops the run's jobs, releases its lock and notifies: no state of the execution runs any more."""
        service = ENDED_MODULE.replace("_", "-")
        function = ProjectFunction(
            self,
            "Ended",
            handler=handler_name(ENDED_MODULE),
            description=f"{self._config.prefix}: clean up after a retraining stopped or timed out",
            environment={
                **self._environment(),
                "TOPIC_ARN": self._notifications.topic.topic_arn,
                "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "POWERTOOLS_SERVICE_NAME": service,
            },
            timeout=Duration.minutes(1),
            log_key=self._registry.key,
            memory_size=256,
        )
        role = function.role
        processing_jobs, training_jobs = self.job_arns("processing-job"), self.job_arns("training-job")
        function.allow(["sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"], processing_jobs)
        function.allow(["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"], training_jobs)
        function.allow(["sns:Publish"], [self._notifications.topic.topic_arn])
        # Releasing the lock: a delete conditional on the holder, as the workflow's release.
        self._lock_table.grant(role, "dynamodb:DeleteItem")
        # Publishing to the encrypted topic: SNS asks KMS for a data key as the caller.
        self._notifications.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge_wildcard_resources(
            role,
            [*processing_jobs, *training_jobs],
            "Jobs are named per run at run time; only this environment's retraining jobs can be described "
            "or stopped.",
        )
        return function

    def _ended_rule(self) -> events.Rule:
        undelivered = undelivered_events_queue(
            self, "UndeliveredEnded", of="the ended-execution rule's target"
        )
        self.undelivered_ended = undelivered
        rule = events.Rule(
            self,
            "EndedExecution",
            description=f"{self._config.prefix}: a retraining stopped or timed out has its jobs stopped and "
            "its lock released",
            event_pattern=execution_ended_pattern(self.state_machine, ENDED_STATUSES),
        )
        rule.add_target(function_target(self.ended_function, dead_letter_queue=undelivered))
        return rule


class RetrainingTriggers(Construct):
    """What starts one family's retraining, in the family's stack: its schedule, a new object under its
    prefix of the training-data bucket, each of its endpoints' drift alarms going into ALARM.

    The rules start the environment's retraining machine (`SharedRetraining`, read from the platform's
    parameters) with the family in the input; an event that cannot be delivered waits in the family's own
    dead-letter queue. Adding a family adds these to its stack: the platform stack keeps its size.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        family: str,
        endpoints: Sequence[Endpoint],
        schedule: str,
        retraining: SharedRetraining,
    ) -> None:
        super().__init__(scope, construct_id)
        self._machine = retraining.state_machine
        # Named for the family: the app's logical ids stay distinct across its stacks.
        self.undelivered = undelivered_events_queue(
            self, f"UndeliveredTriggers-{family}", of=f"the {family} family's retraining triggers"
        )
        scheduled = events.Rule(
            self,
            f"Schedule-{family}",
            description=f"{prefix}: retrain {family} on schedule",
            schedule=events.Schedule.expression(schedule),
        )
        scheduled.add_target(self._target(execution_input(family, "schedule")))
        new_data = events.Rule(
            self,
            f"NewData-{family}",
            description=f"{prefix}: a new object under {family}/ in the training-data bucket retrains it",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [retraining.data_bucket_name]},
                    "object": {"key": [{"prefix": f"{family}/"}]},
                },
            ),
        )
        detail = {
            "bucket": events.EventField.from_path("$.detail.bucket.name"),
            "key": events.EventField.from_path("$.detail.object.key"),
        }
        new_data.add_target(self._target(execution_input(family, "new_data", detail)))
        self.rules = [scheduled, new_data]
        for endpoint in endpoints:
            drifted = events.Rule(
                self,
                f"Drift-{endpoint.name}",
                description=f"{prefix}: {endpoint.name} drifting retrains {family}",
                # By name: the drift monitor names the alarm it publishes for.
                event_pattern=alarm_raised_pattern(
                    [
                        Stack.of(self).format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=drift_alarm_name(prefix, endpoint),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ]
                ),
            )
            detail = {"endpoint": endpoint.name, "alarm": events.EventField.from_path("$.detail.alarmName")}
            drifted.add_target(self._target(execution_input(family, "drift_alarm", detail)))
            self.rules.append(drifted)

    def _target(self, execution: Mapping[str, object]) -> targets.SfnStateMachine:
        return state_machine_target(
            self._machine,
            dead_letter_queue=self.undelivered,
            execution_input=events.RuleTargetInput.from_object(execution),
        )


def family_settings_parameter(
    scope: Construct, config: EnvironmentConfig, family: str
) -> ssm.StringParameter:
    """What retraining needs of one family, as an SSM parameter in the family's stack (as each endpoint's
    settings are, infra/endpoint_settings.py): the functions' environment keeps one size however many
    families the environment retrains."""
    # A family served by several endpoints registers one package for all of them: the first endpoint's
    # serving image (they share the family's package group, hence its image) and gates.
    first = next(endpoint for endpoint in config.endpoints if endpoint.model_family == family)
    document = {
        "model_package_group": package_group_name(config.prefix, family),
        "inference_image": first.initial_model.image_uri,
        "gates": config.rollout_for(first).gates.model_dump(mode="json"),
    }
    return ssm.StringParameter(
        scope,
        f"FamilySettings-{family}",
        parameter_name=f"{family_settings_path(config.prefix)}{family}",
        string_value=json.dumps(document, separators=(",", ":")),
        description=f"{config.prefix}: what retraining needs of the {family} family",
        tier=ssm.ParameterTier.STANDARD,
    )


def retrained_artifacts_reader(role: iam.IRole, bucket: s3.IBucket) -> None:
    """An endpoint's role may load the model.tar.gz of any retrained version, which a rollout deploys."""
    objects = bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}/*/model/*")
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
    acknowledge_wildcard_resources(
        role,
        [objects],
        "Reads model.tar.gz of a retrained version, which a rollout deploys; run and job names are only "
        "known at run time, and only retraining's folders are readable.",
    )
