"""Serving: the HTTP API, its Lambdas, the inference table, least privilege and the flag validator."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match

from infra.feature_flags import PROFILE_NAME
from infra.lambda_function import ASSET_EXCLUDES, POWERTOOLS_VERSION
from infra.nag import render
from infra.serving import (
    FEEDBACK_PATH,
    FLAGS_TTL_SECONDS,
    INFERENCE_TTL_DAYS,
    INVOCATIONS_PATH,
    METRICS_NAMESPACE,
    WEIGHTS_TTL_SECONDS,
)
from lambdas.flags import EndpointVariants
from lambdas.serving.flag_validation import validate_document
from lambdas.serving.settings import (
    CatalogSettings,
    EndpointSettings,
    FeedbackSettings,
    RouterSettings,
    load_settings,
)
from lambdas.shared.endpoint_store import SettingsCatalog
from tests.infra.conftest import REPO_ROOT, Synthesized, shared_synthesized

# Every serving function reads the endpoints' settings (lambdas/shared/endpoint_store.py).
SETTINGS_READ = {
    "ssm:GetParametersByPath": {
        "arn:aws:ssm:us-east-1:<AWS::AccountId>:parameter/mlrollout-dev/endpoints",
        "arn:aws:ssm:us-east-1:<AWS::AccountId>:parameter/mlrollout-dev/endpoints/*",
    }
}
ROUTER = "lambdas.handlers.router.handler"
FEEDBACK = "lambdas.handlers.feedback.handler"
FLAG_VALIDATOR = "lambdas.handlers.flag_validator.handler"
HANDLERS = (ROUTER, FEEDBACK, FLAG_VALIDATOR)
# What every function's role carries besides its own grants: its log group and X-Ray.
LOG_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
XRAY_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})


def _only(dev: Synthesized, resource_type: str, properties: dict[str, Any]) -> str:
    found = dev.template.find_resources(resource_type, {"Properties": Match.object_like(properties)})
    assert len(found) == 1, f"expected one {resource_type} with {properties}, found {sorted(found)}"
    return next(iter(found))


def _function(dev: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    logical_id = _only(dev, "AWS::Lambda::Function", {"Handler": handler})
    properties: dict[str, Any] = dev.resources[logical_id]["Properties"]
    return logical_id, properties


def _environment(dev: Synthesized, handler: str) -> dict[str, Any]:
    variables: dict[str, Any] = _function(dev, handler)[1]["Environment"]["Variables"]
    return variables


def _table(dev: Synthesized) -> str:
    return _only(
        dev, "AWS::DynamoDB::Table", {"KeySchema": [{"AttributeName": "inference_id", "KeyType": "HASH"}]}
    )


def _grants(dev: Synthesized, handler: str) -> dict[str, set[str]]:
    """Every action the function's role allows, with the rendered resources it allows it on."""
    role_arn = _function(dev, handler)[1]["Role"]
    role = role_arn["Fn::GetAtt"][0]
    assert not dev.resources[role]["Properties"].get("ManagedPolicyArns"), "no managed policy on a role"
    grants: dict[str, set[str]] = {}
    for policy in dev.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow" and "Condition" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                grants.setdefault(action, set()).update(render(resource) for resource in resources)
    return grants


def _log_and_trace_grants(dev: Synthesized, handler: str) -> dict[str, set[str]]:
    log_group = _function(dev, handler)[1]["LoggingConfig"]["LogGroup"]["Ref"]
    return {
        **{action: {f"<{log_group}.Arn>"} for action in LOG_ACTIONS},
        **{action: {"*"} for action in XRAY_ACTIONS},
    }


# --- The API ---------------------------------------------------------------------------------------------


def test_inference_and_feedback_routes_require_iam_and_reach_their_functions(dev: Synthesized) -> None:
    for path, handler in ((INVOCATIONS_PATH, ROUTER), (FEEDBACK_PATH, FEEDBACK)):
        route = _only(dev, "AWS::ApiGatewayV2::Route", {"RouteKey": f"POST {path}"})
        properties = dev.resources[route]["Properties"]
        assert properties["AuthorizationType"] == "AWS_IAM"
        integration = render(properties["Target"]).removeprefix("integrations/").strip("<>")
        lambda_proxies = dev.template.find_resources(
            "AWS::ApiGatewayV2::Integration",
            {
                "Properties": Match.object_like(
                    {
                        "IntegrationType": "AWS_PROXY",
                        "IntegrationUri": {"Fn::GetAtt": [_function(dev, handler)[0], "Arn"]},
                        "PayloadFormatVersion": "2.0",
                    }
                )
            },
        )
        assert integration in lambda_proxies


def test_no_route_of_any_api_is_open_without_iam(dev: Synthesized) -> None:
    for route in dev.of_type("AWS::ApiGatewayV2::Route").values():
        assert route["Properties"]["AuthorizationType"] == "AWS_IAM", route


