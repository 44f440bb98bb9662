"""AppConfig deployments and AppConfigData on moto (`localcloud.appconfig`): in-process and through moto's
server, read by the router's own flag source, with validators, monitors and deployment events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from lambdas.flags import EndpointFlags, FlagSet, KillSwitch, SegmentPin
from lambdas.serving.aws.flags import AppConfigFlagSource
from lambdas.serving.ports import FlagsUnavailable
from lambdas.serving.settings import CatalogSettings, load_settings
from localcloud.appconfig.backend import AppConfigEmulator
from localcloud.appconfig.models import (
    DEPLOYMENT_COMPLETED_EVENT,
    DEPLOYMENT_ROLLED_BACK_EVENT,
    DEPLOYMENT_STARTED_EVENT,
    EVENTS_EXTENSION,
)
from localcloud.appconfig.routing import appconfig_gap_filler, emulate_appconfig
from localcloud.appconfig.validators import feature_flag_values
from localcloud.awslambda.invocations import create_functions, route_lambda_invocations
from localcloud.awslambda.runner import LambdaRunner
from localcloud.cloud import LocalCloud
from localcloud.cloudformation.functions import functions_from_template
from localcloud.cloudformation.template import app_template, load_stacks, local_resolver
from tests.functional.inline_settings import with_inline_endpoints
from tests.functional.serving_support import CATALOG
from tests.infra.conftest import shared_outdir

APPLICATION = "mlrollout-dev"
ENVIRONMENT = "dev"
PROFILE = "flags"
POLL_SECONDS = 15
START = 1_750_000_000.0
RECEIVE_ATTEMPTS = 20
VALIDATOR = "ServingFlagValidatorFunctionC549804D"
STACK = "MlRollout-dev"


class ManualClock:
    """AppConfig's time in these tests: it moves only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Flags:
    """An application, environment (with one monitor alarm) and feature-flag profile, and the clients."""

    appconfig: Any
    data: Any
    application_id: str
    environment_id: str
    profile_id: str
    alarm_name: str

    def version(self, document: Any, profile_id: str | None = None) -> str:
        response = self.appconfig.create_hosted_configuration_version(
            ApplicationId=self.application_id,
            ConfigurationProfileId=profile_id or self.profile_id,
            Content=json.dumps(document).encode(),
            ContentType="application/json",
        )
        return str(response["VersionNumber"])

    def strategy(self, duration: int = 0, bake: int = 0, growth: float = 100.0) -> str:
        response = self.appconfig.create_deployment_strategy(
            Name=f"s-{duration}-{bake}-{growth}",
            DeploymentDurationInMinutes=duration,
            FinalBakeTimeInMinutes=bake,
            GrowthFactor=growth,
            GrowthType="LINEAR",
        )
        return str(response["Id"])

    def deploy(self, version: str, strategy: str, profile_id: str | None = None) -> dict[str, Any]:
        response: dict[str, Any] = self.appconfig.start_deployment(
            ApplicationId=self.application_id,
            EnvironmentId=self.environment_id,
            DeploymentStrategyId=strategy,
            ConfigurationProfileId=profile_id or self.profile_id,
            ConfigurationVersion=version,
        )
        return response

    def deployment(self, number: int) -> dict[str, Any]:
        response: dict[str, Any] = self.appconfig.get_deployment(
            ApplicationId=self.application_id, EnvironmentId=self.environment_id, DeploymentNumber=number
        )
        return response

    def session(self, interval: int = POLL_SECONDS) -> str:
        response = self.data.start_configuration_session(
            ApplicationIdentifier=APPLICATION,
            EnvironmentIdentifier=ENVIRONMENT,
            ConfigurationProfileIdentifier=PROFILE,
            RequiredMinimumPollIntervalInSeconds=interval,
        )
        return str(response["InitialConfigurationToken"])

    def source(self) -> AppConfigFlagSource:
        # TTL 0: Powertools caches nothing, so every read polls AppConfigData on its session.
        return AppConfigFlagSource(
            application=APPLICATION,
            environment=ENVIRONMENT,
            profile=PROFILE,
            ttl_seconds=0,
            catalog=CATALOG,
            client=self.data,
        )


