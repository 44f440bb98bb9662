"""The release chain between environments (docs/release-chain.md): staging → prod, say.

`ReleaseOffering`, in the environment that releases: its promote function puts each promoted package on
the default bus as an offer (source ``mlrollout.release``, lambdas/release/offer.py); when the next
environment runs in another account or region, a rule forwards the offers to that environment's default
bus, and for another account the registry's bucket and key let it read the released artifacts.

`ReleaseWorkflow`, in the environment that takes them: a rule on its bus starts a small state machine per
offer from its one source environment. Register (copy the artifact and gate files into this registry,
create the package PendingManualApproval with the source's evidence), then either approve it at once
(``approval: none``) or ask a person on the topic and wait on a Step Functions task token, rejecting when
nobody answers in time; an approval starts this environment's rollout like any other. For a source in
another account, the default bus's policy lets that account put the offers.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import EnvironmentConfig, ReleaseSource, ReleaseTarget
from infra.endpoint_settings import grant_read_endpoint_settings, settings_path_environment
from infra.nag import acknowledge_wildcard_resources
from infra.notifications import Notifications
from infra.registry import ModelRegistry
from infra.rollout_targets import RolloutTargets
from infra.state_machine import acknowledge_state_machine_role, logged_state_machine
from infra.workflow_task import (
    METRICS_NAMESPACE,
    WorkflowFunction,
    WorkflowFunctions,
    state_machine_target,
    undelivered_events_queue,
)
from lambdas.release.offer import DETAIL_TYPE, EVENT_SOURCE
from lambdas.release.workflow import RELEASED_PREFIX

# Where the released artifacts are read from in the source environment's bucket (the rollout's packages).
SOURCE_OBJECTS = "models/*"
# Registering copies a model and a few gate files; the approval may wait up to the configured timeout.
ALLOWANCE_HOURS = 1
REFUSED = "ReleaseRefused"
REJECTED = "ReleaseRejected"


def offer_pattern(*, target: str, source: str | None = None) -> events.EventPattern:
    """Offers for `target` (from `source` only, when given)."""
    detail: dict[str, list[str]] = {"target_environment": [target]}
    if source is not None:
        detail["source_environment"] = [source]
    return events.EventPattern(source=[EVENT_SOURCE], detail_type=[DETAIL_TYPE], detail=detail)


def default_bus_arn(stack: Stack, *, region: str | None = None, account: str | None = None) -> str:
    return stack.format_arn(
        service="events",
        resource="event-bus",
        resource_name="default",
        region=region or stack.region,
        account=account or stack.account,
    )


class ReleaseOffering(Construct):
    """The releasing environment's side: its promote function offers promoted packages to `target`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        target: ReleaseTarget,
        promote: WorkflowFunction,
        registry: ModelRegistry,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        promote.function.add_environment("ENVIRONMENT_NAME", config.name)
        promote.function.add_environment("RELEASE_TO", target.environment)
        promote.allow(
            ["events:PutEvents"],
            [default_bus_arn(stack)],
            conditions={"StringEquals": {"events:source": EVENT_SOURCE}},
        )
        # An offer that cannot be sent is told on the topic (the promotion stands): the promote function
        # publishes there anyway (infra/rollout_workflow.py), every promotion is told.
        self.forward_rule: events.Rule | None = None
        if target.account is not None or target.region != stack.region:
            self.forward_rule = self._forward(config, target)
        if target.account is not None:
            self._let_read(registry, target.account)

    def _forward(self, config: EnvironmentConfig, target: ReleaseTarget) -> events.Rule:
        """The offers for `target` go on to its default bus (in its account and region)."""
        stack = Stack.of(self)
        bus = events.EventBus.from_event_bus_arn(
            self,
            "NextBus",
            default_bus_arn(stack, region=target.region, account=target.account),
        )
        rule = events.Rule(
            self,
            "ForwardOffers",
            description=f"{config.prefix}: promoted packages offered to {target.environment}",
            event_pattern=offer_pattern(target=target.environment, source=config.name),
        )
        undelivered = undelivered_events_queue(self, "UndeliveredOffers", of="the offers' forwarding rule")
        rule.add_target(targets.EventBus(bus, dead_letter_queue=undelivered))
        return rule

    def _let_read(self, registry: ModelRegistry, account: str) -> None:
        """The next account reads the released models and their gate files, nothing else."""
        reader = iam.AccountPrincipal(account)
        bucket = registry.bucket
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[reader],
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(SOURCE_OBJECTS)],
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[reader],
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [SOURCE_OBJECTS]}},
            )
        )
        registry.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[reader],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.amazonaws.com"}},
            )
        )


