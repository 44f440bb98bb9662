"""The synthesized dev stack deployed into moto (`localcloud.cloudformation.deploy`), and the local cloud
that hosts it (`localcloud.cloud`): every created resource read back through boto3 against the template."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.awslambda.runner import LambdaRunner
from localcloud.cloud import LocalCloud, LocalCloudError
from localcloud.cloudformation.deploy import NOT_CREATED, RESOURCE_KINDS, deploy_stack, deploy_stacks
from localcloud.cloudformation.models import (
    AlarmApisUnavailableError,
    AppConfigUnavailableError,
    DependencyCycleError,
    DeployedStack,
    UnsupportedPropertyError,
    UnsupportedResourceTypeError,
    merged_stack,
)
from localcloud.cloudformation.ordering import creation_order, dependencies
from localcloud.cloudformation.template import (
    StackTemplate,
    app_template,
    load_stacks,
    state_machine_definition,
)
from localcloud.cloudwatch.responses import emulate_alarm_apis
from tests.infra.conftest import shared_outdir

STACK = "MlRollout-dev"
FLAG_VALIDATOR_HANDLER = "lambdas.handlers.flag_validator.handler"


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_outdir(tmp_path_factory)


@pytest.fixture(scope="module")
def template(cdk_out: Path) -> StackTemplate:
    """The environment's stack and its families' stacks, as one."""
    return app_template(load_stacks(cdk_out), STACK)


def client(service: str) -> Any:  # boto3 clients, typed Any: stubs exist for a few services only
    session: Any = boto3.Session(region_name="us-east-1")
    return session.client(service)


def properties(template: StackTemplate, stack: DeployedStack, logical_id: str) -> Any:
    """The template's properties of a resource that are applied locally, resolved with the deployment's
    physical ids."""
    resource = template.resources[logical_id]
    not_applied = RESOURCE_KINDS[resource["Type"]].not_applied
    return stack.resolver.resolve({k: v for k, v in resource["Properties"].items() if k not in not_applied})


def logical_id_of(template: StackTemplate, resource_type: str) -> str:
    [logical_id] = template.resources_of_type(resource_type)
    return logical_id


def tiny_template(tmp_path: Path, resources: dict[str, Any]) -> StackTemplate:
    return StackTemplate(name="Tiny", body={"Resources": resources}, assembly_dir=tmp_path)


# --- the dev stack, deployed in-process --------------------------------------------------------------


@pytest.fixture(scope="class")
def runner() -> Iterator[LambdaRunner]:
    with LambdaRunner([]) as runner:
        yield runner


@pytest.fixture(scope="class")
def stack(template: StackTemplate, runner: LambdaRunner) -> Iterator[DeployedStack]:
    """The class's deployment; moto's mock stays open until the class's last test has run."""
    with mock_aws(), emulate_alarm_apis():
        deployed = deploy_stacks(load_stacks(template.assembly_dir), runner=runner, require_appconfig=False)
        yield merged_stack(STACK, list(deployed.values()))