def kill_switch_on() -> FlagSet:
    return FlagSet(
        endpoints=(EndpointFlags(endpoint=CATALOG[0], kill_switch=KillSwitch(on=True, reason="INC-1")),)
    )


def create_flags(endpoint_url: str | None) -> Flags:
    appconfig = boto3.client("appconfig", endpoint_url=endpoint_url)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint_url)
    cloudwatch.put_metric_alarm(
        AlarmName="churn-champion",
        MetricName="Errors",
        Namespace="mlrollout",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    [alarm] = cloudwatch.describe_alarms(AlarmNames=["churn-champion"])["MetricAlarms"]
    application = appconfig.create_application(Name=APPLICATION)
    environment = appconfig.create_environment(
        ApplicationId=application["Id"],
        Name=ENVIRONMENT,
        Monitors=[{"AlarmArn": alarm["AlarmArn"], "AlarmRoleArn": "arn:aws:iam::123456789012:role/monitor"}],
    )
    profile = appconfig.create_configuration_profile(
        ApplicationId=application["Id"], Name=PROFILE, LocationUri="hosted", Type="AWS.AppConfig.FeatureFlags"
    )
    return Flags(
        appconfig=appconfig,
        data=boto3.client("appconfigdata", endpoint_url=endpoint_url),
        application_id=application["Id"],
        environment_id=environment["Id"],
        profile_id=profile["Id"],
        alarm_name="churn-champion",
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[AppConfigEmulator]:
    with mock_aws(), emulate_appconfig(clock=clock, tick_seconds=None) as emulator:
        yield emulator


@pytest.fixture
def server(emulator: AppConfigEmulator) -> Iterator[str]:
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        moto_server.stop()


@pytest.fixture
def flags(emulator: AppConfigEmulator) -> Flags:
    return create_flags(None)


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    return {"Code": raised.value.response["Error"]["Code"], **raised.value.response}


# --- reading flags the router's way -------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["in-process", "server"])
def test_the_router_reads_deployed_flags_and_sees_the_kill_switch_after_its_poll_interval(
    emulator: AppConfigEmulator, clock: ManualClock, request: pytest.FixtureRequest, transport: str
) -> None:
    endpoint_url = request.getfixturevalue("server") if transport == "server" else None
    flags = create_flags(endpoint_url)
    instant = flags.strategy()
    first = flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), instant)
    assert first["State"] == "COMPLETE"
    source = flags.source()
    assert source.flags() == FlagSet.initial(CATALOG)

    second = flags.deploy(flags.version(kill_switch_on().document()), instant)
    assert flags.deployment(second["DeploymentNumber"])["State"] == "COMPLETE"
    clock.advance(POLL_SECONDS)
    assert source.flags() == kill_switch_on()


def test_a_feature_flag_profile_is_served_in_its_values_form(flags: Flags) -> None:
    pinned = FlagSet(
        endpoints=(
            EndpointFlags(
                endpoint=CATALOG[0], segment_pin=SegmentPin(segments=("beta",), variant="challenger")
            ),
        )
    )
    document = pinned.document()
    document["values"]["churn-segment-pin"]["_updatedAt"] = "2024-01-01T00:00:00Z"
    document["values"]["churn-user-pin"] = {"enabled": False, "users": ["u-1"], "variant": "challenger"}
    flags.deploy(flags.version(document), flags.strategy())
    response = flags.data.get_latest_configuration(ConfigurationToken=flags.session())
    served = json.loads(response["Configuration"].read())
    assert response["ContentType"] == "application/json"
    assert response["NextPollIntervalInSeconds"] == POLL_SECONDS
    assert served == pinned.values()
    assert served["churn-user-pin"] == {"enabled": False}
    assert served == feature_flag_values(document)


def test_nothing_changed_gives_an_empty_configuration_and_a_new_token(
    flags: Flags, clock: ManualClock
) -> None:
    flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy())
    first = flags.data.get_latest_configuration(ConfigurationToken=flags.session())
    assert first["Configuration"].read()
    clock.advance(POLL_SECONDS)
    second = flags.data.get_latest_configuration(ConfigurationToken=first["NextPollConfigurationToken"])
    assert second["Configuration"].read() == b""
    assert second["NextPollConfigurationToken"] != first["NextPollConfigurationToken"]


