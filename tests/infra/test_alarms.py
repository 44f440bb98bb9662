"""Alarms, composite alarm and dashboard per endpoint, checked on the synthesized template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from infra.alarms import EndpointAlarms, error_rate_expression
from infra.config import Endpoint, EnvironmentConfig
from infra.dashboard import EndpointDashboard
from tests.infra.conftest import Synthesized

ALARM = "AWS::CloudWatch::Alarm"
COMPOSITE = "AWS::CloudWatch::CompositeAlarm"
KINDS = ("5xx", "4xx", "latency-p99", "business")


def _variants(endpoint: Endpoint) -> list[str]:
    challenger = endpoint.variants.shadow if endpoint.shadow else endpoint.variants.challenger
    return [endpoint.variants.champion, challenger]


def _dimensions(config: EnvironmentConfig, endpoint: Endpoint, variant: str) -> list[dict[str, str]]:
    return [
        {"Name": "EndpointName", "Value": f"{config.prefix}-{endpoint.name}"},
        {"Name": "VariantName", "Value": variant},
    ]


def _alarm_name(config: EnvironmentConfig, endpoint: Endpoint, variant: str, kind: str) -> str:
    return f"{config.prefix}-{endpoint.name}-{variant}-{kind}"


def _endpoint_alarms(
    resources: dict[str, Any], config: EnvironmentConfig, endpoint: Endpoint
) -> dict[str, Any]:
    """This endpoint's alarms (metric and composite) by logical id, recognised by their names."""
    names = {
        _alarm_name(config, endpoint, variant, kind) for variant in _variants(endpoint) for kind in KINDS
    }
    names.add(f"{config.prefix}-{endpoint.name}-unhealthy")
    return {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resource["Type"] in (ALARM, COMPOSITE) and resource["Properties"].get("AlarmName") in names
    }


def _references(value: Any) -> Iterator[str]:
    """Every logical id that a Ref or Fn::GetAtt inside `value` points to."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0]
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _dimension_entries(value: Any) -> Iterator[dict[str, Any]]:
    """Every {Name, Value} dimension of a metric alarm or of the metrics inside a math alarm."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Dimensions":
                yield from inner
            else:
                yield from _dimension_entries(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _dimension_entries(inner)


def _dashboard_body(resource: dict[str, Any]) -> dict[str, Any]:
    """The dashboard JSON, with each CloudFormation token replaced by a placeholder string."""
    body = resource["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        separator, parts = body["Fn::Join"]
        body = separator.join(part if isinstance(part, str) else "TOKEN" for part in parts)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


# --- the dev app -------------------------------------------------------------------------------


@pytest.mark.parametrize("error_class", ["5XX", "4XX"])
def test_error_alarms_watch_the_rate_of_errors_per_variant(
    dev: Synthesized, error_class: Literal["5XX", "4XX"]
) -> None:
    config = dev.config
    kind = error_class.lower()
    threshold = (
        config.alarms.error_5xx_rate_percent if kind == "5xx" else config.alarms.error_4xx_rate_percent
    )
    error_id = f"errors{kind}"
    for endpoint in config.endpoints:
        for variant in _variants(endpoint):
            stat = {"Period": config.alarms.period_seconds, "Stat": "Sum"}
            dev.template.has_resource_properties(
                ALARM,
                {
                    "AlarmName": _alarm_name(config, endpoint, variant, kind),
                    "ComparisonOperator": "GreaterThanThreshold",
                    "Threshold": threshold,
                    "EvaluationPeriods": config.alarms.evaluation_periods,
                    "DatapointsToAlarm": config.alarms.datapoints_to_alarm,
                    "TreatMissingData": "notBreaching",
                    "Metrics": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Expression": error_rate_expression(
                                        error_id, config.alarms.minimum_invocations
                                    ),
                                    "ReturnData": True,
                                }
                            ),
                            Match.object_like(
                                {
                                    "Id": error_id,
                                    "ReturnData": False,
                                    "MetricStat": {
                                        "Metric": {
                                            "Namespace": "AWS/SageMaker",
                                            "MetricName": f"Invocation{error_class}Errors",
                                            "Dimensions": _dimensions(config, endpoint, variant),
                                        },
                                        **stat,
                                    },
                                }
                            ),
                            Match.object_like(
                                {
                                    "Id": "invocations",
                                    "ReturnData": False,
                                    "MetricStat": {
                                        "Metric": {
                                            "Namespace": "AWS/SageMaker",
                                            "MetricName": "Invocations",
                                            "Dimensions": _dimensions(config, endpoint, variant),
                                        },
                                        **stat,
                                    },
                                }
                            ),
                        ]
                    ),
                },
            )


def test_error_rate_is_zero_below_the_minimum_volume() -> None:
    # 1 error in 2 requests is 50 % but must not page anyone; the floor is at least 1 request.
    assert error_rate_expression("e", 20) == "IF(invocations >= 20, 100 * FILL(e, 0) / invocations, 0)"
    assert error_rate_expression("e", 0).startswith("IF(invocations >= 1,")