@dataclass(frozen=True)
class ReleaseFunctions(WorkflowFunctions):
    register: WorkflowFunction
    ask: WorkflowFunction
    conclude: WorkflowFunction


class ReleaseWorkflow(Construct):
    """The taking environment's side: offers from `source` registered, approved or rejected."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        source: ReleaseSource,
        registry: ModelRegistry,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._source = source
        self._registry = registry
        self._notifications = notifications
        self.state_machine_name = f"{config.prefix}-release"
        environment = {
            **settings_path_environment(config.prefix),
            "ENVIRONMENT_NAME": config.name,
            "RELEASE_FROM": source.environment,
            "ARTIFACT_BUCKET": registry.bucket.bucket_name,
            "TOPIC_ARN": notifications.topic.topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }

        def step(module: str) -> WorkflowFunction:
            return WorkflowFunction(
                self,
                module.replace("_", "-").title().replace("-", ""),
                module=module,
                workflow="release workflow",
                prefix=config.prefix,
                environment=environment,
                log_key=registry.key,
                # Copying a model artifact between buckets takes longer than a control-plane call.
                timeout=Duration.minutes(5) if module == "release_register" else None,
            )

        self.functions = ReleaseFunctions(
            register=step("release_register"), ask=step("release_ask"), conclude=step("release_conclude")
        )
        self._grant()
        self.state_machine = logged_state_machine(
            self,
            name=self.state_machine_name,
            definition=self._definition(),
            timeout=Duration.hours(
                ALLOWANCE_HOURS + (source.approval_timeout_hours if source.approval == "manual" else 0)
            ),
            comment=f"{config.prefix}: register what {source.environment} promoted, approve or reject it",
        )
        acknowledge_state_machine_role(self.state_machine, [f.function for f in self.functions.all()])
        self.rule = self._offer_rule()
        if source.account is not None:
            self._let_source_put_events(source.account)

    # --- Definition -------------------------------------------------------------------------------------

    def _definition(self) -> sfn.IChainable:
        f = self.functions
        register = f.register.invoke(self, "Register the offered package")
        refuse = self._conclude("Tell the refusal", "refused").next(
            sfn.Fail(self, "Refused", error=REFUSED, cause_path="$.error.Cause")
        )
        register.add_catch(refuse, result_path="$.error")
        approve = self._conclude("Approve the package", "approve").next(sfn.Succeed(self, "Approved"))
        if self._source.approval == "none":
            return register.next(approve)
        ask = tasks.LambdaInvoke(
            self,
            "Ask a person to approve",
            lambda_function=f.ask.function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.object_at("$"), "task_token": sfn.JsonPath.task_token}
            ),
            result_path="$.approval",
            task_timeout=sfn.Timeout.duration(Duration.hours(self._source.approval_timeout_hours)),
            retry_on_service_exceptions=False,
        )
        reject = self._conclude("Reject the package", "reject").next(
            sfn.Fail(
                self,
                "Rejected",
                error=REJECTED,
                cause="rejected by a person or not approved in time: see the package's approval description",
            )
        )
        # A person's rejection (SendTaskFailure), the timeout, or asking failing: the package is rejected.
        ask.add_catch(reject, result_path="$.error")
        return register.next(ask).next(approve)

    def _conclude(self, name: str, action: str) -> tasks.LambdaInvoke:
        return self.functions.conclude.invoke(
            self,
            name,
            payload=sfn.TaskInput.from_object({"action": action, "state": sfn.JsonPath.object_at("$")}),
        )

    # --- Grants -----------------------------------------------------------------------------------------

    def _grant(self) -> None:
        f = self.functions
        stack = Stack.of(self)
        prefix = self._config.prefix
        packages = RolloutTargets.of(stack, prefix=prefix).packages
        groups = [
            stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=f"{prefix}-*")
        ]
        for function in f.all():
            grant_read_endpoint_settings(function.role, prefix)
        for function in (f.ask, f.conclude):
            function.allow(["sns:Publish"], [self._notifications.topic.topic_arn])
            self._notifications.key.grant(function.role, "kms:Decrypt", "kms:GenerateDataKey")
        f.register.allow(["sagemaker:CreateModelPackage"], [*packages, *groups])
        f.conclude.allow(["sagemaker:UpdateModelPackage"], packages)
        for function, named in ((f.register, [*packages, *groups]), (f.conclude, packages)):
            acknowledge_wildcard_resources(
                function.role,
                named,
                "This environment's package groups (<prefix>-<family>, each in its family's stack) and their "
                "versions, numbered at run time: one policy however many families.",
            )
        self._grant_copy(f.register)

    def _grant_copy(self, register: WorkflowFunction) -> None:
        """Read the source's released objects (its bucket and key by their environment's names), write
        them under this registry's released prefix."""
        stack = Stack.of(self)
        source = self._source
        source_prefix = f"mlrollout-{source.environment}"
        source_buckets = f"arn:{stack.partition}:s3:::{source_prefix}-*"
        source_objects = f"{source_buckets}/{SOURCE_OBJECTS}"
        register.allow(["s3:GetObject"], [source_objects])
        register.allow(
            ["s3:ListBucket"], [source_buckets], conditions={"StringLike": {"s3:prefix": [SOURCE_OBJECTS]}}
        )
        source_keys = stack.format_arn(
            service="kms",
            resource="key",
            resource_name="*",
            region=source.region,
            account=source.account or stack.account,
        )
        register.allow(
            ["kms:Decrypt"],
            [source_keys],
            conditions={
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/{source_prefix}-artifacts"}
            },
        )
        released = self._registry.bucket.arn_for_objects(f"{RELEASED_PREFIX}/*")
        register.allow(["s3:PutObject"], [released])
        self._registry.key.grant(register.role, "kms:GenerateDataKey", "kms:Decrypt")
        acknowledge_wildcard_resources(
            register.role,
            [source_buckets, source_objects, source_keys, released],
            f"The artifact bucket of {source.environment} is named by CloudFormation under its environment's "
            "prefix, its key found by its alias; objects are the released models and gate files, named at "
            "run time: reads only under models/ there, writes only under the released prefix here.",
        )

    # --- Triggers ---------------------------------------------------------------------------------------

    def _offer_rule(self) -> events.Rule:
        rule = events.Rule(
            self,
            "OfferReceived",
            description=f"{self._config.prefix}: a package promoted in {self._source.environment} is offered",
            event_pattern=offer_pattern(target=self._config.name, source=self._source.environment),
        )
        undelivered = undelivered_events_queue(self, "UndeliveredOffers", of="the release rule's target")
        rule.add_target(
            state_machine_target(
                self.state_machine,
                dead_letter_queue=undelivered,
                execution_input=events.RuleTargetInput.from_event_path("$.detail"),
            )
        )
        self.undelivered_offers = undelivered
        return rule

    def _let_source_put_events(self, account: str) -> None:
        """The source environment's account may put events on this default bus (its forwarding rule)."""
        stack = Stack.of(self)
        events.CfnEventBusPolicy(
            self,
            "SourceMayPutEvents",
            event_bus_name="default",
            statement_id=f"{self._config.prefix}-release-from-{self._source.environment}",
            statement={
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{stack.partition}:iam::{account}:root"},
                "Action": "events:PutEvents",
                "Resource": default_bus_arn(stack),
            },
        )