# --- deployments ---------------------------------------------------------------------------------------


def test_a_deployment_deploys_then_bakes_then_completes_on_the_strategys_clock(
    flags: Flags, clock: ManualClock
) -> None:
    strategy = flags.strategy(duration=2, bake=1, growth=50)
    number = flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), strategy)["DeploymentNumber"]
    observed = []
    for _ in range(4):
        deployment = flags.deployment(number)
        observed.append((deployment["State"], deployment["PercentageComplete"]))
        clock.advance(60)
    assert observed == [("DEPLOYING", 50.0), ("DEPLOYING", 100.0), ("BAKING", 100.0), ("COMPLETE", 100.0)]
    events = [event["EventType"] for event in flags.deployment(number)["EventLog"]]
    assert events == [
        "DEPLOYMENT_COMPLETED",
        "BAKE_TIME_STARTED",
        "PERCENTAGE_UPDATED",
        "PERCENTAGE_UPDATED",
        "DEPLOYMENT_STARTED",
    ]
    environment = flags.appconfig.get_environment(
        ApplicationId=flags.application_id, EnvironmentId=flags.environment_id
    )
    assert environment["State"] == "READY_FOR_DEPLOYMENT"


def test_a_second_deployment_to_an_environment_is_refused_while_one_is_in_progress(
    flags: Flags, clock: ManualClock
) -> None:
    version = flags.version(FlagSet.initial(CATALOG).document())
    slow = flags.strategy(duration=10)
    first = flags.deploy(version, slow)
    with pytest.raises(ClientError) as raised:
        flags.deploy(version, flags.strategy())
    assert error_of(raised)["Code"] == "ConflictException"
    assert "one configuration at a time" in raised.value.response["Error"]["Message"]
    stopped = flags.appconfig.stop_deployment(
        ApplicationId=flags.application_id,
        EnvironmentId=flags.environment_id,
        DeploymentNumber=first["DeploymentNumber"],
    )
    assert stopped["State"] == "ROLLED_BACK"
    assert stopped["EventLog"][0]["TriggeredBy"] == "USER"
    assert flags.deploy(version, flags.strategy())["DeploymentNumber"] == 2


def test_a_json_schema_validator_refuses_a_bad_version_and_nothing_is_deployed(flags: Flags) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"sample_rate": {"type": "number", "maximum": 1}},
        "required": ["sample_rate"],
    }
    profile = flags.appconfig.create_configuration_profile(
        ApplicationId=flags.application_id,
        Name="sampling",
        LocationUri="hosted",
        Type="AWS.Freeform",
        Validators=[{"Type": "JSON_SCHEMA", "Content": json.dumps(schema)}],
    )["Id"]
    bad = flags.version({"sample_rate": 5}, profile)
    with pytest.raises(ClientError) as raised:
        flags.deploy(bad, flags.strategy(), profile)
    error = error_of(raised)
    assert error["Code"] == "BadRequestException"
    assert error["Reason"] == "InvalidConfiguration"
    [problem] = error["Details"]["InvalidConfiguration"]
    assert problem["Location"] == "$['sample_rate']"
    assert "5 is greater than the maximum of 1" in problem["Reason"]
    listed = flags.appconfig.list_deployments(
        ApplicationId=flags.application_id, EnvironmentId=flags.environment_id
    )
    assert listed["Items"] == []
    good = flags.version({"sample_rate": 0.5}, profile)
    assert flags.deploy(good, flags.strategy(), profile)["State"] == "COMPLETE"


