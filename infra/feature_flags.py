"""Feature flags: an AppConfig application, the stage's environment, a native feature-flag profile.

The profile's initial document comes from the flag model in `lambdas/flags.py` (every kill switch off,
no pins), the same model the router parses at run time. On-call toggles flags in the AppConfig console;
AppConfig enforces each attribute's constraints when a version is saved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import Endpoint, EnvironmentConfig, FlagDeployment
from lambdas.flags import EndpointVariants, FlagSet

PROFILE_NAME = "feature-flags"


def endpoint_variants(endpoint: Endpoint) -> EndpointVariants:
    """What an endpoint's flags may pin to: its production variants (a shadow variant cannot be targeted)."""
    return EndpointVariants(
        endpoint=endpoint.name,
        champion=endpoint.variants.champion,
        challenger=None if endpoint.shadow else endpoint.variants.challenger,
    )


def initial_document(config: EnvironmentConfig) -> str:
    """The first version of the flag document, checked by parsing it back as the router will."""
    catalog = [endpoint_variants(endpoint) for endpoint in config.endpoints]
    flags = FlagSet.initial(catalog)
    document = flags.document()
    if FlagSet.from_document(document, catalog) != flags:
        raise ValueError("the generated flag document does not parse back to the flags it came from")
    return json.dumps(document, sort_keys=True)


def rollout_strategy(deployment: FlagDeployment) -> appconfig.RolloutStrategy:
    build = (
        appconfig.RolloutStrategy.exponential
        if deployment.growth_type == "EXPONENTIAL"
        else appconfig.RolloutStrategy.linear
    )
    return build(
        growth_factor=deployment.growth_factor,
        deployment_duration=Duration.minutes(deployment.duration_minutes),
        final_bake_time=Duration.minutes(deployment.final_bake_minutes),
    )


# AppConfig's limit of monitors per environment.
MAX_MONITORS = 5


class FeatureFlags(Construct):
    """Kill switch and pins per endpoint, deployed to the stage with its alarms as rollback monitors."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.application_name = config.prefix
        self.environment_name = config.name
        self.profile_name = PROFILE_NAME
        self.document = initial_document(config)

        self.application = appconfig.Application(
            self,
            "Application",
            application_name=self.application_name,
            description=f"{config.prefix}: kill switch and variant pins per endpoint",
        )
        self.monitor_role: iam.Role | None = None
        self.environment = appconfig.Environment(
            self,
            "Environment",
            application=self.application,
            environment_name=self.environment_name,
            description=f"The {config.name} stage; a flag deployment rolls back when a monitor alarms",
        )
        self.deployment_strategy = appconfig.DeploymentStrategy(
            self,
            "DeploymentStrategy",
            deployment_strategy_name=f"{config.prefix}-flags",
            description="Flag changes (the kill switch must be fast)",
            rollout_strategy=rollout_strategy(config.flag_deployment),
        )
        # CloudFormation creates a new version only when this document changes (e.g. a new endpoint);
        # that version carries every flag off and replaces toggles made in the console since.
        # No JSON_SCHEMA validator: AppConfig supports those for freeform profiles only and validates
        # AWS.AppConfig.FeatureFlags documents against its own schema and the attribute constraints.
        self.profile = appconfig.HostedConfiguration(
            self,
            "Profile",
            application=self.application,
            name=self.profile_name,
            description="Kill switch, segment pin and user allow-list per endpoint (see lambdas/flags.py)",
            type=appconfig.ConfigurationType.FEATURE_FLAGS,
            content=appconfig.ConfigurationContent.from_inline_json(self.document),
            deployment_strategy=self.deployment_strategy,
            deploy_to=[self.environment],
        )
        self.application_id = self.application.application_id
        self.environment_id = self.environment.environment_id
        self.profile_id = self.profile.configuration_profile_id

    def grant_read(self, role: iam.IRole) -> None:
        """Reading the flags through AppConfigData: this profile in this environment only."""
        flags_arn = Stack.of(self).format_arn(
            service="appconfig",
            resource="application",
            resource_name=(
                f"{self.application_id}/environment/{self.environment_id}/configuration/{self.profile_id}"
            ),
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
                resources=[flags_arn],
            )
        )

    def monitor(self, monitors: Sequence[cloudwatch.IAlarm]) -> None:
        """Roll a flag deployment back while one of these alarms is in ALARM.

        The monitors must be alarms a flag change can make worse, not the incident a flag change answers:
        the stack passes the serving API's 5XX rate (what a kill switch or pin that sends users to a
        failing variant raises), one alarm however many endpoints (an environment takes at most five);
        never a challenger's alarms.
        """
        if len(monitors) > MAX_MONITORS:
            raise ValueError(
                f"an AppConfig environment takes at most {MAX_MONITORS} monitors, got {len(monitors)}"
            )
        if not monitors:
            return
        # AppConfig reads the monitored alarms' state with this role: DescribeAlarms on them only.
        self.monitor_role = iam.Role(
            self,
            "MonitorRole",
            assumed_by=iam.ServicePrincipal("appconfig.amazonaws.com"),
            description="AppConfig reads the state of the flag environment's monitor alarms",
            inline_policies={
                "DescribeMonitorAlarms": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["cloudwatch:DescribeAlarms"],
                            resources=[alarm.alarm_arn for alarm in monitors],
                        )
                    ]
                )
            },
        )
        environment = self.environment.node.default_child
        assert isinstance(environment, appconfig.CfnEnvironment)
        environment.monitors = [
            appconfig.CfnEnvironment.MonitorsProperty(
                alarm_arn=alarm.alarm_arn, alarm_role_arn=self.monitor_role.role_arn
            )
            for alarm in monitors
        ]
