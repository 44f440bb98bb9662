"""The platform stack of one environment: composes the constructs, tags them, nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from infra.alarms import EndpointAlarms
from infra.config import EnvironmentConfig
from infra.dashboard import EndpointDashboard
from infra.drift_monitor import DriftMonitor
from infra.endpoint import ModelEndpoint
from infra.endpoint_settings import EndpointSettingsParameter, endpoint_settings_document
from infra.feature_flags import FeatureFlags
from infra.notifications import Notifications
from infra.registry import ModelRegistry
from infra.retraining_workflow import RetrainingWorkflow
from infra.rollout_workflow import RolloutWorkflow
from infra.serving import ServingApi


class PlatformStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "mlrollout")
        Tags.of(self).add("environment", config.name)

        self.registry = ModelRegistry(
            self, "Registry", prefix=config.prefix, model_families=config.model_families
        )
        self.notifications = Notifications(
            self, "Notifications", prefix=config.prefix, emails=config.notifications.emails
        )
        self.endpoint_alarms: dict[str, EndpointAlarms] = {}
        self.endpoints: dict[str, ModelEndpoint] = {}
        for endpoint in config.endpoints:
            alarms = EndpointAlarms(
                self,
                f"Alarms-{endpoint.name}",
                prefix=config.prefix,
                endpoint=endpoint,
                thresholds=config.alarms,
                topic=self.notifications.topic,
            )
            EndpointDashboard(
                self, f"Dashboard-{endpoint.name}", prefix=config.prefix, endpoint=endpoint, alarms=alarms
            )
            self.endpoint_alarms[endpoint.name] = alarms
            # [endpoints]
            self.endpoints[endpoint.name] = ModelEndpoint(
                self,
                f"Endpoint-{endpoint.name}",
                endpoint_name=config.endpoint_name(endpoint),
                endpoint=endpoint,
                rollout=config.rollout_for(endpoint),
                artifact_bucket=self.registry.bucket,
                artifact_key=self.registry.key,
                rollback_alarm_names=alarms.alarm_names,
            )
            # SageMaker checks that the auto-rollback alarms exist; the alarms need nothing from it.
            self.endpoints[endpoint.name].endpoint.node.add_dependency(alarms)
            model_endpoint = self.endpoints[endpoint.name]
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
                    model_package_group=self.registry.package_group_names[endpoint.model_family],
                    execution_role_arn=model_endpoint.execution_role.role_arn,
                    rollback_alarm_names=alarms.alarm_names,
                ),
            )
        self.feature_flags = FeatureFlags(self, "FeatureFlags", config=config)
        self.serving = ServingApi(self, "Serving", config=config, flags=self.feature_flags)
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
            )
            self.retraining = RetrainingWorkflow(
                self,
                "Retraining",
                config=config,
                registry=self.registry,
                lock_table=self.rollout.lock_table,
                notifications=self.notifications,
                drift_alarms={e.name: self.drift_monitor.alarm_for(e.name) for e in config.endpoints},
                artifact_readers=[endpoint.execution_role for endpoint in self.endpoints.values()],
                gate_readers=[self.rollout.functions.gates.role],
            )