def test_a_monitor_in_alarm_rolls_the_deployment_back_and_the_old_flags_are_served_again(
    flags: Flags, clock: ManualClock
) -> None:
    flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy())
    before = flags.data.get_latest_configuration(ConfigurationToken=flags.session())
    assert json.loads(before["Configuration"].read()) == FlagSet.initial(CATALOG).values()
    baking = flags.deploy(flags.version(kill_switch_on().document()), flags.strategy(bake=10))
    assert baking["State"] == "BAKING"
    clock.advance(POLL_SECONDS)
    # Baking: every target has the new version.
    during = flags.data.get_latest_configuration(ConfigurationToken=before["NextPollConfigurationToken"])
    assert json.loads(during["Configuration"].read()) == kill_switch_on().values()

    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=flags.alarm_name, StateValue="ALARM", StateReason="errors above threshold"
    )
    clock.advance(POLL_SECONDS)
    rolled_back = flags.deployment(baking["DeploymentNumber"])
    assert rolled_back["State"] == "ROLLED_BACK"
    started = rolled_back["EventLog"][1]
    assert (started["EventType"], started["TriggeredBy"]) == ("ROLLBACK_STARTED", "CLOUDWATCH_ALARM")
    environment = flags.appconfig.get_environment(
        ApplicationId=flags.application_id, EnvironmentId=flags.environment_id
    )
    assert environment["State"] == "ROLLED_BACK"
    after = flags.data.get_latest_configuration(ConfigurationToken=during["NextPollConfigurationToken"])
    assert json.loads(after["Configuration"].read()) == FlagSet.initial(CATALOG).values()


# --- deployment events -------------------------------------------------------------------------------


@pytest.fixture
def event_queue(flags: Flags) -> str:
    return event_queue_for_rule()