def test_latency_alarm_converts_the_millisecond_threshold_to_microseconds(dev: Synthesized) -> None:
    config = dev.config
    for endpoint in config.endpoints:
        for variant in _variants(endpoint):
            dev.template.has_resource_properties(
                ALARM,
                {
                    "AlarmName": _alarm_name(config, endpoint, variant, "latency-p99"),
                    "Namespace": "AWS/SageMaker",
                    "MetricName": "ModelLatency",
                    "ExtendedStatistic": "p99",
                    "Dimensions": _dimensions(config, endpoint, variant),
                    "Period": config.alarms.period_seconds,
                    "Threshold": config.alarms.model_latency_p99_ms * 1000,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                },
            )


def test_business_alarm_fires_on_the_configured_side_of_the_threshold(dev: Synthesized) -> None:
    config = dev.config
    for endpoint in config.endpoints:
        metric = endpoint.business_metric
        operator = "LessThanThreshold" if metric.alarm_when == "below" else "GreaterThanThreshold"
        for variant in _variants(endpoint):
            dev.template.has_resource_properties(
                ALARM,
                {
                    "AlarmName": _alarm_name(config, endpoint, variant, "business"),
                    "Namespace": metric.namespace,
                    "MetricName": metric.name,
                    "Statistic": metric.statistic,
                    "Dimensions": _dimensions(config, endpoint, variant),
                    "Threshold": metric.threshold,
                    "ComparisonOperator": operator,
                    "TreatMissingData": "notBreaching",
                },
            )


def test_composite_alarm_fires_when_any_alarm_of_the_endpoint_fires(dev: Synthesized) -> None:
    config = dev.config
    for endpoint in config.endpoints:
        alarms = _endpoint_alarms(dev.resources, config, endpoint)
        composite = next(resource for resource in alarms.values() if resource["Type"] == COMPOSITE)
        separator, parts = composite["Properties"]["AlarmRule"]["Fn::Join"]
        text = separator.join(part for part in parts if isinstance(part, str))
        covered = {dev.resources[logical_id]["Properties"]["AlarmName"] for logical_id in _references(parts)}
        expected = {
            _alarm_name(config, endpoint, variant, kind) for variant in _variants(endpoint) for kind in KINDS
        }
        assert covered == expected
        # Each member counts when it is in ALARM, and any one of them is enough.
        assert text.count('ALARM("') == len(expected)
        assert text.count(" OR ") == len(expected) - 1
        assert " AND " not in text


def test_champion_composite_covers_exactly_the_champion_alarms(dev: Synthesized) -> None:
    config = dev.config
    for endpoint in config.endpoints:
        (composite,) = [
            alarm
            for alarm in dev.of_type(COMPOSITE).values()
            if alarm["Properties"]["AlarmName"] == f"{config.prefix}-{endpoint.name}-champion-unhealthy"
        ]
        _, parts = composite["Properties"]["AlarmRule"]["Fn::Join"]
        covered = {dev.resources[logical_id]["Properties"]["AlarmName"] for logical_id in _references(parts)}
        assert covered == {_alarm_name(config, endpoint, endpoint.variants.champion, kind) for kind in KINDS}


def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery(dev: Synthesized) -> None:
    # The family stack's view of the environment's topic (the platform stack hands its ARN over in SSM).
    topic = dev.platform_value("topic")
    for endpoint in dev.config.endpoints:
        alarms = _endpoint_alarms(dev.resources, dev.config, endpoint)
        assert len(alarms) == len(KINDS) * 2 + 1, "every named alarm and the composite should exist"
        for resource in alarms.values():
            name = resource["Properties"]["AlarmName"]
            assert resource["Properties"]["AlarmActions"] == [topic], name
            assert resource["Properties"]["OKActions"] == [topic], name


def test_alarms_do_not_depend_on_the_endpoint_they_guard(dev: Synthesized) -> None:
    # The endpoint lists these alarms for auto-rollback; a reference back would be a cycle.
    endpoint_ids = set(dev.of_type("AWS::SageMaker::Endpoint"))
    for endpoint in dev.config.endpoints:
        for logical_id, resource in _endpoint_alarms(dev.resources, dev.config, endpoint).items():
            assert not endpoint_ids & set(_references(resource["Properties"])), logical_id
            assert not endpoint_ids & set(resource.get("DependsOn", [])), logical_id
            for dimension in _dimension_entries(resource["Properties"]):
                assert isinstance(dimension["Value"], str), f"{logical_id}: {dimension}"


