"""Feature flags in AppConfig, checked on the synthesized template."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from infra.alarms import champion_composite_alarm_name
from infra.config import load_config
from infra.feature_flags import PROFILE_NAME, endpoint_variants
from lambdas.flags import FlagSet
from tests.infra.conftest import Synthesized

APPLICATION = "AWS::AppConfig::Application"
ENVIRONMENT = "AWS::AppConfig::Environment"
PROFILE = "AWS::AppConfig::ConfigurationProfile"
VERSION = "AWS::AppConfig::HostedConfigurationVersion"
STRATEGY = "AWS::AppConfig::DeploymentStrategy"
DEPLOYMENT = "AWS::AppConfig::Deployment"


def _only(dev: Synthesized, resource_type: str, properties: dict[str, Any]) -> str:
    """The logical id of the one resource of this type with these properties."""
    found = dev.template.find_resources(resource_type, {"Properties": Match.object_like(properties)})
    assert len(found) == 1, f"expected one {resource_type} with {properties}, found {sorted(found)}"
    return next(iter(found))


def _application(dev: Synthesized) -> str:
    return _only(dev, APPLICATION, {"Name": dev.config.prefix})


def _profile(dev: Synthesized) -> str:
    return _only(dev, PROFILE, {"Name": PROFILE_NAME, "ApplicationId": {"Ref": _application(dev)}})


def _composite_alarms(dev: Synthesized) -> list[str]:
    return [
        _only(
            dev,
            "AWS::CloudWatch::CompositeAlarm",
            {"AlarmName": champion_composite_alarm_name(dev.config.prefix, endpoint)},
        )
        for endpoint in dev.config.endpoints
    ]


def _monitor_role(dev: Synthesized) -> str:
    return _only(
        dev,
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "appconfig.amazonaws.com"}})]}
            )
        },
    )


def test_flag_profile_is_a_hosted_native_feature_flag_profile(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        PROFILE,
        Match.object_like(
            {
                "ApplicationId": {"Ref": _application(dev)},
                "Name": PROFILE_NAME,
                "LocationUri": "hosted",
                "Type": "AWS.AppConfig.FeatureFlags",
            }
        ),
    )


def test_hosted_content_is_the_generated_document_with_every_kill_switch_off(dev: Synthesized) -> None:
    version = _only(dev, VERSION, {"ConfigurationProfileId": {"Ref": _profile(dev)}})
    properties = dev.resources[version]["Properties"]
    catalog = [endpoint_variants(endpoint) for endpoint in dev.config.endpoints]

    content = json.loads(properties["Content"])

    assert properties["ContentType"] == "application/json"
    assert content == FlagSet.initial(catalog).document()
    for endpoint in dev.config.endpoints:
        assert content["values"][f"{endpoint.name}-kill-switch"] == {"enabled": False}


def _api_error_alarm(dev: Synthesized) -> str:
    [alarm] = [
        key for key in dev.of_type("AWS::CloudWatch::Alarm") if key.startswith("ServingServerErrorRate")
    ]
    return alarm


def test_environment_is_the_stage_and_rolls_back_when_the_api_answers_5xx(dev: Synthesized) -> None:
    # One monitor however many endpoints (AppConfig takes five at most): the inference API's 5XX rate.
    role = _monitor_role(dev)
    monitors = [
        {
            "AlarmArn": {"Fn::GetAtt": [_api_error_alarm(dev), "Arn"]},
            "AlarmRoleArn": {"Fn::GetAtt": [role, "Arn"]},
        }
    ]
    dev.template.has_resource_properties(
        ENVIRONMENT,
        Match.object_like(
            {"ApplicationId": {"Ref": _application(dev)}, "Name": dev.config.name, "Monitors": monitors}
        ),
    )
    alarm = dev.resources[_api_error_alarm(dev)]["Properties"]
    assert alarm["Threshold"] == dev.config.alarms.error_5xx_rate_percent
    assert alarm["AlarmName"] == f"{dev.config.prefix}-api-5xx-rate"


def test_monitor_role_may_only_describe_the_monitored_alarm(dev: Synthesized) -> None:
    role = dev.resources[_monitor_role(dev)]["Properties"]
    statements = [
        statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {
            "Action": "cloudwatch:DescribeAlarms",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [_api_error_alarm(dev), "Arn"]},
        }
    ]
    assert "ManagedPolicyArns" not in role


def test_deployment_strategy_follows_the_config(dev: Synthesized) -> None:
    flag_deployment = dev.config.flag_deployment

    dev.template.has_resource_properties(
        STRATEGY,
        Match.object_like(
            {
                "Name": f"{dev.config.prefix}-flags",
                "DeploymentDurationInMinutes": flag_deployment.duration_minutes,
                "FinalBakeTimeInMinutes": flag_deployment.final_bake_minutes,
                "GrowthFactor": flag_deployment.growth_factor,
                "GrowthType": flag_deployment.growth_type,
                "ReplicateTo": "NONE",
            }
        ),
    )


def test_initial_deployment_sends_the_generated_version_to_the_stage_with_the_strategy(
    dev: Synthesized,
) -> None:
    profile = _profile(dev)
    version = _only(dev, VERSION, {"ConfigurationProfileId": {"Ref": profile}})
    environment = _only(dev, ENVIRONMENT, {"Name": dev.config.name})
    strategy = _only(dev, STRATEGY, {"Name": f"{dev.config.prefix}-flags"})

    dev.template.has_resource_properties(
        DEPLOYMENT,
        Match.object_like(
            {
                "ApplicationId": {"Ref": _application(dev)},
                "ConfigurationProfileId": {"Ref": profile},
                "ConfigurationVersion": {"Ref": version},
                "EnvironmentId": {"Ref": environment},
                "DeploymentStrategyId": {"Ref": strategy},
            }
        ),
    )


def test_shadow_endpoint_flags_may_pin_only_to_the_champion() -> None:
    prod = load_config("prod")
    shadowed = next(endpoint for endpoint in prod.endpoints if endpoint.shadow)
    plain = next(endpoint for endpoint in prod.endpoints if not endpoint.shadow)

    assert endpoint_variants(shadowed).pinnable == (shadowed.variants.champion,)
    assert endpoint_variants(plain).pinnable == (plain.variants.champion, plain.variants.challenger)