def event_queue_for_rule() -> str:
    """A queue that a rule on every aws.appconfig event targets."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="appconfig-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events")
    events.put_rule(Name="flag-deployments", EventPattern=json.dumps({"source": ["aws.appconfig"]}))
    events.put_targets(Rule="flag-deployments", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return str(queue_url)


def received(queue_url: str, count: int) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    for _ in range(RECEIVE_ATTEMPTS):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        messages += [json.loads(message["Body"]) for message in batch]
        if len(messages) >= count:
            return messages
        time.sleep(0.05)
    raise AssertionError(f"expected {count} events on the queue, got {len(messages)}: {messages}")


def test_deployment_events_reach_an_eventbridge_rule_through_the_extension(
    flags: Flags, clock: ManualClock, event_queue: str
) -> None:
    flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy())
    assert boto3.client("sqs").receive_message(QueueUrl=event_queue).get("Messages", []) == []  # no extension

    application_arn = f"arn:aws:appconfig:us-east-1:123456789012:application/{flags.application_id}"
    association = flags.appconfig.create_extension_association(
        ExtensionIdentifier=EVENTS_EXTENSION, ResourceIdentifier=application_arn
    )
    completed = flags.deploy(flags.version(kill_switch_on().document()), flags.strategy())
    rolled_back = flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy(bake=10))
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=flags.alarm_name, StateValue="ALARM", StateReason="test"
    )
    clock.advance(60)
    flags.deployment(rolled_back["DeploymentNumber"])

    events = received(event_queue, 4)
    assert [event["detail-type"] for event in events] == [
        DEPLOYMENT_STARTED_EVENT,
        DEPLOYMENT_COMPLETED_EVENT,
        DEPLOYMENT_STARTED_EVENT,
        DEPLOYMENT_ROLLED_BACK_EVENT,
    ]
    complete = events[1]
    assert complete["source"] == "aws.appconfig"
    assert complete["resources"] == [association["Arn"]]
    detail = complete["detail"]
    assert detail["Type"] == "OnDeploymentComplete"
    assert detail["Application"] == {"Id": flags.application_id, "Name": APPLICATION}
    assert detail["Environment"] == {"Id": flags.environment_id, "Name": ENVIRONMENT}
    assert detail["ConfigurationProfile"] == {"Id": flags.profile_id, "Name": PROFILE}
    assert (detail["DeploymentNumber"], detail["ConfigurationVersion"]) == (
        completed["DeploymentNumber"],
        completed["ConfigurationVersion"],
    )
    assert events[3]["detail"]["Type"] == "OnDeploymentRolledBack"


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifiers", "resource_type"),
    [
        ({"ApplicationIdentifier": "nope"}, "Application"),
        ({"EnvironmentIdentifier": "prod"}, "Environment"),
        ({"ConfigurationProfileIdentifier": "missing"}, "ConfigurationProfile"),
    ],
)
def test_a_session_on_an_unknown_resource_is_refused_naming_it(
    flags: Flags, identifiers: dict[str, str], resource_type: str
) -> None:
    request = {
        "ApplicationIdentifier": APPLICATION,
        "EnvironmentIdentifier": ENVIRONMENT,
        "ConfigurationProfileIdentifier": PROFILE,
        **identifiers,
    }
    with pytest.raises(ClientError) as raised:
        flags.data.start_configuration_session(**request)
    error = error_of(raised)
    assert (error["Code"], error["ResourceType"]) == ("ResourceNotFoundException", resource_type)
    assert next(iter(identifiers.values())) in error["Error"]["Message"]


def test_a_deployment_of_an_unknown_environment_strategy_or_version_is_refused(flags: Flags) -> None:
    version = flags.version(FlagSet.initial(CATALOG).document())
    strategy = flags.strategy()
    cases = [
        {"EnvironmentId": "zzzzzzz"},
        {"DeploymentStrategyId": "yyyyyyy"},
        {"ConfigurationVersion": "99"},
    ]
    for case in cases:
        request = {
            "ApplicationId": flags.application_id,
            "EnvironmentId": flags.environment_id,
            "DeploymentStrategyId": strategy,
            "ConfigurationProfileId": flags.profile_id,
            "ConfigurationVersion": version,
            **case,
        }
        with pytest.raises(ClientError) as raised:
            flags.appconfig.start_deployment(**request)
        assert error_of(raised)["Code"] == "ResourceNotFoundException", case
        assert next(iter(case.values())) in raised.value.response["Error"]["Message"]


def test_tokens_that_are_unknown_expired_or_too_early_are_refused_with_the_problem(
    flags: Flags, clock: ManualClock
) -> None:
    flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy())
    first = flags.data.get_latest_configuration(ConfigurationToken=flags.session())
    early_token = first["NextPollConfigurationToken"]
    problems = {}
    for name, token in {"unknown": "not-a-token", "early": early_token}.items():
        with pytest.raises(ClientError) as raised:
            flags.data.get_latest_configuration(ConfigurationToken=token)
        problems[name] = error_of(raised)
    clock.advance(24 * 3600 + 1)
    with pytest.raises(ClientError) as raised:
        flags.data.get_latest_configuration(ConfigurationToken=early_token)
    problems["expired"] = error_of(raised)

    assert {name: error["Code"] for name, error in problems.items()} == dict.fromkeys(
        problems, "BadRequestException"
    )
    assert {
        name: error["Details"]["InvalidParameters"]["ConfigurationToken"]["Problem"]
        for name, error in problems.items()
    } == {
        "unknown": "Corrupted",
        "early": "PollIntervalNotSatisfied",
        "expired": "Expired",
    }
    assert problems["early"]["Error"]["Message"] == "Request too early"


def test_a_poll_interval_out_of_range_is_refused(flags: Flags) -> None:
    with pytest.raises(ParamValidationError):  # the SDK checks the documented minimum itself
        flags.session(interval=10)
    with pytest.raises(ClientError) as raised:
        flags.session(interval=86401)
    assert error_of(raised)["Code"] == "BadRequestException"
    assert "86400" in raised.value.response["Error"]["Message"]


def test_a_session_on_a_profile_never_deployed_finds_no_deployment(flags: Flags) -> None:
    with pytest.raises(ClientError) as raised:
        flags.data.get_latest_configuration(ConfigurationToken=flags.session())
    error = error_of(raised)
    assert (error["Code"], error["ResourceType"]) == ("ResourceNotFoundException", "Deployment")


def test_the_router_fails_safe_when_it_polls_before_its_session_allows(flags: Flags) -> None:
    flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy())
    source = flags.source()
    source.flags()
    with pytest.raises(FlagsUnavailable, match="Request too early"):
        source.flags()


# --- the project's Lambda validator --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_outdir(tmp_path_factory)


@pytest.fixture(scope="module")
def validator_runner(cdk_out: Path) -> Iterator[LambdaRunner]:
    template = app_template(load_stacks(cdk_out), STACK)
    resolver = local_resolver(template)
    specs = [
        with_inline_endpoints(spec, template, resolver)
        for spec in functions_from_template(template, resolver)
    ]
    with LambdaRunner(specs) as runner:
        yield runner


def test_the_projects_flag_validator_refuses_a_document_the_router_could_not_use(
    flags: Flags, validator_runner: LambdaRunner
) -> None:
    spec = validator_runner.function(VALIDATOR)
    role = boto3.client("iam").create_role(RoleName="validator", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    [arn] = create_functions(boto3.client("lambda"), [spec], role_arn=role).values()
    profile = flags.appconfig.create_configuration_profile(
        ApplicationId=flags.application_id,
        Name="validated-flags",
        LocationUri="hosted",
        Type="AWS.AppConfig.FeatureFlags",
        Validators=[{"Type": "LAMBDA", "Content": arn}],
    )["Id"]
    catalog = load_settings(CatalogSettings, dict(spec.environment)).catalog()
    document = FlagSet.initial(catalog).document()
    endpoint = catalog[0].endpoint
    with route_lambda_invocations(validator_runner):
        assert (
            flags.deploy(flags.version(document, profile), flags.strategy(), profile)["State"] == "COMPLETE"
        )
        document["values"][f"{endpoint}-segment-pin"] = {
            "enabled": True,
            "segments": ["beta"],
            "variant": "nope",
        }
        with pytest.raises(ClientError) as raised:
            flags.deploy(flags.version(document, profile), flags.strategy(), profile)
    error = error_of(raised)
    assert (error["Code"], error["Reason"]) == ("BadRequestException", "InvalidConfiguration")
    message = raised.value.response["Error"]["Message"]
    assert "InvalidFlagDocument" in message
    assert f"'{endpoint}-segment-pin'" in message
    listed = flags.appconfig.list_deployments(
        ApplicationId=flags.application_id, EnvironmentId=flags.environment_id
    )
    assert [item["State"] for item in listed["Items"]] == ["COMPLETE"]


def test_a_deployment_completes_and_announces_itself_without_anyone_calling(clock: ManualClock) -> None:
    with mock_aws(), emulate_appconfig(clock=clock, tick_seconds=0.01):
        flags = create_flags(None)
        queue = event_queue_for_rule()
        flags.appconfig.create_extension_association(
            ExtensionIdentifier=EVENTS_EXTENSION,
            ResourceIdentifier=f"arn:aws:appconfig:us-east-1:123456789012:application/{flags.application_id}",
        )
        flags.deploy(flags.version(FlagSet.initial(CATALOG).document()), flags.strategy(bake=10))
        clock.advance(600)  # the background thread advances the deployment: no API call in between
        events = received(queue, 2)
        assert [event["detail-type"] for event in events] == [
            DEPLOYMENT_STARTED_EVENT,
            DEPLOYMENT_COMPLETED_EVENT,
        ]


def test_the_stacks_flags_deploy_on_the_local_cloud_through_its_validator_and_the_router_reads_them(
    cdk_out: Path,
) -> None:
    gap_fillers = {"appconfig": appconfig_gap_filler(instant=True)}
    with LocalCloud(cdk_out, STACK, gap_fillers=gap_fillers) as cloud:
        types = {lid: str(cloud.template.resources[lid]["Type"]) for lid in cloud.template.resources}
        assert [lid for lid in cloud.stack.skipped if types[lid].startswith("AWS::AppConfig::")] == []
        [application_id] = of_type(cloud, "AWS::AppConfig::Application")
        [environment_id] = of_type(cloud, "AWS::AppConfig::Environment")
        deployments = boto3.client("appconfig").list_deployments(
            ApplicationId=application_id, EnvironmentId=environment_id
        )["Items"]
        assert [item["State"] for item in deployments] == ["COMPLETE"]
        validator = cloud.runner.function(VALIDATOR)
        catalog = load_settings(CatalogSettings, dict(validator.environment)).catalog()
        source = AppConfigFlagSource(
            application=APPLICATION,
            environment=ENVIRONMENT,
            profile="feature-flags",
            ttl_seconds=0,
            catalog=catalog,
        )
        assert source.flags() == FlagSet.initial(catalog)


def of_type(cloud: LocalCloud, resource_type: str) -> list[str]:
    return [
        resource.ref for resource in cloud.stack.resources.values() if resource.resource_type == resource_type
    ]