def test_api_gateway_may_invoke_each_function_only_from_its_own_route(dev: Synthesized) -> None:
    for path, handler in ((INVOCATIONS_PATH, ROUTER), (FEEDBACK_PATH, FEEDBACK)):
        function_id = _function(dev, handler)[0]
        permission = _only(
            dev,
            "AWS::Lambda::Permission",
            {"Principal": "apigateway.amazonaws.com", "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]}},
        )
        source = render(dev.resources[permission]["Properties"]["SourceArn"])
        assert source.endswith(f"/*/*{path}"), source


def test_default_stage_auto_deploys_throttles_and_logs_json_access_lines(dev: Synthesized) -> None:
    stage = _only(dev, "AWS::ApiGatewayV2::Stage", {"StageName": "$default"})
    properties = dev.resources[stage]["Properties"]
    assert properties["AutoDeploy"] is True
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert (
        properties["DefaultRouteSettings"]["ThrottlingBurstLimit"]
        >= (properties["DefaultRouteSettings"]["ThrottlingRateLimit"])
    )
    access_log = json.loads(properties["AccessLogSettings"]["Format"])
    assert access_log["requestId"] == "$context.requestId"
    assert access_log["userArn"] == "$context.identity.userArn"
    log_group = properties["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert dev.resources[log_group]["Properties"]["RetentionInDays"] > 0


def test_api_url_is_a_stack_output(dev: Synthesized) -> None:
    outputs = dev.template_json()["Outputs"]
    urls = [render(output["Value"]) for key, output in outputs.items() if key.startswith("ServingApiUrl")]
    assert len(urls) == 1
    assert urls[0].startswith("https://<ServingHttpApi") and ".execute-api." in urls[0]


# --- The functions ---------------------------------------------------------------------------------------


def test_functions_run_python_3_14_traced_with_the_pinned_powertools_layer(dev: Synthesized) -> None:
    parameters = dev.template_json()["Parameters"]
    for handler in HANDLERS:
        properties = _function(dev, handler)[1]
        assert properties["Runtime"] == "python3.14"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        [layer] = properties["Layers"]
        parameter = parameters[layer["Ref"]]
        assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert parameter["Default"] == f"/aws/service/powertools/python/arm64/python3.14/{POWERTOOLS_VERSION}"
        log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert dev.resources[log_group]["Properties"]["RetentionInDays"] > 0


def test_layer_carries_the_powertools_version_the_tests_run() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = [
        pin for pin in project["optional-dependencies"]["lambda"] if pin.startswith("aws-lambda-powertools")
    ]
    assert pins == [f"aws-lambda-powertools[tracer]=={POWERTOOLS_VERSION}"]


def test_router_sizes_for_the_model_call_within_the_api_timeout(dev: Synthesized) -> None:
    properties = _function(dev, ROUTER)[1]
    assert properties["MemorySize"] == 512
    assert properties["Timeout"] <= 30  # API Gateway's HTTP API integration limit


def test_router_and_feedback_know_the_endpoints_table_and_metrics_namespace(dev: Synthesized) -> None:
    table = _table(dev)
    for handler, service in ((ROUTER, "router"), (FEEDBACK, "feedback")):
        variables = _environment(dev, handler)
        assert variables["ENDPOINT_SETTINGS_PATH"] == "/mlrollout-dev/endpoints/"
        documents = dev.settings_documents("/mlrollout-dev/endpoints/")
        assert {
            name: {
                key: document[key] for key in ("endpoint_name", "champion", "challenger", "business_metric")
            }
            for name, document in documents.items()
        } == {
            endpoint.name: {
                "endpoint_name": dev.config.endpoint_name(endpoint),
                "champion": endpoint.variants.champion,
                "challenger": endpoint.variants.challenger,
                "business_metric": {
                    "namespace": endpoint.business_metric.namespace,
                    "name": endpoint.business_metric.name,
                },
            }
            for endpoint in dev.config.endpoints
        }
        assert variables["INFERENCE_TABLE"] == {"Ref": table}
        assert variables["INFERENCE_TTL_DAYS"] == str(INFERENCE_TTL_DAYS) == "30"
        assert variables["POWERTOOLS_SERVICE_NAME"] == service
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE == "mlrollout"


def test_flag_validator_knows_the_same_endpoints_as_the_router(dev: Synthesized) -> None:
    variables = _environment(dev, FLAG_VALIDATOR)
    assert variables["ENDPOINT_SETTINGS_PATH"] == _environment(dev, ROUTER)["ENDPOINT_SETTINGS_PATH"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "flag-validator"


def _resolved(variables: dict[str, Any]) -> dict[str, str]:
    """The environment as the function sees it: the table name stands in for its Ref."""
    return {
        name: value if isinstance(value, str) else "mlrollout-dev-inference"
        for name, value in variables.items()
    }


def test_each_function_environment_satisfies_its_settings_model(dev: Synthesized) -> None:
    router = load_settings(RouterSettings, _resolved(_environment(dev, ROUTER)))
    assert router.appconfig_profile == PROFILE_NAME
    assert router.flags_ttl_seconds == FLAGS_TTL_SECONDS
    assert load_settings(FeedbackSettings, _resolved(_environment(dev, FEEDBACK))).inference_table
    catalog = _catalog(dev)
    assert [variants.endpoint for variants in catalog] == [endpoint.name for endpoint in dev.config.endpoints]


def _catalog(dev: Synthesized) -> tuple[EndpointVariants, ...]:
    """The validator's endpoints, read from the template's parameters as the deployed function reads them."""
    settings = load_settings(CatalogSettings, _resolved(_environment(dev, FLAG_VALIDATOR)))
    assert isinstance(settings.endpoints, SettingsCatalog)
    path = settings.endpoints.path
    return CatalogSettings(
        endpoints=SettingsCatalog(EndpointSettings, path, client=dev.parameters())
    ).catalog()


def test_flag_validator_accepts_the_document_the_first_deployment_carries(dev: Synthesized) -> None:
    # A rejected initial document would fail the stack's first AppConfig deployment.
    version = _only(dev, "AWS::AppConfig::HostedConfigurationVersion", {})
    content = dev.resources[version]["Properties"]["Content"]
    catalog = _catalog(dev)
    validate_document(base64.b64encode(content.encode()).decode(), catalog)


def test_router_reads_the_flag_profile_that_the_stack_deploys(dev: Synthesized) -> None:
    variables = _environment(dev, ROUTER)
    _only(dev, "AWS::AppConfig::Application", {"Name": variables["APPCONFIG_APPLICATION"]})
    _only(dev, "AWS::AppConfig::Environment", {"Name": variables["APPCONFIG_ENVIRONMENT"]})
    assert variables["APPCONFIG_PROFILE"] == PROFILE_NAME
    assert variables["FLAGS_TTL_SECONDS"] == str(FLAGS_TTL_SECONDS) == "15"
    assert variables["WEIGHTS_TTL_SECONDS"] == str(WEIGHTS_TTL_SECONDS) == "30"


def test_a_shadow_endpoint_offers_no_challenger_to_route_to(tmp_path_factory: pytest.TempPathFactory) -> None:
    prod = shared_synthesized(tmp_path_factory, "prod")
    endpoints = prod.settings_documents("/mlrollout-prod/endpoints/")
    shadowed = [endpoint for endpoint in prod.config.endpoints if endpoint.shadow]
    assert shadowed, "prod is expected to run a shadow endpoint"
    for endpoint in prod.config.endpoints:
        expected = None if endpoint.shadow else endpoint.variants.challenger
        # CloudFormation's JSON leaves a null out; the settings model reads a missing challenger as None.
        assert endpoints[endpoint.name].get("challenger") == expected


# --- The table -------------------------------------------------------------------------------------------


def test_inference_table_expires_items_recovers_to_a_point_in_time_and_is_retained(dev: Synthesized) -> None:
    table = dev.resources[_table(dev)]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "inference_id", "AttributeType": "S"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # Encrypted with the AWS-managed KMS key (aws/dynamodb), visible in CloudTrail.
    assert properties["SSESpecification"] == {"SSEEnabled": True}


# --- Least privilege -------------------------------------------------------------------------------------


def test_router_may_invoke_only_the_environments_endpoints_read_only_its_flags_and_only_put(
    dev: Synthesized,
) -> None:
    # By the environment's prefix, which every endpoint's name starts with: one ARN however many endpoints.
    endpoint_arns = {f"arn:aws:sagemaker:us-east-1:<AWS::AccountId>:endpoint/{dev.config.prefix}-*"}
    assert all(dev.config.endpoint_name(e).startswith(f"{dev.config.prefix}-") for e in dev.config.endpoints)
    application = _only(dev, "AWS::AppConfig::Application", {"Name": dev.config.prefix})
    environment = _only(dev, "AWS::AppConfig::Environment", {"ApplicationId": {"Ref": application}})
    profile = _only(dev, "AWS::AppConfig::ConfigurationProfile", {"Name": PROFILE_NAME})
    flags_arn = (
        f"arn:aws:appconfig:us-east-1:<AWS::AccountId>:application/<{application}>"
        f"/environment/<{environment}>/configuration/<{profile}>"
    )
    assert _grants(dev, ROUTER) == {
        **_log_and_trace_grants(dev, ROUTER),
        "sagemaker:InvokeEndpoint": endpoint_arns,
        "sagemaker:DescribeEndpoint": endpoint_arns,
        "appconfig:StartConfigurationSession": {flags_arn},
        "appconfig:GetLatestConfiguration": {flags_arn},
        "dynamodb:PutItem": {f"<{_table(dev)}.Arn>"},
        **SETTINGS_READ,
    }


def test_feedback_may_only_read_and_update_inference_records(dev: Synthesized) -> None:
    table_arn = {f"<{_table(dev)}.Arn>"}
    assert _grants(dev, FEEDBACK) == {
        **_log_and_trace_grants(dev, FEEDBACK),
        "dynamodb:GetItem": table_arn,
        "dynamodb:UpdateItem": table_arn,
        **SETTINGS_READ,
    }


def test_flag_validator_may_only_write_its_logs_and_traces_and_read_the_endpoints(dev: Synthesized) -> None:
    assert _grants(dev, FLAG_VALIDATOR) == _log_and_trace_grants(dev, FLAG_VALIDATOR) | SETTINGS_READ


def test_no_function_publishes_metrics_through_the_api(dev: Synthesized) -> None:
    for handler in HANDLERS:
        assert "cloudwatch:PutMetricData" not in _grants(dev, handler)  # EMF log lines instead


# --- The flag validator ----------------------------------------------------------------------------------


def test_flag_profile_is_validated_by_the_flag_validator_before_any_deployment(dev: Synthesized) -> None:
    validator = _function(dev, FLAG_VALIDATOR)[0]
    validator_arn = {"Fn::GetAtt": [validator, "Arn"]}
    dev.template.has_resource_properties(
        "AWS::AppConfig::ConfigurationProfile",
        {"Name": PROFILE_NAME, "Validators": [{"Type": "LAMBDA", "Content": validator_arn}]},
    )
    permission = _only(
        dev,
        "AWS::Lambda::Permission",
        {
            "Principal": "appconfig.amazonaws.com",
            "FunctionName": validator_arn,
            "Action": "lambda:InvokeFunction",
        },
    )
    # AppConfig calls the validator when a deployment starts, so the permission must come first.
    for deployment in dev.of_type("AWS::AppConfig::Deployment").values():
        assert permission in deployment.get("DependsOn", [])


# --- The asset -------------------------------------------------------------------------------------------


def _asset_dir(outdir: Path, function: dict[str, Any]) -> Path:
    key = function["Code"]["S3Key"]
    # Every stack's asset manifest: the functions are the environment's, the family stacks have none.
    assets = {
        k: v
        for path in outdir.glob("*.assets.json")
        for k, v in json.loads(path.read_text())["files"].items()
    }
    [source] = [asset["source"] for asset in assets.values() if key in json.dumps(asset["destinations"])]
    assert source["packaging"] == "zip"
    path: str = source["path"]
    return outdir / path


def _tree(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def test_every_function_ships_the_lambdas_package_and_nothing_else_of_the_repository(
    dev: Synthesized,
) -> None:
    for handler in HANDLERS:
        tree = _tree(_asset_dir(dev.outdir, _function(dev, handler)[1]))
        assert {path.split("/")[0] for path in tree} == {"lambdas"}
        assert "lambdas/__init__.py" in tree
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        assert f"{module}.py" in tree, f"{handler} is not in the asset"
        assert not [path for path in tree if "__pycache__" in path or path.endswith(".pyc")]
        assert not [path for path in tree if any(part.startswith(".") for part in path.split("/"))]


def test_asset_excludes_drop_caches_tests_and_tooling_around_the_package(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    for name in (
        "lambdas/__init__.py",
        "lambdas/handlers/router.py",
        "lambdas/__pycache__/flags.cpython-314.pyc",
        "lambdas/handlers/__pycache__/router.cpython-314.pyc",
        "lambdas/handlers/tests/test_router.py",
        "lambdas/.mypy_cache/x.json",
        "tests/infra/test_serving.py",
        ".venv/lib/site.py",
        "node_modules/aws-cdk/cli.js",
        "cdk.out/manifest.json",
        ".git/HEAD",
        "infra/stack.py",
        "README.md",
    ):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("x")
    outdir = tmp_path / "out"
    app = App(outdir=str(outdir))
    stack = Stack(app, "AssetProbe")
    lambda_.Function(
        stack,
        "Probe",
        code=lambda_.Code.from_asset(str(source), exclude=ASSET_EXCLUDES),
        handler="lambdas.handlers.router.handler",
        runtime=lambda_.Runtime.PYTHON_3_14,
    )
    app.synth()
    asset = next(outdir.glob("asset.*"))
    files = {path.relative_to(asset).as_posix() for path in asset.rglob("*") if path.is_file()}
    assert files == {"lambdas/__init__.py", "lambdas/handlers/router.py"}
