"""The rollout workflow: a Step Functions state machine over the rollout Lambdas, its tables and triggers.

Each handler receives the whole state and returns the whole state (tasks are `payload_response_only`;
the start task gets the execution's input with `execution_id` merged in), so the Choice states read what
the last handler decided: `deployment.status` (in service and no `gates` yet: the candidate is deployed at
0 %, the gates ask it), `gates.passed` (with `request.strategy`: shadow and blue/green deploy their own
way once the gates passed), `deployment.status` again (blue/green goes from in service to promote),
`decision.action`, and the Wait reads `bake_seconds`. A failed start (the
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

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from constructs import Construct

from infra.alarms import EndpointAlarms
from infra.config import EnvironmentConfig
from infra.endpoint import ModelEndpoint
from infra.endpoint_settings import grant_read_endpoint_settings, settings_path_environment
from infra.feature_flags import FeatureFlags
from infra.nag import acknowledge_wildcard_resources
from infra.notifications import Notifications
from infra.registry import ModelRegistry
from infra.rollout_abort import RolloutAbort
from infra.rollout_definition import RolloutDefinition
from infra.rollout_parts import (
    ABORT_MODULE,
    ABORTING_STATUSES,
    APPCONFIG_EVENTS_EXTENSION,
    DEPLOY_ALLOWANCE_MINUTES,
    ENDPOINT_BUSY,
    ENDPOINT_LOCKED,
    ENDPOINT_POLL,
    ERROR_CAUSE,
    HANDLER_MODULES,
    MAX_BAKES_PER_STEP,
    NOT_RESUMABLE,
    ORDINARY_FAILED_ENDS,
    OUTCOME_RECORDED,
    PAUSE_BEFORE_TRYING_AGAIN,
    REFUSED,
    ROLLBACK_ERROR,
    ROLLED_BACK,
    TELLING_ERROR,
    TIMED_OUT,
    RolloutFunctions,
    workflow_timeout,
)
from infra.rollout_targets import RolloutTargets, guardrail_alarm_arns
from infra.state_machine import acknowledge_state_machine_role
from infra.workflow_task import (
    METRICS_NAMESPACE,
    PACKAGE_GROUPS_PER_RULE,
    WorkflowFunction,
    split_for_rules,
    state_machine_target,
    undelivered_events_queue,
)
from lambdas.rollout.report import REPORT_PREFIX

__all__ = [
    "ABORTING_STATUSES",
    "ABORT_MODULE",
    "APPCONFIG_EVENTS_EXTENSION",
    "DEPLOY_ALLOWANCE_MINUTES",
    "ENDPOINT_BUSY",
    "ENDPOINT_LOCKED",
    "ENDPOINT_POLL",
    "ERROR_CAUSE",
    "HANDLER_MODULES",
    "MAX_BAKES_PER_STEP",
    "NOT_RESUMABLE",
    "ORDINARY_FAILED_ENDS",
    "OUTCOME_RECORDED",
    "PAUSE_BEFORE_TRYING_AGAIN",
    "REFUSED",
    "ROLLBACK_ERROR",
    "ROLLED_BACK",
    "TELLING_ERROR",
    "TIMED_OUT",
    "RolloutFunctions",
    "RolloutWorkflow",
    "workflow_timeout",
]


class RolloutWorkflow(RolloutDefinition, RolloutAbort):
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
        self._targets = RolloutTargets.of(Stack.of(self), prefix=config.prefix)
        environment = {
            **settings_path_environment(config.prefix),
            "LOCK_TABLE": self.lock_table.table_name,
            "LEDGER_TABLE": self.ledger_table.table_name,
            "TOPIC_ARN": notifications.topic.topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        self.functions = self._functions(environment)
        # A hold's and a gate's notification give the commands with this environment's --env.
        for function in (self.functions.judge, self.functions.gate):
            function.function.add_environment("ENVIRONMENT_NAME", config.name)
        for function in self.functions.all():
            grant_read_endpoint_settings(function.role, config.prefix)
        self._grant()
        self.state_machine = self._state_machine()
        # "Send all traffic to the champion, from the workflow" updates the endpoint's weights itself.
        acknowledge_wildcard_resources(
            self.state_machine.role,
            self._targets.endpoints,
            "The environment's endpoints, each in its family's stack, named <prefix>-...: the workflow's own "
            "weights update when the rollback function is broken.",
        )
        # The workflow tells the topic itself when a telling function fails: SNS asks KMS for a data key.
        notifications.key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge_state_machine_role(self.state_machine, [step.function for step in self.functions.all()])
        self.abort_function = self._abort_function(environment)
        grant_read_endpoint_settings(self.abort_function.role, config.prefix)
        self.rules = [*self._approval_rules(), *self._abort_rules(alarms)]
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
                log_key=self._registry.key,
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
            gate=step("rollout_gate"),
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
        guardrails = guardrail_alarm_arns(Stack.of(self), self._config)
        if guardrails:
            # The guardrail alarms outside the stack: one in ALARM refuses the start, or fails the gates of
            # a rollout that started as it went to ALARM (before the abort could find the rollout).
            for function in (f.start, f.gates):
                function.allow(["cloudwatch:DescribeAlarms"], guardrails)
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
        self._grant_reports()
        # The end of a rollout is told: promoted, rolled back, inconclusive, or a rollback that gave up.
        self._grant_notify(f.promote)
        self._grant_notify(f.rollback)
        # A rollback that failed is told by the release that ends its path.
        self._grant_notify(f.release)
        # A hold or a warning is told by the judge; a human gate by its function, with the commands.
        self._grant_notify(f.judge)
        self._grant_notify(f.gate)

    def _allow(
        self,
        function: WorkflowFunction,
        actions: list[str],
        resources: list[str],
        conditions: Mapping[str, object] | None = None,
    ) -> None:
        """A grant on the environment's names; their patterns are acknowledged where a role uses them."""
        function.allow(actions, resources, conditions=conditions)
        named = [r for r in resources if r in self._targets.environment_patterns()]
        if named:
            acknowledge_wildcard_resources(
                function.role,
                named,
                "The environment's endpoints, alarms and execution roles, each in its family's stack, named "
                "<prefix>-... (infra/rollout_targets.py): one policy however many endpoints.",
            )

    def _grant_sagemaker(self) -> None:
        targets = self._targets
        f = self.functions
        live_config_readers = (f.start, f.gates, f.deploy, f.promote, f.rollback)
        for function in f.all():
            if function in (f.release, f.judge, f.resume, f.gate):
                continue
            self._allow(function, ["sagemaker:DescribeEndpoint"], targets.endpoints)
            if function in live_config_readers:
                self._allow(function, ["sagemaker:DescribeEndpointConfig"], targets.endpoint_configs)
        for function in live_config_readers:
            self._allow(function, ["sagemaker:DescribeModelPackage"], targets.packages)
            acknowledge_wildcard_resources(
                function.role,
                [*targets.packages, *targets.endpoint_configs],
                "Package versions and the endpoint's configs are named at run time: only this "
                "environment's package groups and configs named after its endpoints are reachable.",
            )
        for function in (f.deploy, f.promote, f.rollback):
            self._allow(function, ["sagemaker:CreateEndpointConfig"], targets.endpoint_configs)
            self._allow(
                function, ["sagemaker:UpdateEndpoint"], [*targets.endpoints, *targets.endpoint_configs]
            )
        for function in (f.promote, f.rollback):
            self._allow(function, ["sagemaker:UpdateModelPackage"], targets.packages)
        for function in (f.set_traffic, f.rollback):
            self._allow(function, ["sagemaker:UpdateEndpointWeightsAndCapacities"], targets.endpoints)
        # The gates read the champion's model to find its package; deploy creates the candidate's model.
        self._allow(f.gates, ["sagemaker:DescribeModel"], targets.models)
        # The golden inputs go to the deployed candidate's variant (TargetVariant) before any traffic.
        self._allow(f.gates, ["sagemaker:InvokeEndpoint"], targets.endpoints)
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
        self._allow(deploy, ["sagemaker:CreateModel", "sagemaker:DescribeModel"], targets.models)
        self._allow(deploy, ["cloudwatch:DescribeAlarms"], targets.alarms)
        self._allow(
            deploy,
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

    def _grant_reports(self) -> None:
        """Promote and rollback write the rollout's report to the registry's bucket, under its prefix only;
        the bucket's key encrypts it (SSE-KMS: S3 asks KMS for a data key as the caller)."""
        bucket = self._registry.bucket
        reports = [bucket.arn_for_objects(f"{REPORT_PREFIX}*")]
        for function in (self.functions.promote, self.functions.rollback):
            function.function.add_environment("REPORT_BUCKET", bucket.bucket_name)
            function.allow(["s3:PutObject"], reports)
            self._registry.key.grant(function.role, "kms:GenerateDataKey")
            acknowledge_wildcard_resources(
                function.role,
                reports,
                "A rollout's report is named after its endpoint and execution, known only when it ends: "
                "only objects under the reports' prefix are writable.",
            )

    def _grant_notify(self, function: WorkflowFunction) -> None:
        """Publishing to the encrypted topic: SNS asks KMS for a data key as the caller."""
        function.allow(["sns:Publish"], [self._notifications.topic.topic_arn])
        # Not topic.grant_publish: it grants kms:GenerateDataKey* where one action is enough.
        self._notifications.key.grant(function.role, "kms:Decrypt", "kms:GenerateDataKey")

    # --- Triggers ---------------------------------------------------------------------------------------

    def _approval_rules(self) -> list[events.Rule]:
        """An approved package of one of the environment's groups starts its rollout (one rule per
        PACKAGE_GROUPS_PER_RULE groups: EventBridge bounds a pattern's size)."""
        # An approval whose rollout could not be started must not vanish: it waits here for a person.
        undelivered = undelivered_events_queue(self, "UndeliveredApprovals", of="the approval rule's target")
        self.undelivered_approvals = undelivered
        rules = []
        for rule_id, groups in split_for_rules(
            "PackageApproved", self._package_groups(), PACKAGE_GROUPS_PER_RULE
        ).items():
            rule = events.Rule(
                self,
                rule_id,
                description=f"{self._config.prefix}: an approved model package starts its rollout",
                event_pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=["SageMaker Model Package State Change"],
                    detail={"ModelApprovalStatus": ["Approved"], "ModelPackageGroupName": groups},
                ),
            )
            # The event itself is the execution's input.
            rule.add_target(state_machine_target(self.state_machine, dead_letter_queue=undelivered))
            rules.append(rule)
        return rules