def _deployed_variants(synth: Synthesized) -> dict[str, set[str]]:
    """Variant names (production and shadow) of every SageMaker endpoint, by endpoint name."""
    deployed: dict[str, set[str]] = {}
    for resource in synth.of_type("AWS::SageMaker::Endpoint").values():
        config_id = resource["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]
        endpoint_config = synth.resources[config_id]["Properties"]
        variants = endpoint_config.get("ProductionVariants", []) + endpoint_config.get(
            "ShadowProductionVariants", []
        )
        deployed[resource["Properties"]["EndpointName"]] = {variant["VariantName"] for variant in variants}
    return deployed


def test_alarm_dimensions_name_the_deployed_endpoint_and_its_variants(dev: Synthesized) -> None:
    # Names are shared by value, not by reference: a mismatch would leave the alarms watching nothing.
    deployed = _deployed_variants(dev)
    for endpoint in dev.config.endpoints:
        for logical_id, resource in _endpoint_alarms(dev.resources, dev.config, endpoint).items():
            dimensions = list(_dimension_entries(resource["Properties"]))
            endpoint_names = {d["Value"] for d in dimensions if d["Name"] == "EndpointName"}
            variant_names = {d["Value"] for d in dimensions if d["Name"] == "VariantName"}
            for name in endpoint_names:
                assert name in deployed, f"{logical_id}: no SageMaker endpoint named {name}"
                assert variant_names <= deployed[name], f"{logical_id}: {variant_names} vs {deployed[name]}"


def test_dashboard_shows_traffic_errors_latency_and_business_per_variant(dev: Synthesized) -> None:
    config = dev.config
    for endpoint in config.endpoints:
        dashboards = [
            resource
            for resource in dev.of_type("AWS::CloudWatch::Dashboard").values()
            if resource["Properties"].get("DashboardName") == f"{config.prefix}-{endpoint.name}"
        ]
        assert dashboards, f"no dashboard for endpoint {endpoint.name}"
        widgets = _dashboard_body(dashboards[0])["widgets"]
        titles = {widget["properties"].get("title") for widget in widgets}
        alarm_widgets = [widget for widget in widgets if widget["type"] == "alarm"]
        assert alarm_widgets and len(alarm_widgets[0]["properties"]["alarms"]) == len(KINDS) * 2 + 1
        for variant in _variants(endpoint):
            assert {
                f"{variant}: invocations",
                f"{variant}: error rate (%)",
                f"{variant}: model latency (ms)",
                f"{variant}: {endpoint.business_metric.name}",
            } <= titles
            latency = next(
                w for w in widgets if w["properties"].get("title") == f"{variant}: model latency (ms)"
            )
            rendered = json.dumps(latency["properties"]["metrics"])
            for percentile in ("p50", "p90", "p99"):
                assert f"{percentile} / 1000" in rendered
            assert f'"VariantName", "{variant}"' in rendered


# --- a second configuration: shadow variant, business metric that alarms when high ----------


@pytest.fixture(scope="module")
def shadow(dev: Synthesized) -> tuple[EndpointAlarms, Template, Endpoint]:
    base = dev.config.endpoints[0]
    endpoint = base.model_copy(
        update={
            "shadow": True,
            "business_metric": base.business_metric.model_copy(update={"alarm_when": "above"}),
        }
    )
    stack = Stack(App(), "ShadowAlarms")
    topic = sns.Topic(stack, "Topic")
    alarms = EndpointAlarms(
        stack, "Alarms", prefix="test", endpoint=endpoint, thresholds=dev.config.alarms, topic=topic
    )
    EndpointDashboard(stack, "Dashboard", prefix="test", endpoint=endpoint, alarms=alarms)
    return alarms, Template.from_stack(stack), endpoint


def test_shadow_endpoint_watches_the_shadow_variant_instead_of_the_challenger(
    shadow: tuple[EndpointAlarms, Template, Endpoint],
) -> None:
    alarms, template, endpoint = shadow
    assert alarms.variant_names == [endpoint.variants.champion, endpoint.variants.shadow]
    names = {resource["Properties"]["AlarmName"] for resource in template.find_resources(ALARM).values()}
    assert names == set(alarms.alarm_names)
    assert {f"test-{endpoint.name}-{endpoint.variants.shadow}-{kind}" for kind in KINDS} <= names
    assert not any(f"-{endpoint.variants.challenger}-" in name for name in names)
    template.has_resource_properties(
        ALARM,
        {
            "AlarmName": f"test-{endpoint.name}-{endpoint.variants.shadow}-latency-p99",
            "Dimensions": [
                {"Name": "EndpointName", "Value": f"test-{endpoint.name}"},
                {"Name": "VariantName", "Value": endpoint.variants.shadow},
            ],
        },
    )


def test_business_alarm_can_fire_when_the_metric_rises(
    shadow: tuple[EndpointAlarms, Template, Endpoint],
) -> None:
    _, template, endpoint = shadow
    template.has_resource_properties(
        ALARM,
        {
            "AlarmName": f"test-{endpoint.name}-{endpoint.variants.champion}-business",
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": endpoint.business_metric.threshold,
        },
    )


def test_alarm_names_attribute_lists_the_deployed_alarm_names(
    shadow: tuple[EndpointAlarms, Template, Endpoint],
) -> None:
    # The endpoint's AutoRollbackConfiguration is built from this list, so it must match exactly.
    alarms, template, endpoint = shadow
    deployed = [resource["Properties"]["AlarmName"] for resource in template.find_resources(ALARM).values()]
    assert sorted(alarms.alarm_names) == sorted(deployed)
    assert len(alarms.alarms) == len(alarms.alarm_names)
    template.has_resource_properties(COMPOSITE, {"AlarmName": f"test-{endpoint.name}-unhealthy"})
