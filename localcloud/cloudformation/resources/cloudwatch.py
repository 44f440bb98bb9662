"""CloudWatch metric and composite alarms, and dashboards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from localcloud.cloudformation.models import (
    AlarmApisUnavailableError,
    DeployContext,
    DeployedResource,
    ResourceKind,
    unimplemented,
)

_METRIC_ALARM_PROPERTIES = frozenset(
    {
        "AlarmName",
        "AlarmDescription",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "Unit",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ThresholdMetricId",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "Tags",
    }
)


_COMPOSITE_ALARM_PROPERTIES = frozenset(
    {
        "AlarmName",
        "AlarmRule",
        "AlarmDescription",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "ActionsSuppressor",
        "ActionsSuppressorWaitPeriod",
        "ActionsSuppressorExtensionPeriod",
        "Tags",
    }
)


def _put_metric_alarm(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    # The alarm's CloudFormation properties are PutMetricAlarm's parameters, `Metrics` included.
    name = ctx.name(logical_id, props.get("AlarmName"), max_length=255)
    ctx.client("cloudwatch").put_metric_alarm(**{**props, "AlarmName": name})
    arn = ctx.arn("cloudwatch", f"alarm:{name}")
    return DeployedResource(logical_id, "AWS::CloudWatch::Alarm", name, name, {"Arn": arn})


def _put_composite_alarm(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("AlarmName"), max_length=255)
    try:
        ctx.client("cloudwatch").put_composite_alarm(**{**props, "AlarmName": name})
    except (ClientError, NotImplementedError) as error:
        if not unimplemented(error):
            raise
        raise AlarmApisUnavailableError(
            f"{ctx.template.name}/{logical_id}: moto has no PutCompositeAlarm; open "
            "localcloud.cloudwatch.alarm_evaluator.emulate_alarm_apis() while deploying"
        ) from error
    arn = ctx.arn("cloudwatch", f"alarm:{name}")
    return DeployedResource(logical_id, "AWS::CloudWatch::CompositeAlarm", name, name, {"Arn": arn})


def _put_dashboard(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    name = ctx.name(logical_id, props.get("DashboardName"), max_length=255)
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=str(props["DashboardBody"]))
    arn = ctx.arn("cloudwatch", f"dashboard/{name}", regional=False)
    return DeployedResource(logical_id, "AWS::CloudWatch::Dashboard", name, name, {"Arn": arn})


CLOUDWATCH_KINDS: Mapping[str, ResourceKind] = {
    "AWS::CloudWatch::Alarm": ResourceKind(_put_metric_alarm, _METRIC_ALARM_PROPERTIES),
    "AWS::CloudWatch::CompositeAlarm": ResourceKind(_put_composite_alarm, _COMPOSITE_ALARM_PROPERTIES),
    "AWS::CloudWatch::Dashboard": ResourceKind(
        _put_dashboard,
        frozenset({"DashboardName", "DashboardBody"}),
        {"Tags": "moto's CloudWatch TagResource knows alarms only"},
    ),
}
