"""Serving: the inference and feedback HTTP API (IAM auth), its Lambdas, the inference table.

The router reads the flags through AppConfigData and calls the endpoints from the config; the feedback
function joins an outcome to the stored inference; the flag validator stops a flag document the router
could not parse before AppConfig deploys it. Each function's role grants exactly the calls its
handler makes (see `tests/infra/test_serving.py`); metrics leave through EMF log lines, not PutMetricData.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.alarms import error_rate_expression
from infra.config import EnvironmentConfig
from infra.endpoint_settings import grant_read_endpoint_settings, settings_path_environment
from infra.feature_flags import FeatureFlags
from infra.lambda_function import LOG_RETENTION, ProjectFunction
from infra.nag import acknowledge_wildcard_resources

METRICS_NAMESPACE = "mlrollout"
INFERENCE_TTL_DAYS = 30
# AppConfigData's minimum poll interval: a kill switch reaches every router within it once deployed.
FLAGS_TTL_SECONDS = 15
WEIGHTS_TTL_SECONDS = 30
# API Gateway ends an HTTP API integration after 30 s, so a longer router would answer nobody.
ROUTER_TIMEOUT = Duration.seconds(30)
# Steady-state and burst requests per second for the whole stage: a guard against a runaway client,
# well above what one endpoint's instances serve; raise with the endpoints' autoscaling limits.
THROTTLE_RATE_LIMIT = 200
THROTTLE_BURST_LIMIT = 400
INVOCATIONS_PATH = "/endpoints/{endpoint}/invocations"
FEEDBACK_PATH = "/feedback"
# One JSON object per request: who called (IAM identity), which route, how it went.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


class ServingApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        flags: FeatureFlags,
        log_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = self._table()
        # The validator checks a flag document against the same endpoints the router serves.
        catalog = settings_path_environment(config.prefix)
        shared = {
            **catalog,
            "INFERENCE_TABLE": self.table.table_name,
            "INFERENCE_TTL_DAYS": str(INFERENCE_TTL_DAYS),
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        router = ProjectFunction(
            self,
            "Router",
            handler="lambdas.handlers.router.handler",
            description=f"{config.prefix}: sticky variant choice under the flags, then InvokeEndpoint",
            environment={
                **shared,
                "POWERTOOLS_SERVICE_NAME": "router",
                "APPCONFIG_APPLICATION": flags.application_name,
                "APPCONFIG_ENVIRONMENT": flags.environment_name,
                "APPCONFIG_PROFILE": flags.profile_name,
                "FLAGS_TTL_SECONDS": str(FLAGS_TTL_SECONDS),
                "WEIGHTS_TTL_SECONDS": str(WEIGHTS_TTL_SECONDS),
            },
            timeout=ROUTER_TIMEOUT,
            log_key=log_key,
            memory_size=512,
        )
        feedback = ProjectFunction(
            self,
            "Feedback",
            handler="lambdas.handlers.feedback.handler",
            description=f"{config.prefix}: records the outcome of an inference and its business metric",
            environment={**shared, "POWERTOOLS_SERVICE_NAME": "feedback"},
            timeout=Duration.seconds(10),
            log_key=log_key,
        )
        validator = ProjectFunction(
            self,
            "FlagValidator",
            handler="lambdas.handlers.flag_validator.handler",
            description=f"{config.prefix}: rejects a flag document the router could not use",
            environment={**catalog, "POWERTOOLS_SERVICE_NAME": "flag-validator"},
            timeout=Duration.seconds(10),
            log_key=log_key,
        )
        for function in (router, feedback, validator):
            grant_read_endpoint_settings(function.role, config.prefix)
        self.router_function = router.function
        self.feedback_function = feedback.function
        self.flag_validator_function = validator.function

        self._grant_router(router.role, config, flags)
        self.table.grant(feedback.role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self._attach_validator(validator.function, flags)

        self.api, stage = self._api(config)
        self.server_error_alarm = self._server_error_alarm(config)
        self.api_url = stage.url
        CfnOutput(self, "ApiUrl", value=self.api_url, description="Base URL of the inference API (IAM auth)")

    def _table(self) -> dynamodb.Table:
        # AWS-owned keys would hide key use from CloudTrail; a customer-managed key would need a key policy
        # and grants for two functions for data that never leaves the account: the AWS-managed key it is.
        return dynamodb.Table(
            self,
            "InferenceTable",
            partition_key=dynamodb.Attribute(name="inference_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Predictions and their outcomes are the evidence behind past rollouts.
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _server_error_alarm(self, config: EnvironmentConfig) -> cloudwatch.Alarm:
        """The API's 5XX rate (the router answers 5XX when the variant it chose fails), with the
        environment's thresholds: the flag deployments' monitor."""
        thresholds = config.alarms
        period = Duration.seconds(thresholds.period_seconds)
        rate = cloudwatch.MathExpression(
            expression=error_rate_expression("errors", thresholds.minimum_invocations),
            using_metrics={
                "errors": self.api.metric_server_error(period=period, statistic="Sum"),
                "invocations": self.api.metric_count(period=period, statistic="Sum"),
            },
            label="Inference API 5XX rate (%)",
            period=period,
        )
        return cloudwatch.Alarm(
            self,
            "ServerErrorRate",
            alarm_name=f"{config.prefix}-api-5xx-rate",
            alarm_description="The inference API answers 5XX above the environment's rate.",
            metric=rate,
            threshold=thresholds.error_5xx_rate_percent,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=thresholds.evaluation_periods,
            datapoints_to_alarm=thresholds.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _grant_router(self, role: iam.IRole, config: EnvironmentConfig, flags: FeatureFlags) -> None:
        # Every endpoint's name is "<prefix>-<endpoint>" (config.endpoint_name): one pattern, so the
        # policy keeps its size however many endpoints (one ARN each took it past IAM's 10 KB near 75).
        assert all(config.endpoint_name(e).startswith(f"{config.prefix}-") for e in config.endpoints)
        endpoints = Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=f"{config.prefix}-*"
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"], resources=[endpoints]
            )
        )
        acknowledge_wildcard_resources(
            role,
            [endpoints],
            "The environment's endpoints, all named <prefix>-<endpoint>; the router calls only the endpoints "
            "whose settings the environment wrote.",
        )
        flags.grant_read(role)
        self.table.grant(role, "dynamodb:PutItem")

    def _attach_validator(self, function: lambda_.Function, flags: FeatureFlags) -> None:
        """AppConfig runs LAMBDA validators on feature-flag profiles too (JSON_SCHEMA ones only on freeform).

        The FeatureFlags construct renders its profile before this function exists, so the validator is
        set on the underlying CloudFormation profile; `from_function` adds AppConfig's invoke permission.
        """
        validator = appconfig.LambdaValidator.from_function(function)
        profile = flags.profile.node.find_child("ConfigurationProfile")
        assert isinstance(profile, appconfig.CfnConfigurationProfile)
        profile.validators = [
            appconfig.CfnConfigurationProfile.ValidatorsProperty(
                type=validator.type.value, content=validator.content
            )
        ]
        # AppConfig invokes the validator when a deployment starts: the permission must exist by then. Only
        # this account's AppConfig, for this application (its profile's ARN lies under the application's).
        permission = function.permissions_node.find_child("AppConfigPermission")
        assert isinstance(permission, lambda_.CfnPermission)
        stack = Stack.of(self)
        permission.source_account = stack.account
        permission.source_arn = stack.format_arn(
            service="appconfig",
            resource="application",
            resource_name=f"{flags.application_id}*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        for child in flags.profile.node.children:
            if isinstance(child, appconfig.CfnDeployment | appconfig.CfnHostedConfigurationVersion):
                child.node.add_dependency(permission)

    def _api(self, config: EnvironmentConfig) -> tuple[apigwv2.HttpApi, apigwv2.HttpStage]:
        api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{config.prefix}-serving",
            description=f"{config.prefix}: inference and feedback (IAM auth on every route)",
            create_default_stage=False,
            default_authorizer=authorizers.HttpIamAuthorizer(),
        )
        for path, function, name in (
            (INVOCATIONS_PATH, self.router_function, "Router"),
            (FEEDBACK_PATH, self.feedback_function, "Feedback"),
        ):
            api.add_routes(
                path=path,
                methods=[apigwv2.HttpMethod.POST],
                integration=integrations.HttpLambdaIntegration(
                    f"{name}Integration",
                    function,
                    payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
                ),
            )
        access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION)
        stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(access_logs),
            throttle=apigwv2.ThrottleSettings(
                rate_limit=THROTTLE_RATE_LIMIT, burst_limit=THROTTLE_BURST_LIMIT
            ),
        )
        return api, stage