class TestDevStackInProcess:
    """One in-process deployment (moto's mock, no server) read back by every test of this class."""

    def test_every_resource_is_created_or_left_out_with_its_reason(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        created, not_created, skipped = set(stack.resources), set(stack.not_created), set(stack.skipped)
        assert created | not_created | skipped == set(template.resources)
        assert not (created & not_created) and not (created & skipped) and not (not_created & skipped)
        for logical_id, reason in stack.not_created.items():
            assert reason == NOT_CREATED[template.resources[logical_id]["Type"]]
        needed = dependencies(template)
        position = {logical_id: index for index, logical_id in enumerate(stack.order)}
        for logical_id, before in needed.items():
            assert all(position[other] < position[logical_id] for other in before), logical_id

    def test_tables_have_the_template_keys_ttl_and_recovery(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        dynamodb = client("dynamodb")
        assert len(stack.table_names) == len(template.resources_of_type("AWS::DynamoDB::Table")) == 3
        for logical_id, name in stack.table_names.items():
            declared = properties(template, stack, logical_id)
            table = dynamodb.describe_table(TableName=name)["Table"]
            assert table["KeySchema"] == declared["KeySchema"]
            assert sorted(table["AttributeDefinitions"], key=str) == sorted(
                declared["AttributeDefinitions"], key=str
            )
            assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if "TimeToLiveSpecification" in declared:
                assert ttl["TimeToLiveStatus"] == "ENABLED"
                assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"]
            else:
                assert ttl["TimeToLiveStatus"] == "DISABLED"
            backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
            assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    def test_the_state_machines_run_the_resolved_definitions_with_their_roles(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        machines = template.resources_of_type("AWS::StepFunctions::StateMachine")
        assert {stack.state_machine_arn, stack.retraining_state_machine_arn} == {
            stack.resources[machine_id].ref for machine_id in machines
        }
        function_arns = {f["FunctionArn"] for f in client("lambda").list_functions()["Functions"]}
        for machine_id in machines:
            arn = stack.resources[machine_id].ref
            described = client("stepfunctions").describe_state_machine(stateMachineArn=arn)
            assert described["name"] == template.resources[machine_id]["Properties"]["StateMachineName"]
            assert described["definition"] == state_machine_definition(stack.resolver, machine_id)
            role_id = template.resources[machine_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
            role = client("iam").get_role(RoleName=stack.resources[role_id].name)["Role"]
            assert described["roleArn"] == role["Arn"]
            definition = json.loads(described["definition"])
            called = {
                state["Parameters"]["FunctionName"]
                for state in _states(definition)
                if state.get("Resource") == "arn:aws:states:::lambda:invoke"
            }
            assert called and called <= function_arns

    def test_functions_have_the_template_handler_environment_and_role(
        self, template: StackTemplate, stack: DeployedStack, runner: LambdaRunner
    ) -> None:
        lambda_client = client("lambda")
        functions = template.resources_of_type("AWS::Lambda::Function")
        assert set(stack.function_names) == set(functions)
        for logical_id, name in stack.function_names.items():
            declared = properties(template, stack, logical_id)
            configuration = lambda_client.get_function_configuration(FunctionName=name)
            assert configuration["Handler"] == declared["Handler"]
            assert configuration["Environment"]["Variables"] == {
                key: str(value) for key, value in declared["Environment"]["Variables"].items()
            }
            assert configuration["Role"] == declared["Role"]
            assert configuration["Description"] == declared["Description"]
            assert runner.function(name).handler == declared["Handler"]
        abort = next(i for i in functions if "Abort" in i)
        variables = lambda_client.get_function_configuration(FunctionName=stack.function_names[abort])
        assert variables["Environment"]["Variables"]["STATE_MACHINE_ARN"] == stack.state_machine_arn
        assert variables["Environment"]["Variables"]["TOPIC_ARN"] == stack.topic_arn
        assert variables["Environment"]["Variables"]["LOCK_TABLE"] in stack.table_names.values()

    def test_rules_have_the_template_patterns_and_targets(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        events = client("events")
        assert set(stack.rule_names) == set(template.resources_of_type("AWS::Events::Rule"))
        queue_arns = {r.attributes["Arn"] for r in stack.of_type("AWS::SQS::Queue").values()}
        for logical_id, name in stack.rule_names.items():
            declared = properties(template, stack, logical_id)
            rule = events.describe_rule(Name=name)
            if "EventPattern" in declared:
                assert json.loads(rule["EventPattern"]) == declared["EventPattern"]
            else:
                assert rule["ScheduleExpression"] == declared["ScheduleExpression"]
            assert rule["State"] == declared["State"]
            targets = events.list_targets_by_rule(Rule=name)["Targets"]
            assert targets == declared["Targets"]
            for target in targets:
                if logical_id.startswith("DriftMonitor"):
                    continue  # a missed drift measurement is replaced by the next (infra/drift_monitor.py)
                assert target["DeadLetterConfig"]["Arn"] in queue_arns
                if ":event-bus/" in target["Arn"]:
                    # The release's offers forwarded to the next environment's bus: CDK's EventBus
                    # target takes a dead-letter queue, no retry policy.
                    continue
                assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 7200, "MaximumRetryAttempts": 8}
        approval = next(i for i in stack.rule_names if "PackageApproved" in i)
        [target] = events.list_targets_by_rule(Rule=stack.rule_names[approval])["Targets"]
        assert target["Arn"] == stack.state_machine_arn
        assert client("iam").get_role(RoleName=target["RoleArn"].rsplit("/", 1)[1])

    def test_alarms_have_the_template_metrics_thresholds_and_rules(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        cloudwatch = client("cloudwatch")
        alarms = {
            a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        }
        declared_alarms = template.resources_of_type("AWS::CloudWatch::Alarm")
        assert set(alarms) == set(stack.alarm_names.values()) and len(alarms) == len(declared_alarms)
        for logical_id, name in stack.alarm_names.items():
            declared = properties(template, stack, logical_id)
            alarm = alarms[name]
            for key in ("Threshold", "ComparisonOperator", "EvaluationPeriods", "DatapointsToAlarm"):
                assert alarm[key] == declared[key], (name, key)
            assert alarm["TreatMissingData"] == declared["TreatMissingData"]
            assert alarm["AlarmActions"] == [stack.topic_arn] == declared["AlarmActions"]
            if "Metrics" in declared:
                assert alarm["Metrics"] == declared["Metrics"]
            else:
                assert alarm["MetricName"] == declared["MetricName"]
                assert alarm.get("ExtendedStatistic") == declared.get("ExtendedStatistic")
        composites = cloudwatch.describe_alarms(AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
        rules = {a["AlarmName"]: a["AlarmRule"] for a in composites}
        assert set(rules) == set(stack.composite_alarm_names.values()) and len(rules) == 2
        metric_arns = {r.arn for r in stack.of_type("AWS::CloudWatch::Alarm").values()}
        for logical_id, name in stack.composite_alarm_names.items():
            assert rules[name] == properties(template, stack, logical_id)["AlarmRule"]
            named = set(re.findall(r'ALARM\("([^"]+)"\)', rules[name]))
            assert named and named <= metric_arns

    def test_the_endpoint_runs_its_bootstrap_config_capturing_into_the_stack_bucket(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        sagemaker = client("sagemaker")
        endpoint = sagemaker.describe_endpoint(EndpointName=stack.endpoint_name)
        assert endpoint["EndpointStatus"] == "InService"
        config_id = logical_id_of(template, "AWS::SageMaker::EndpointConfig")
        declared = properties(template, stack, config_id)
        assert endpoint["EndpointConfigName"] == declared["EndpointConfigName"]
        weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in endpoint["ProductionVariants"]}
        assert weights == {
            v["VariantName"]: v["InitialVariantWeight"] for v in declared["ProductionVariants"]
        }
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        capture = config["DataCaptureConfig"]["DestinationS3Uri"]
        [artifacts] = [name for name in stack.bucket_names.values() if "artifacts" in name]
        assert (
            capture
            == declared["DataCaptureConfig"]["DestinationS3Uri"]
            == f"s3://{artifacts}/data-capture/churn"
        )
        model_id = logical_id_of(template, "AWS::SageMaker::Model")
        model = sagemaker.describe_model(ModelName=stack.resources[model_id].name)
        assert (
            model["PrimaryContainer"]["ModelDataUrl"]
            == properties(template, stack, model_id)["PrimaryContainer"]["ModelDataUrl"]
        )
        group_id = logical_id_of(template, "AWS::SageMaker::ModelPackageGroup")
        group = sagemaker.describe_model_package_group(ModelPackageGroupName=stack.resources[group_id].name)
        assert group["ModelPackageGroupArn"] == stack.resources[group_id].ref

    def test_topic_queues_keys_buckets_and_logs_follow_the_template(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        kms, sns, sqs, s3 = client("kms"), client("sns"), client("sqs"), client("s3")
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
        topic = sns.get_topic_attributes(TopicArn=stack.topic_arn)["Attributes"]
        topic_key = kms.describe_key(KeyId=topic["KmsMasterKeyId"])["KeyMetadata"]
        assert aliases["alias/mlrollout-dev-notifications"] == topic_key["KeyId"]
        assert kms.get_key_rotation_status(KeyId=topic_key["KeyId"])["KeyRotationEnabled"]
        assert json.loads(topic["Policy"])["Statement"][0]["Sid"] == "AllowPublishThroughSSLOnly"
        [subscription] = sns.list_subscriptions_by_topic(TopicArn=stack.topic_arn)["Subscriptions"]
        assert (subscription["Protocol"], subscription["Endpoint"]) == (
            "email",
            "ml-platform-oncall@example.com",
        )
        for url in stack.queue_urls.values():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            assert attributes["MessageRetentionPeriod"] == "1209600"
            assert json.loads(attributes["Policy"])["Statement"][0]["Effect"] == "Deny"
        [artifacts_id] = [i for i, name in stack.bucket_names.items() if "artifacts" in name]
        artifacts = stack.bucket_names[artifacts_id]
        [rule] = s3.get_bucket_encryption(Bucket=artifacts)["ServerSideEncryptionConfiguration"]["Rules"]
        key_id = rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"] == key_id
        assert s3.get_bucket_versioning(Bucket=artifacts)["Status"] == "Enabled"
        logging = s3.get_bucket_logging(Bucket=artifacts)["LoggingEnabled"]
        assert (
            logging["TargetBucket"] in stack.bucket_names.values() and logging["TargetPrefix"] == "artifacts/"
        )
        # Stored without its TLS-only statements: moto evaluates aws:SecureTransport on plain HTTP.
        stored = json.loads(s3.get_bucket_policy(Bucket=artifacts)["Policy"])["Statement"]
        assert not any("aws:SecureTransport" in json.dumps(statement) for statement in stored)
        pages = client("logs").get_paginator("describe_log_groups").paginate()
        groups = {g["logGroupName"]: g for page in pages for g in page["logGroups"]}
        for name in stack.names("AWS::Logs::LogGroup").values():
            assert groups[name]["retentionInDays"] == 30
        # A metric filter counts into CloudWatch what the template says, from its log group.
        filters = {f["filterName"]: f for f in client("logs").describe_metric_filters()["metricFilters"]}
        for logical_id, name in stack.names("AWS::Logs::MetricFilter").items():
            properties = template.resources[logical_id]["Properties"]
            assert filters[name]["filterPattern"] == properties["FilterPattern"]
            assert filters[name]["logGroupName"] in stack.names("AWS::Logs::LogGroup").values()
            [transformation] = filters[name]["metricTransformations"]
            [expected] = properties["MetricTransformations"]
            assert (transformation["metricNamespace"], transformation["metricName"]) == (
                expected["MetricNamespace"],
                expected["MetricName"],
            )
        assert stack.names("AWS::Logs::MetricFilter")

    def test_roles_carry_their_policies(self, template: StackTemplate, stack: DeployedStack) -> None:
        iam = client("iam")
        for logical_id in template.resources_of_type("AWS::IAM::Policy"):
            declared = properties(template, stack, logical_id)
            for role in declared["Roles"]:
                stored = iam.get_role_policy(RoleName=role, PolicyName=declared["PolicyName"])
                assert stored["PolicyDocument"] == declared["PolicyDocument"]
        permissions = template.resources_of_type("AWS::Lambda::Permission")
        abort_policies = [
            json.loads(client("lambda").get_policy(FunctionName=stack.physical_id(function))["Policy"])
            for function in {p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in permissions.values()}
        ]
        statement_ids = {s["Sid"] for policy in abort_policies for s in policy["Statement"]}
        assert statement_ids == set(permissions)

    def test_appconfig_creates_what_moto_has_and_skips_the_rest_by_name(
        self, template: StackTemplate, stack: DeployedStack
    ) -> None:
        appconfig = client("appconfig")
        application_id = stack.appconfig_ids[logical_id_of(template, "AWS::AppConfig::Application")]
        assert appconfig.get_application(ApplicationId=application_id)["Name"] == "mlrollout-dev"
        profile_id = stack.appconfig_ids[logical_id_of(template, "AWS::AppConfig::ConfigurationProfile")]
        profile = appconfig.get_configuration_profile(
            ApplicationId=application_id, ConfigurationProfileId=profile_id
        )
        validator = next(i for i, n in stack.function_names.items() if "FlagValidator" in n)
        assert profile["Validators"] == [{"Type": "LAMBDA", "Content": stack.resources[validator].arn}]
        version_id = logical_id_of(template, "AWS::AppConfig::HostedConfigurationVersion")
        version = appconfig.get_hosted_configuration_version(
            ApplicationId=application_id,
            ConfigurationProfileId=profile_id,
            VersionNumber=int(stack.appconfig_ids[version_id]),
        )
        assert version["Content"].read().decode() == template.resources[version_id]["Properties"]["Content"]
        skipped_types = {template.resources[i]["Type"] for i in stack.skipped}
        assert skipped_types == {
            "AWS::AppConfig::Environment",
            "AWS::AppConfig::DeploymentStrategy",
            "AWS::AppConfig::Deployment",
            "AWS::AppConfig::ExtensionAssociation",
        }
        assert all("localcloud.appconfig.routing" in reason for reason in stack.skipped.values())

    def test_appconfig_required_without_its_emulation_is_refused_naming_it(
        self, tmp_path: Path, stack: DeployedStack
    ) -> None:
        tiny = tiny_template(
            tmp_path,
            {
                "App": {"Type": "AWS::AppConfig::Application", "Properties": {"Name": "tiny"}},
                "Stage": {
                    "Type": "AWS::AppConfig::Environment",
                    "Properties": {"ApplicationId": {"Ref": "App"}, "Name": "dev"},
                },
            },
        )
        with (
            LambdaRunner([]) as runner,
            pytest.raises(AppConfigUnavailableError, match=r"localcloud\.appconfig"),
        ):
            deploy_stack(tiny, runner=runner)


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in definition["States"].values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        if "Iterator" in state:
            yield from _states(state["Iterator"])
        if "ItemProcessor" in state:
            yield from _states(state["ItemProcessor"])


# --- what the deployment refuses ---------------------------------------------------------------------


def test_an_unknown_resource_type_is_refused_naming_it(tmp_path: Path) -> None:
    tiny = tiny_template(
        tmp_path,
        {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Mystery": {"Type": "AWS::Bedrock::Agent", "Properties": {}},
        },
    )
    with LambdaRunner([]) as runner, pytest.raises(UnsupportedResourceTypeError) as refused:
        deploy_stack(tiny, runner=runner)  # refused before any AWS call: no emulator needed
    assert "AWS::Bedrock::Agent (Mystery)" in str(refused.value)
    assert "NOT_CREATED" in str(refused.value)


def test_a_property_not_translated_is_refused_naming_it(tmp_path: Path) -> None:
    tiny = tiny_template(
        tmp_path, {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"SomeNewSetting": True}}}
    )
    with LambdaRunner([]) as runner, pytest.raises(UnsupportedPropertyError, match=r"Queue .*SomeNewSetting"):
        deploy_stack(tiny, runner=runner)


def test_a_dependency_cycle_is_refused_naming_its_resources(tmp_path: Path) -> None:
    tiny = tiny_template(
        tmp_path,
        {
            "Alone": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Left": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Right", "Arn"]}}},
            },
            "Right": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::Sub": "${Left.QueueName}-x"}},
            },
        },
    )
    with pytest.raises(DependencyCycleError, match=r"Left -> Right -> Left"):
        creation_order(tiny)


