"""Notifications: one KMS-encrypted, TLS-only SNS topic that alarms and rollback events publish to."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# What a publishing service needs on the topic's key: SNS encrypts each message with a data key.
PUBLISH_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


class Notifications(Construct):
    """The on-call topic. Alarm state changes arrive from CloudWatch, rollback events from EventBridge."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, emails: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Only this environment's alarms (all named "<prefix>-...") may use the key and the topic.
        alarm_arns = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{prefix}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        from_own_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarm_arns},
        }

        self.key = kms.Key(
            self,
            "TopicKey",
            alias=f"alias/{prefix}-notifications",
            description=f"{prefix}: notification topic (alarm and rollback messages)",
            enable_key_rotation=True,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=PUBLISH_KEY_ACTIONS,
                resources=["*"],  # in a key policy "*" means this key only
                conditions=from_own_alarms,
            )
        )
        # No EventBridge rule targets the topic (the workflows publish through their functions and
        # Step Functions' SNS integration, as their roles): events.amazonaws.com gets no grant on the key.
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{prefix}-notifications",
            display_name=f"{prefix} alarms and rollbacks",
            master_key=self.key,
            enforce_ssl=True,
        )
        # The TLS-only statement replaces SNS's default topic policy, so CloudWatch needs its own grant.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_own_alarms,
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


def failure_alarm(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    description: str,
    metric: cloudwatch.IMetric,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """An alarm on the topic as soon as `metric` counts one failure (no datapoint is no failure)."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=name,
        alarm_description=description,
        metric=metric,
        threshold=1,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    return alarm
