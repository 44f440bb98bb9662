"""A template's CloudWatch alarms, created through the API: metric alarms, then composites, children first."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from localcloud.cloudformation.template import Resolver, StackTemplate, local_physical_name
from localcloud.cloudwatch.alarm_rules import parse_alarm_rule, rule_references
from localcloud.cloudwatch.models import AlarmConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


METRIC_ALARM_TYPE = "AWS::CloudWatch::Alarm"


COMPOSITE_ALARM_TYPE = "AWS::CloudWatch::CompositeAlarm"


@dataclass(frozen=True)
class TemplateAlarms:
    """The alarms `put_template_alarms` created: logical id -> alarm name."""

    metric_alarms: dict[str, str] = field(default_factory=dict)
    composite_alarms: dict[str, str] = field(default_factory=dict)


def alarm_resolver(resolver: Resolver) -> Resolver:
    """`resolver` knowing the template's alarms: `Ref` gives the alarm's name, `Fn::GetAtt .Arn` its ARN."""
    template = resolver.template
    environment = resolver.environment
    physical_ids = dict(resolver.physical_ids)
    attributes = {key: dict(value) for key, value in resolver.attributes.items()}
    for logical_id, resource in template.resources.items():
        if resource.get("Type") not in (METRIC_ALARM_TYPE, COMPOSITE_ALARM_TYPE):
            continue
        declared = resource.get("Properties", {}).get("AlarmName")
        name = declared if isinstance(declared, str) else local_physical_name(template.name, logical_id)
        physical_ids[logical_id] = name
        attributes.setdefault(logical_id, {})["Arn"] = environment.arn("cloudwatch", f"alarm:{name}")
    return replace(resolver, physical_ids=physical_ids, attributes=attributes)


def put_template_alarms(
    client: CloudWatchClient, template: StackTemplate, resolver: Resolver
) -> TemplateAlarms:
    """Create the template's metric alarms, then its composite alarms (children first), through the API.

    Composite alarms need `emulate_alarm_apis` open. The properties are the template's, resolved; the
    CloudFormation properties of both types are the API's parameters.
    """
    resolver = alarm_resolver(resolver)
    created = TemplateAlarms()
    composites: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template.resources_of_type(METRIC_ALARM_TYPE).items():
        properties = resolver.resolve(dict(resource.get("Properties", {})))
        properties.setdefault("AlarmName", resolver.physical_ids[logical_id])
        client.put_metric_alarm(**properties)
        created.metric_alarms[logical_id] = properties["AlarmName"]
    for logical_id, resource in template.resources_of_type(COMPOSITE_ALARM_TYPE).items():
        properties = resolver.resolve(dict(resource.get("Properties", {})))
        properties.setdefault("AlarmName", resolver.physical_ids[logical_id])
        composites[logical_id] = properties
    names = {properties["AlarmName"] for properties in composites.values()}
    arns = {
        resolver.attributes[logical_id]["Arn"]: properties["AlarmName"]
        for logical_id, properties in composites.items()
    }
    pending = dict(composites)
    while pending:
        ready = {
            logical_id: properties
            for logical_id, properties in pending.items()
            if all(
                arns.get(reference, reference) not in names
                or arns.get(reference, reference) in created.composite_alarms.values()
                for reference in rule_references(parse_alarm_rule(properties["AlarmRule"]))
            )
        }
        if not ready:
            raise AlarmConfigurationError(
                f"{template.name}: composite alarms refer to each other in a cycle: {sorted(pending)}"
            )
        for logical_id, properties in ready.items():
            client.put_composite_alarm(**properties)
            created.composite_alarms[logical_id] = properties["AlarmName"]
            del pending[logical_id]
    return created