def test_composite_alarms_without_the_emulated_alarm_apis_are_refused_naming_them(tmp_path: Path) -> None:
    tiny = tiny_template(
        tmp_path, {"Either": {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {"AlarmRule": "TRUE"}}}
    )
    refused = pytest.raises(AlarmApisUnavailableError, match=r"Tiny/Either.*emulate_alarm_apis")
    with mock_aws(), LambdaRunner([]) as runner, refused:
        deploy_stack(tiny, runner=runner)


def test_resources_come_after_what_they_name_and_what_they_depend_on(tmp_path: Path) -> None:
    tiny = tiny_template(
        tmp_path,
        {
            "Last": {"Type": "AWS::SQS::Queue", "Properties": {}, "DependsOn": "Middle"},
            "Middle": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${First}"}}},
            "First": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "first"}},
            "Free": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${!Literal}"}}},
        },
    )
    assert creation_order(tiny) == ["First", "Free", "Middle", "Last"]


# --- the local cloud ---------------------------------------------------------------------------------


def test_the_local_cloud_serves_the_deployed_stack_to_any_sdk_client_and_restores_the_environment(
    cdk_out: Path, template: StackTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    before = dict(os.environ)
    opened: list[str] = []

    @contextmanager
    def recording_filler(cloud: LocalCloud) -> Iterator[str]:
        with pytest.raises(LocalCloudError):
            cloud.stack  # gap fillers open before the stack is deployed  # noqa: B018
        opened.append(f"open on {cloud.port}")
        yield "filled"
        opened.append("closed")

    with LocalCloud(
        cdk_out,
        STACK,
        gap_fillers={"recording": recording_filler},
        require_appconfig=False,
    ) as cloud:
        assert os.environ["AWS_ENDPOINT_URL"] == cloud.endpoint_url == f"http://127.0.0.1:{cloud.port}"
        assert os.environ["MOTO_PORT"] == str(cloud.port)
        assert "AWS_PROFILE" not in os.environ
        assert cloud.gap_filler("recording") == "filled" and opened == [f"open on {cloud.port}"]
        lambda_client = boto3.client("lambda")  # no endpoint given: AWS_ENDPOINT_URL leads to moto
        assert lambda_client.meta.endpoint_url == cloud.endpoint_url
        listed = {f["FunctionName"] for f in lambda_client.list_functions()["Functions"]}
        assert listed == set(cloud.stack.function_names.values())

        [validator] = [n for n in listed if cloud.runner.function(n).handler == FLAG_VALIDATOR_HANDLER]
        version_id = logical_id_of(template, "AWS::AppConfig::HostedConfigurationVersion")
        flags = str(template.resources[version_id]["Properties"]["Content"])
        accepted = lambda_client.invoke(FunctionName=validator, Payload=json.dumps(validation_event(flags)))
        assert "FunctionError" not in accepted
        assert json.loads(accepted["Payload"].read()) == {
            "valid": True,
            "endpoints": ["churn"],
            "not_deployed": [],
        }
        refused = lambda_client.invoke(FunctionName=validator, Payload=json.dumps(validation_event("{}")))
        assert refused["FunctionError"] == "Unhandled"
        assert json.loads(refused["Payload"].read())["errorType"] == "InvalidFlagDocument"

        # moto's Step Functions executor, reached through the server, runs the real start handler.
        execution = boto3.client("stepfunctions").start_execution(
            stateMachineArn=cloud.stack.state_machine_arn, name="malformed", input=json.dumps({"nothing": 1})
        )
        ended = finished(execution["executionArn"])
        assert (ended["status"], ended["error"]) == ("FAILED", "RolloutRefused")
        assert json.loads(ended["cause"])["errorType"] == "InvalidWorkflowInput"
        port = cloud.port

    assert dict(os.environ) == before
    assert opened == [f"open on {port}", "closed"]
    with pytest.raises(LocalCloudError):
        cloud.stack  # noqa: B018
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def finished(execution_arn: str, deadline_seconds: float = 30.0) -> dict[str, Any]:
    """The execution once it has ended; fails the test past the deadline."""
    stepfunctions = boto3.client("stepfunctions")
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        described = dict(stepfunctions.describe_execution(executionArn=execution_arn))
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"{execution_arn} still running after {deadline_seconds} s")


def validation_event(content: str) -> dict[str, Any]:
    """What AppConfig sends a LAMBDA validator: the document, base64-encoded."""
    return {
        "applicationId": "abc1234",
        "configurationProfileId": "def5678",
        "configurationVersion": "1",
        "content": base64.b64encode(content.encode()).decode(),
        "uri": "hosted",
    }


def test_the_local_cloud_names_a_missing_stack(cdk_out: Path) -> None:
    with pytest.raises(LocalCloudError, match=r"no stack 'Nope'.*MlRollout-dev"):
        LocalCloud(cdk_out, "Nope")
