"""The platform stack of one environment: composes the constructs, tags them, nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from infra.alarms import EndpointAlarms
from infra.config import EnvironmentConfig, ReleaseChain
from infra.dashboard import EndpointDashboard
from infra.drift_monitor import DriftMonitor
from infra.endpoint import ModelEndpoint
from infra.endpoint_settings import EndpointSettingsParameter, endpoint_settings_document
from infra.feature_flags import FeatureFlags
from infra.notifications import Notifications
from infra.operations_parameter import OperationsParameter
from infra.platform_parameters import PlatformParameters
from infra.registry import ModelPackageGroup, ModelRegistry
from infra.release_chain import ReleaseOffering, ReleaseWorkflow
from infra.retraining_workflow import (
    RetrainingTriggers,
    RetrainingWorkflow,
    family_settings_parameter,
    retrained_artifacts_reader,
)
from infra.rollout_workflow import RolloutWorkflow
from infra.serving import ServingApi


class PlatformStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        chain: ReleaseChain | None = None,
        **kwargs: Any,
    ) -> None:
        """`chain`: the environments around this one in the release chain (infra/release_chain.py)."""
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "mlrollout")
        Tags.of(self).add("environment", config.name)

        self.registry = ModelRegistry(
            self, "Registry", prefix=config.prefix, model_families=config.model_families
        )
        self.notifications = Notifications(
            self, "Notifications", prefix=config.prefix, emails=config.notifications.emails
        )
        self.shared = PlatformParameters(
            self,
            "Shared",
            prefix=config.prefix,
            bucket=self.registry.bucket,
            key=self.registry.key,
            topic=self.notifications.topic,
        )
        # Each model family's endpoints live in the family's own stack (`FamilyStack`), which refers to this
        # one; this stack names their endpoints, alarms and roles by their physical names only.
        self.families = {
            family: FamilyStack(
                scope,
                f"{construct_id}-{family}",
                config=config,
                family=family,
                platform=self,
                description=f"mlrollout {config.name}: the {family} family's package group and endpoints",
                env=kwargs.get("env"),
            )
            for family in config.model_families
        }
        self.endpoint_alarms = {n: a for f in self.families.values() for n, a in f.endpoint_alarms.items()}
        self.endpoints = {n: e for f in self.families.values() for n, e in f.endpoints.items()}
        self.feature_flags = FeatureFlags(self, "FeatureFlags", config=config)
        self.serving = ServingApi(
            self, "Serving", config=config, flags=self.feature_flags, log_key=self.registry.key
        )
        self.feature_flags.monitor([self.serving.server_error_alarm])
        self.serving.server_error_alarm.add_alarm_action(
            cloudwatch_actions.SnsAction(self.notifications.topic)
        )
        self.rollout = RolloutWorkflow(
            self,
            "Rollout",
            config=config,
            registry=self.registry,
            endpoints=self.endpoints,
            alarms=self.endpoint_alarms,
            notifications=self.notifications,
            flags=self.feature_flags,
        )
        chain = chain or ReleaseChain()
        self.release_offering = (
            None
            if chain.next is None
            else ReleaseOffering(
                self,
                "ReleaseOffering",
                config=config,
                target=chain.next,
                promote=self.rollout.functions.promote,
                registry=self.registry,
                notifications=self.notifications,
            )
        )
        self.release = (
            None
            if chain.previous is None
            else ReleaseWorkflow(
                self,
                "Release",
                config=config,
                source=chain.previous,
                registry=self.registry,
                notifications=self.notifications,
            )
        )
        self.operations = OperationsParameter(
            self,
            "Operations",
            prefix=config.prefix,
            rollout=self.rollout,
            flags=self.feature_flags,
            topic=self.notifications.topic,
        )
        self.drift_monitor: DriftMonitor | None = None
        self.retraining: RetrainingWorkflow | None = None
        if config.retraining.enabled:
            drift = config.retraining.drift
            self.drift_monitor = DriftMonitor(
                self,
                "DriftMonitor",
                prefix=config.prefix,
                endpoints=config.endpoints,
                registry=self.registry,
                schedule=drift.schedule,
                psi_threshold=drift.psi_threshold,
                gates=config.rollout.gates,
                evaluation_periods=drift.evaluation_periods,
                topic=self.notifications.topic,
                alarm_places={
                    name: (family, family.shared.topic)
                    for family in self.families.values()
                    for name in family.endpoints
                },
            )
            self.retraining = RetrainingWorkflow(
                self,
                "Retraining",
                config=config,
                registry=self.registry,
                lock_table=self.rollout.lock_table,
                notifications=self.notifications,
                gate_readers=[self.rollout.functions.gates.role],
            )
            # The families' triggers start the machine and watch the bucket (FamilyStack).
            self.shared.publish_retraining(
                state_machine_name=self.retraining.state_machine_name, data_bucket=self.retraining.data_bucket
            )


class FamilyStack(Stack):
    """One model family: its package group and retraining triggers and, per endpoint, the endpoint, alarms,
    dashboard, settings.

    Adding an endpoint or a family grows this stack or adds one; the environment's stack takes only the
    endpoint's flags and a line in its abort and approval rules (docs/scale.md, bench/scale_bench.py). It
    refers to the environment's stack (the artifact bucket and key, the topic, the retraining machine and
    its data bucket), never the other way round.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        family: str,
        platform: PlatformStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "mlrollout")
        Tags.of(self).add("environment", config.name)
        Tags.of(self).add("model-family", family)
        # What it uses of the environment's stack, read from that stack's parameters at deploy time: no
        # export ties the two, so either can change without the other (a deliberate, one-way dependency).
        self.add_stack_dependency(platform)
        shared = self.shared = PlatformParameters.read(self, "Shared", prefix=config.prefix)
        self.group = ModelPackageGroup(self, f"Group-{family}", prefix=config.prefix, family=family)
        self.endpoint_alarms: dict[str, EndpointAlarms] = {}
        self.endpoints: dict[str, ModelEndpoint] = {}
        for endpoint in (e for e in config.endpoints if e.model_family == family):
            alarms = EndpointAlarms(
                self,
                f"Alarms-{endpoint.name}",
                prefix=config.prefix,
                endpoint=endpoint,
                thresholds=config.alarms,
                topic=shared.topic,
            )
            EndpointDashboard(
                self, f"Dashboard-{endpoint.name}", prefix=config.prefix, endpoint=endpoint, alarms=alarms
            )
            self.endpoint_alarms[endpoint.name] = alarms
            model_endpoint = ModelEndpoint(
                self,
                f"Endpoint-{endpoint.name}",
                endpoint_name=config.endpoint_name(endpoint),
                endpoint=endpoint,
                rollout=config.rollout_for(endpoint),
                artifact_bucket=shared.bucket,
                artifact_key=shared.key,
                rollback_alarm_names=alarms.alarm_names,
            )
            # SageMaker checks that the auto-rollback alarms exist; the alarms need nothing from it.
            model_endpoint.endpoint.node.add_dependency(alarms)
            self.endpoints[endpoint.name] = model_endpoint
            if config.retraining.enabled:
                retrained_artifacts_reader(model_endpoint.execution_role, shared.bucket)
            EndpointSettingsParameter(
                self,
                f"Settings-{endpoint.name}",
                config=config,
                endpoint=endpoint,
                document=endpoint_settings_document(
                    config,
                    endpoint,
                    endpoint_name=model_endpoint.endpoint_name,
                    champion=model_endpoint.champion_variant,
                    challenger=None if endpoint.shadow else model_endpoint.challenger_variant,
                    model_package_group=self.group.group_name,
                    execution_role_arn=model_endpoint.execution_role.role_arn,
                    rollback_alarm_names=alarms.alarm_names,
                ),
            )
        self.retraining_triggers: RetrainingTriggers | None = None
        if config.retraining.enabled:
            family_settings_parameter(self, config, family)
            self.retraining_triggers = RetrainingTriggers(
                self,
                "Retraining",
                prefix=config.prefix,
                family=family,
                endpoints=[e for e in config.endpoints if e.model_family == family],
                schedule=config.retraining.schedule,
                # Named for the family: the target's role is created beside the imported machine.
                retraining=PlatformParameters.read_retraining(
                    self, f"SharedRetraining-{family}", prefix=config.prefix
                ),
            )
