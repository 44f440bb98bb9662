"""The drift monitor construct in a small stack: function, schedule, alarms, least privilege, cdk-nag."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Match, Template

from infra.application import add_compliance_checks
from infra.config import Endpoint
from infra.drift_monitor import DriftMonitor, drift_alarm_name, schedule_interval
from infra.nag import render
from infra.notifications import Notifications
from infra.registry import ModelRegistry
from lambdas.gates import GateSettings
from lambdas.retraining.drift import load_drift_settings
from lambdas.shared.endpoint_store import SettingsCatalog
from localcloud.cloudformation.deploy import check_template
from localcloud.cloudformation.template import StackTemplate
from tests.infra.conftest import cdk_json_context
from tests.infra.test_compliance import ACCEPTED_CFN_LINT_WARNINGS, _acknowledgments, _lint, _nag_report

PREFIX = "mlrollout-test"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def endpoint(name: str, family: str, *, champion: str = "champion", capture: bool = True) -> Endpoint:
    return Endpoint.model_validate(
        {
            "name": name,
            "model_family": family,
            "initial_model": {
                "image_uri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlrollout-inference:0.1.0",
                "model_data_url": f"s3://bootstrap-models/{name}/v1/model.tar.gz",
            },
            "instance_type": "ml.m5.large",
            "autoscaling": {"min_capacity": 1, "max_capacity": 2},
            "variants": {"champion": champion},
            "data_capture": {"enabled": capture},
            "business_metric": {
                "namespace": "mlrollout/business",
                "name": "ConversionRate",
                "threshold": 0.05,
            },
        }
    )


ENDPOINTS = [endpoint("churn", "churn-classifier"), endpoint("fraud", "fraud", champion="blue")]


def stack_with(**overrides: Any) -> tuple[App, Stack, DriftMonitor]:
    app = App(context=cdk_json_context(), outdir=overrides.pop("outdir", None))
    stack = Stack(app, "DriftTest", env=Environment(account=ACCOUNT, region=REGION))
    registry = ModelRegistry(stack, "Registry", prefix=PREFIX, model_families=["churn-classifier", "fraud"])
    arguments: dict[str, Any] = {
        "prefix": PREFIX,
        "endpoints": ENDPOINTS,
        "registry": registry,
        "schedule": "rate(1 hour)",
        "psi_threshold": 0.25,
        "gates": GateSettings(psi_bins=20, drift_min_samples=300),
    }
    if overrides.pop("with_topic", False):
        arguments["topic"] = Notifications(stack, "Notifications", prefix=PREFIX, emails=[]).topic
    monitor = DriftMonitor(stack, "Drift", **{**arguments, **overrides})
    return app, stack, monitor


class Synthesized:
    def __init__(self, outdir: Path) -> None:
        app, stack, self.monitor = stack_with(outdir=str(outdir), with_topic=True, evaluation_periods=2)
        add_compliance_checks(app)
        app.synth()  # cdk-nag: an unacknowledged finding fails here
        self.outdir = outdir
        self.stack_name = stack.stack_name
        self.template = Template.from_stack(stack)
        self.resources: dict[str, Any] = self.template.to_json()["Resources"]

    def of_type(self, kind: str) -> dict[str, Any]:
        return {key: value for key, value in self.resources.items() if value["Type"] == kind}

    def function(self) -> dict[str, Any]:
        [function] = self.of_type("AWS::Lambda::Function").values()
        return dict(function["Properties"])

    def statements(self) -> list[dict[str, Any]]:
        role = self.function()["Role"]["Fn::GetAtt"][0]
        policies = [
            p for p in self.of_type("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
        ]
        return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]

    def allowed(self, action: str) -> list[tuple[str, dict[str, Any]]]:
        """(resource, conditions) of every statement granting `action`, resources rendered as cdk-nag does."""
        granted = []
        for statement in self.statements():
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                granted += [(render(resource), statement.get("Condition", {})) for resource in resources]
        return granted

    def may(self, action: str, resource: str) -> bool:
        return any(fnmatchcase(resource, pattern) for pattern, _ in self.allowed(action))


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return Synthesized(tmp_path_factory.mktemp("drift-synth"))


def bucket_arn(synthesized: Synthesized) -> str:
    [bucket] = [key for key in synthesized.of_type("AWS::S3::Bucket") if key.startswith("RegistryArtifacts")]
    return f"<{bucket}.Arn>"


def test_the_function_runs_the_handler_with_its_endpoints_and_the_alarm_threshold(
    synthesized: Synthesized,
) -> None:
    function = synthesized.function()
    assert function["Handler"] == "lambdas.handlers.drift_monitor.handler"
    environment = function["Environment"]["Variables"]
    settings = load_drift_settings(environment)
    # The endpoints are read at run time from each endpoint's parameter (infra/endpoint_settings.py).
    assert environment["ENDPOINT_SETTINGS_PATH"] == f"/{PREFIX}/endpoints/"
    assert isinstance(settings.endpoints, SettingsCatalog)
    # The alarm's threshold is the function's psi_max; the other gate settings are passed through.
    assert (settings.gates.psi_max, settings.gates.psi_bins, settings.gates.drift_min_samples) == (
        0.25,
        20,
        300,
    )
    assert environment["POWERTOOLS_SERVICE_NAME"] == "drift-monitor"


def test_a_schedule_rule_invokes_the_function_at_the_configured_rate(synthesized: Synthesized) -> None:
    [rule] = synthesized.of_type("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    [target] = rule["Properties"]["Targets"]
    [function] = synthesized.of_type("AWS::Lambda::Function")
    assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "events.amazonaws.com", "SourceArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]}},
    )


def test_one_alarm_per_endpoint_on_the_largest_psi_with_no_data_not_breaching(
    synthesized: Synthesized,
) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert sorted(alarms) == [f"{PREFIX}-churn-input-drift", f"{PREFIX}-fraud-input-drift"]
    churn = alarms[f"{PREFIX}-churn-input-drift"]
    assert {
        key: churn[key] for key in churn if key not in ("AlarmDescription", "AlarmActions", "OKActions")
    } == {
        "AlarmName": f"{PREFIX}-churn-input-drift",
        "Namespace": "mlrollout/drift",
        "MetricName": "InputDriftPsiMax",
        "Dimensions": [{"Name": "EndpointName", "Value": f"{PREFIX}-churn"}],
        "Statistic": "Maximum",
        "Period": 3600,
        "Threshold": 0.25,
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
    }
    assert "starts a retraining of churn-classifier" in churn["AlarmDescription"]
    [topic] = synthesized.of_type("AWS::SNS::Topic")
    assert churn["AlarmActions"] == churn["OKActions"] == [{"Ref": topic}]


def test_alarms_are_exposed_by_config_name_and_by_endpoint_name(synthesized: Synthesized) -> None:
    monitor = synthesized.monitor
    assert sorted(monitor.alarms) == ["churn", "fraud"]
    assert monitor.alarm_for("churn") is monitor.alarms["churn"]
    assert monitor.alarm_for(f"{PREFIX}-fraud") is monitor.alarms["fraud"]
    assert monitor.alarm_names == {
        "churn": f"{PREFIX}-churn-input-drift",
        "fraud": f"{PREFIX}-fraud-input-drift",
    }
    assert drift_alarm_name(PREFIX, ENDPOINTS[0]) == monitor.alarm_names["churn"]
    with pytest.raises(KeyError, match=r"no drift alarm for endpoint 'spam'.*mlrollout-test-churn"):
        monitor.alarm_for("spam")


def test_the_role_grants_exactly_the_handlers_calls(synthesized: Synthesized) -> None:
    actions = set()
    for statement in synthesized.statements():
        actions |= set(
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DescribeModel",
        "sagemaker:DescribeModelPackage",
        "s3:GetObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "cloudwatch:PutMetricData",
        "ssm:GetParametersByPath",
    }


def test_sagemaker_reads_reach_only_this_environments_endpoints_and_families(
    synthesized: Synthesized,
) -> None:
    may = synthesized.may
    assert may("sagemaker:DescribeEndpoint", f"{ARN}:endpoint/{PREFIX}-churn")
    assert not may("sagemaker:DescribeEndpoint", f"{ARN}:endpoint/mlrollout-prod-churn")
    assert may("sagemaker:DescribeEndpointConfig", f"{ARN}:endpoint-config/{PREFIX}-churn-deploy-0a1b2c3d")
    assert may("sagemaker:DescribeModel", f"{ARN}:model/{PREFIX}-fraud-bootstrap")
    assert not may("sagemaker:DescribeModel", f"{ARN}:model/other-model")
    assert may("sagemaker:DescribeModelPackage", f"{ARN}:model-package/{PREFIX}-churn-classifier/7")
    assert not may("sagemaker:DescribeModelPackage", f"{ARN}:model-package/other-group/7")


def test_s3_reads_reach_only_baselines_and_the_monitored_capture_prefixes(synthesized: Synthesized) -> None:
    bucket = bucket_arn(synthesized)
    may = synthesized.may
    assert may("s3:GetObject", f"{bucket}/models/{PREFIX}-churn-classifier/v3/gates/baseline.json")
    assert may(
        "s3:GetObject", f"{bucket}/retraining/churn-classifier/r1/model/job/output/gates/baseline.json"
    )
    assert may("s3:GetObject", "arn:aws:s3:::bootstrap-models/churn/v1/gates/baseline.json")
    assert may("s3:GetObject", f"{bucket}/data-capture/churn/{PREFIX}-churn/champion/2026/01/01/05/a.jsonl")
    # Not the artifacts, not the other gate files, not another endpoint's captured requests.
    assert not may("s3:GetObject", f"{bucket}/models/{PREFIX}-churn-classifier/v3/model.tar.gz")
    assert not may("s3:GetObject", f"{bucket}/models/{PREFIX}-churn-classifier/v3/gates/golden.json")
    # Every endpoint's capture folder of the environment's bucket (named by pattern: one policy for any
    # count), and nothing else of it.
    assert may("s3:GetObject", f"{bucket}/data-capture/spam/{PREFIX}-spam/champion/a.jsonl")
    assert not may("s3:GetObject", f"{bucket}/models/churn/v1/model.tar.gz")
    listing = dict(synthesized.allowed("s3:ListBucket"))
    assert listing == {
        bucket: {"StringLike": {"s3:prefix": ["data-capture/*", "*/gates/baseline.json"]}},
        # The bootstrap models' bucket: only whether their baselines exist.
        "arn:aws:s3:::bootstrap-models": {
            "StringEquals": {"s3:prefix": ["churn/v1/gates/baseline.json", "fraud/v1/gates/baseline.json"]}
        },
    }
    patterns = listing[bucket]["StringLike"]["s3:prefix"]
    # The listing walks the champion's capture folders one level at a time, and asks for a baseline key.
    for prefix in (
        f"data-capture/churn/{PREFIX}-churn/champion/",
        f"data-capture/fraud/{PREFIX}-fraud/blue/2026/",
        "retraining/churn-classifier/r1/model/job/output/gates/baseline.json",
    ):
        assert any(fnmatchcase(prefix, pattern) for pattern in patterns)
    assert not any(fnmatchcase("models/", pattern) for pattern in patterns)


def test_metrics_may_be_published_in_the_drift_namespace_only(synthesized: Synthesized) -> None:
    assert synthesized.allowed("cloudwatch:PutMetricData") == [
        ("*", {"StringEquals": {"cloudwatch:namespace": "mlrollout/drift"}})
    ]


def test_cdk_nag_is_clean_and_every_acknowledgment_matches_a_finding(synthesized: Synthesized) -> None:
    nag = _nag_report(synthesized.outdir)
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    suppressed = {violation["acknowledgedId"] for violation in nag["suppressedViolations"]}
    acknowledged = _acknowledgments(synthesized.outdir)
    assert acknowledged
    for rule, reason in acknowledged.items():
        assert len(reason.split()) >= 6, f"{rule}: reason too thin: {reason!r}"
        assert rule in suppressed, f"{rule} is acknowledged but not found"


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [("rate(1 minute)", 60), ("rate(15 minutes)", 900), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rate_schedules_give_the_alarm_period(schedule: str, seconds: int) -> None:
    assert schedule_interval(schedule).to_seconds() == seconds


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"schedule": "cron(0 * * * ? *)"}, r"must be rate\(N minutes\|hours\|days\).*cron\(\) expression"),
        ({"schedule": "rate(1 hours)"}, r"EventBridge writes rate\(1 hour\) and rate\(N hours\)"),
        ({"schedule": "rate(0 hours)"}, "must be rate"),
        ({"psi_threshold": 0.0}, "psi_threshold must be a positive number"),
        ({"psi_threshold": float("nan")}, "psi_threshold must be a positive number"),
        ({"schedule": "rate(2 days)", "evaluation_periods": 4}, "span at most 7 days"),
        ({"evaluation_periods": 0}, "must be at least 1"),
        ({"endpoints": []}, "needs at least one endpoint"),
        (
            {"endpoints": [ENDPOINTS[0], endpoint("quiet", "fraud", capture=False)]},
            r"endpoints \['quiet'\] capture no requests",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_problem(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        stack_with(**overrides)


def test_the_function_environment_is_plain_json_the_handler_reads(synthesized: Synthesized) -> None:
    # Tokens would reach the function unresolved: everything in it comes from the config.
    variables = synthesized.function()["Environment"]["Variables"]
    assert all(isinstance(value, str) for value in variables.values())
    assert json.loads(variables["DRIFT_GATES"])["psi_max"] == 0.25


def test_cfn_lint_finds_no_error_and_the_local_cloud_can_deploy_every_resource(
    synthesized: Synthesized,
) -> None:
    [template] = synthesized.outdir.glob("*.template.json")
    for match in _lint(template):
        assert not match.rule.id.startswith("E"), str(match)
        assert match.rule.id in ACCEPTED_CFN_LINT_WARNINGS, str(match)
    # Every type and property is one localcloud deploys (or lists as not applied, with the reason).
    check_template(
        StackTemplate(
            name=synthesized.stack_name,
            body=json.loads(template.read_text()),
            assembly_dir=synthesized.outdir,
        )
    )
