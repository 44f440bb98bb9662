"""The Lambda runner: real handlers from the synthesized asset, directly, through moto's Invoke API, and as
the Task of a state machine that moto's Step Functions executor runs."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.server import ThreadedMotoServer

from lambdas.flags import FlagSet
from lambdas.serving.aws.store import DynamoDBInferenceStore
from lambdas.serving.ports import InferenceRecord
from lambdas.serving.settings import CatalogSettings, load_settings
from localcloud.awslambda.invocations import (
    REPLACED_INVOKE_PARAMETERS,
    check_moto_invoke,
    create_functions,
    route_lambda_invocations,
)
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner
from localcloud.cloudformation.functions import functions_from_template
from localcloud.cloudformation.template import (
    Resolver,
    StackTemplate,
    app_template,
    load_stacks,
    local_resolver,
    state_machine_definition,
)
from tests.functional.inline_settings import with_inline_endpoints
from tests.functional.serving_support import CALLER_PRINCIPAL, http_event
from tests.infra.conftest import shared_outdir

STACK = "MlRollout-dev"
VALIDATOR = "ServingFlagValidatorFunctionC549804D"
FEEDBACK = "ServingFeedbackFunction13C41DA8"
INFERENCE_TABLE = "ServingInferenceTableC5A93BCC"
STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
EXECUTION_DEADLINE_SECONDS = 20.0


@dataclasses.dataclass(frozen=True)
class Deployed:
    template: StackTemplate
    resolver: Resolver
    runner: LambdaRunner

    @property
    def validator(self) -> FunctionSpec:
        return self.runner.function(VALIDATOR)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    template = app_template(load_stacks(shared_outdir(tmp_path_factory)), STACK)
    resolver = local_resolver(template)
    specs = [
        with_inline_endpoints(spec, template, resolver)
        for spec in functions_from_template(template, resolver)
    ]
    with LambdaRunner(specs) as runner:
        yield Deployed(template=template, resolver=resolver, runner=runner)


def validation_event(document: Any) -> dict[str, Any]:
    content = base64.b64encode(json.dumps(document).encode()).decode()
    return {
        "content": content,
        "applicationId": "app",
        "configurationProfileId": "flags",
        "configurationVersion": "3",
    }


def valid_document(spec: FunctionSpec) -> dict[str, Any]:
    """The initial flag document of the endpoints the template's environment names."""
    catalog = load_settings(CatalogSettings, dict(spec.environment)).catalog()
    return FlagSet.initial(catalog).document()


NOT_AN_OBJECT = "a flag document must be a JSON object, got list"


# (a) The runner itself.


def test_functions_are_found_by_logical_id_name_and_arn_with_the_templates_handler_and_asset(
    deployed: Deployed,
) -> None:
    spec = deployed.validator
    assert deployed.runner.function(spec.function_name) == spec == deployed.runner.function(spec.arn)
    assert spec.handler == "lambdas.handlers.flag_validator.handler"
    # In-process synthesis writes no asset metadata: the asset is the one published under Code.S3Key.
    object_key = deployed.template.resources[VALIDATOR]["Properties"]["Code"]["S3Key"]
    assert spec.code_dir == deployed.template.assembly_dir / f"asset.{object_key.removesuffix('.zip')}"
    assert json.loads(spec.environment["ENDPOINTS"])["churn"]["endpoint_name"] == "mlrollout-dev-churn"
    router = deployed.runner.function("ServingRouterFunction69E272B1")
    assert router.environment["INFERENCE_TABLE"] == deployed.resolver.resolve(
        {"Ref": "ServingInferenceTableC5A93BCC"}
    )
    assert (spec.timeout_seconds, spec.memory_mb) == (10, 256)


def test_the_validator_accepts_a_valid_document_with_its_real_result(deployed: Deployed) -> None:
    result = deployed.runner.invoke(
        VALIDATOR, json.dumps(validation_event(valid_document(deployed.validator)))
    )
    assert result.function_error is None
    assert result.json() == {"valid": True, "endpoints": ["churn"], "not_deployed": []}


def test_the_validator_rejects_an_invalid_document_with_the_real_error_raised_in_the_asset(
    deployed: Deployed,
) -> None:
    result = deployed.runner.invoke(VALIDATOR, json.dumps(validation_event([1, 2, 3])))
    error = result.json()
    assert result.function_error == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("InvalidFlagDocument", NOT_AN_OBJECT)
    handler_file = deployed.validator.code_dir.resolve() / "lambdas" / "handlers" / "flag_validator.py"
    assert error["stackTrace"][-1].startswith(f'  File "{handler_file}"')
    assert "flag document rejected" in result.log


def test_the_handler_reads_the_functions_environment_not_the_callers(deployed: Deployed) -> None:
    document = valid_document(deployed.validator)
    fraud_only = {"fraud": {**json.loads(deployed.validator.environment["ENDPOINTS"])["churn"]}}
    other_catalog = dataclasses.replace(
        deployed.validator,
        environment={**deployed.validator.environment, "ENDPOINTS": json.dumps(fraud_only)},
    )
    result = deployed.runner.invoke(other_catalog, json.dumps(validation_event(document)))
    assert result.function_error == "Unhandled"
    # Its own catalog (fraud) misses its flags; churn's, not deployed there, would be accepted.
    assert "missing ['fraud-kill-switch'" in result.json()["errorMessage"]


def small_asset(tmp_path: Path, name: str, source: str) -> Path:
    asset = tmp_path / f"asset.{name}"
    asset.mkdir()
    (asset / f"{name}.py").write_text(textwrap.dedent(source))
    return asset


PROBE = """
import os, sys, time
invocations = 0

def handler(event, context):
    global invocations
    invocations += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        sys.exit(event["exit"])
    if event.get("unserializable"):
        return {"at": object()}
    return {
        "invocations": invocations,
        "event": event,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "variables": {key: os.environ.get(key) for key in ("STAGE", "AWS_LAMBDA_FUNCTION_NAME", "HOME")},
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }
"""


@pytest.fixture
def probe_runner(tmp_path: Path) -> Iterator[tuple[LambdaRunner, FunctionSpec]]:
    spec = FunctionSpec(
        function_name="probe",
        handler="probe.handler",
        code_dir=small_asset(tmp_path, "probe", PROBE),
        environment={"STAGE": "test"},
        timeout_seconds=1,
    )
    with LambdaRunner([spec]) as runner:
        yield runner, spec


def test_a_warm_worker_keeps_module_state_and_sees_the_lambda_environment_only(
    probe_runner: tuple[LambdaRunner, FunctionSpec],
) -> None:
    runner, spec = probe_runner
    runner.invoke("probe", '{"n": 1}')
    answer = runner.invoke("probe", '{"n": 2}').json()
    assert answer["invocations"] == 2
    assert answer["event"] == {"n": 2}
    assert (answer["function_name"], answer["memory"]) == ("probe", "128")
    assert 0 < answer["remaining_ms"] <= 1000
    assert answer["variables"] == {"STAGE": "test", "AWS_LAMBDA_FUNCTION_NAME": "probe", "HOME": None}
    assert answer["cwd"] == str(spec.code_dir.resolve())


def test_concurrent_invocations_run_in_separate_workers(
    probe_runner: tuple[LambdaRunner, FunctionSpec],
) -> None:
    runner, _ = probe_runner
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: runner.invoke("probe", '{"sleep": 0.5}').json(), range(2)))
    assert answers[0]["pid"] != answers[1]["pid"]
    assert [answer["invocations"] for answer in answers] == [1, 1]


def test_a_handler_past_its_timeout_is_stopped_and_the_next_invocation_starts_cold(
    probe_runner: tuple[LambdaRunner, FunctionSpec],
) -> None:
    runner, _ = probe_runner
    started = time.monotonic()
    result = runner.invoke("probe", '{"sleep": 30}')
    assert time.monotonic() - started < 5
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert result.json()["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert runner.invoke("probe", "{}").json()["invocations"] == 1


def test_a_handler_that_exits_its_process_is_a_runtime_exit_error(
    probe_runner: tuple[LambdaRunner, FunctionSpec],
) -> None:
    runner, _ = probe_runner
    result = runner.invoke("probe", '{"exit": 3}')
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Runtime.ExitError"
    assert result.json()["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert runner.invoke("probe", "{}").json()["invocations"] == 1


def test_a_result_that_is_not_json_is_a_marshal_error(
    probe_runner: tuple[LambdaRunner, FunctionSpec],
) -> None:
    runner, _ = probe_runner
    result = runner.invoke("probe", '{"unserializable": true}')
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Runtime.MarshalError"


@pytest.mark.parametrize(
    ("handler", "source", "error_type", "message"),
    [
        ("missing.handler", "", "Runtime.ImportModuleError", "Unable to import module 'missing'"),
        (
            "broken.handler",
            "def handler(:\n",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'broken'",
        ),
        ("nohandler.handler", "x = 1\n", "Runtime.HandlerNotFound", "Handler 'handler' missing on module"),
        ("failing.handler", "raise KeyError('at import')\n", "KeyError", "'at import'"),
        # The repository is installed in the venv (editable), but only the asset is the function's code.
        ("leaky.handler", "import infra\n", "Runtime.ImportModuleError", "No module named 'infra'"),
    ],
)
def test_an_init_failure_answers_with_the_runtimes_error(
    tmp_path: Path, handler: str, source: str, error_type: str, message: str
) -> None:
    module = handler.split(".", maxsplit=1)[0]
    asset = small_asset(tmp_path, module, source) if source else small_asset(tmp_path, "other", "")
    with LambdaRunner([FunctionSpec(function_name="f", handler=handler, code_dir=asset)]) as runner:
        result = runner.invoke("f", "{}")
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == error_type
    assert message in result.json()["errorMessage"]


# (b) Through moto's Lambda API, the functions created from the template.


@pytest.fixture
def moto_functions(deployed: Deployed) -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        role = boto3.client("iam").create_role(RoleName="local-lambda", AssumeRolePolicyDocument="{}")["Role"]
        client = boto3.client("lambda")
        create_functions(client, deployed.runner.functions, role_arn=role["Arn"])
        with route_lambda_invocations(deployed.runner):
            yield client


def test_moto_still_has_the_invoke_method_that_is_replaced() -> None:
    assert tuple(inspect.signature(LambdaFunction.invoke).parameters) == REPLACED_INVOKE_PARAMETERS
    check_moto_invoke()


def test_lambda_invoke_on_moto_runs_the_real_handler(deployed: Deployed, moto_functions: Any) -> None:
    name = deployed.validator.function_name
    payload = json.dumps(validation_event(valid_document(deployed.validator)))
    response = moto_functions.invoke(FunctionName=name, Payload=payload)
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {
        "valid": True,
        "endpoints": ["churn"],
        "not_deployed": [],
    }


def test_lambda_invoke_on_moto_returns_the_real_error_and_log_tail(
    deployed: Deployed, moto_functions: Any
) -> None:
    response = moto_functions.invoke(
        FunctionName=deployed.validator.arn, Payload=json.dumps(validation_event([1])), LogType="Tail"
    )
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("InvalidFlagDocument", NOT_AN_OBJECT)
    assert "[ERROR] InvalidFlagDocument" in base64.b64decode(response["LogResult"]).decode()


def test_a_configuration_update_through_the_api_applies_to_the_next_invocation(
    deployed: Deployed, moto_functions: Any
) -> None:
    name = deployed.validator.function_name
    moto_functions.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"ENDPOINTS": "{}"}}
    )
    payload = json.dumps(validation_event(valid_document(deployed.validator)))
    response = moto_functions.invoke(FunctionName=name, Payload=payload)
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "SettingsError"
    assert "ENDPOINTS" in error["errorMessage"]


def test_a_dry_run_runs_nothing_and_an_event_invocation_runs_the_handler(
    probe_runner: tuple[LambdaRunner, FunctionSpec],
) -> None:
    runner, spec = probe_runner
    with mock_aws():
        role = boto3.client("iam").create_role(RoleName="probe", AssumeRolePolicyDocument="{}")["Role"]
        client = boto3.client("lambda")
        create_functions(client, [spec], role_arn=role["Arn"])
        with route_lambda_invocations(runner):
            assert client.invoke(FunctionName="probe", InvocationType="DryRun")["StatusCode"] == 204
            assert client.invoke(FunctionName="probe", InvocationType="Event")["StatusCode"] == 202
            answer = json.loads(client.invoke(FunctionName="probe")["Payload"].read())
    assert answer["invocations"] == 2


# (c) A state machine run by moto's executor, its Task invoking the template's function.


def definition_string(catch_errors: list[str]) -> dict[str, Any]:
    """A DefinitionString as CDK writes it for a LambdaInvoke task: JSON joined around the function's ARN."""
    head = {
        "StartAt": "Validate flags",
        "States": {
            "Validate flags": {
                "Type": "Task",
                "Resource": "@RESOURCE@",
                "Parameters": {"FunctionName": "@FUNCTION@", "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Catch": [{"ErrorEquals": catch_errors, "ResultPath": "$.rejection", "Next": "Rejected"}],
                "End": True,
            },
            "Rejected": {"Type": "Pass", "End": True},
        },
    }
    before_resource, rest = json.dumps(head).split("@RESOURCE@")
    before_function, after_function = rest.split("@FUNCTION@")
    parts = [
        f"{before_resource}arn:",
        {"Ref": "AWS::Partition"},
        f":states:::lambda:invoke{before_function}",
        {"Fn::GetAtt": [VALIDATOR, "Arn"]},
        after_function,
    ]
    return {"Fn::Join": ["", parts]}


def run_execution(
    deployed: Deployed, catch_errors: list[str], execution_input: dict[str, Any]
) -> dict[str, Any]:
    # The dev template with one more resource, the state machine, as a stack of the rollout will have it.
    machine_resource = {
        "Type": STATE_MACHINE_TYPE,
        "Properties": {"DefinitionString": definition_string(catch_errors)},
    }
    body = {
        **deployed.template.body,
        "Resources": {**deployed.template.resources, "FlagsMachine": machine_resource},
    }
    resolver = local_resolver(dataclasses.replace(deployed.template, body=body))
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"flags-{len(catch_errors)}",
        definition=state_machine_definition(resolver, "FlagsMachine"),
        roleArn="arn:aws:iam::123456789012:role/local-states",
    )
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], input=json.dumps(execution_input)
    )
    deadline = time.monotonic() + EXECUTION_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.05)
    raise AssertionError(f"execution still running after {EXECUTION_DEADLINE_SECONDS} s")


def test_a_task_state_returns_the_handlers_real_result(deployed: Deployed, moto_functions: Any) -> None:
    execution = run_execution(
        deployed, ["InvalidFlagDocument"], validation_event(valid_document(deployed.validator))
    )
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"valid": True, "endpoints": ["churn"], "not_deployed": []}


def test_the_handlers_real_error_is_a_task_failure_that_a_catch_routes(
    deployed: Deployed, moto_functions: Any
) -> None:
    execution = run_execution(deployed, ["InvalidFlagDocument"], validation_event([1]))
    assert execution["status"] == "SUCCEEDED"
    rejection = json.loads(execution["output"])["rejection"]
    assert rejection["Error"] == "InvalidFlagDocument"
    assert json.loads(rejection["Cause"])["errorMessage"] == NOT_AN_OBJECT


def test_an_error_no_catch_names_fails_the_execution_with_it(deployed: Deployed, moto_functions: Any) -> None:
    execution = run_execution(deployed, ["States.Timeout"], validation_event([1]))
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidFlagDocument"
    assert json.loads(execution["cause"])["errorType"] == "InvalidFlagDocument"


# (d) A handler's own AWS calls: from its worker process to moto's server on loopback, which shares its
# state with the in-process mock the test uses.


@pytest.fixture
def loopback_runner(deployed: Deployed) -> Iterator[LambdaRunner]:
    with mock_aws():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            with LambdaRunner(deployed.runner.functions, aws_endpoint_url=f"http://{host}:{port}") as runner:
                yield runner
        finally:
            server.stop()


def create_table_from_template(deployed: Deployed, logical_id: str) -> str:
    properties = deployed.resolver.resolve(deployed.template.resources[logical_id]["Properties"])
    name: str = deployed.resolver.resolve({"Ref": logical_id})
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
    )
    return name


def test_a_handlers_aws_calls_reach_the_emulator_the_test_sees(
    deployed: Deployed, loopback_runner: LambdaRunner
) -> None:
    table = create_table_from_template(deployed, INFERENCE_TABLE)
    dynamodb = boto3.client("dynamodb")
    now = int(time.time())
    inference_id = str(uuid.uuid4())
    record = InferenceRecord(
        inference_id=inference_id,
        endpoint="churn",
        endpoint_name="mlrollout-dev-churn",
        variant="challenger",
        records=1,
        predicted_labels=(1,),
        created_at=now - 60,
        expires_at=now + 3600,
        caller=CALLER_PRINCIPAL,
    )
    DynamoDBInferenceStore(client=dynamodb, table_name=table).save(record)
    body = json.dumps({"inference_id": inference_id, "label": 1})
    result = loopback_runner.invoke(FEEDBACK, json.dumps(http_event(body, path="/feedback")))
    assert result.function_error is None
    response = result.json()
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["values"] == [1.0]
    item = dynamodb.get_item(TableName=table, Key={"inference_id": {"S": inference_id}})["Item"]
    assert item["outcome"] == {"S": "label"}
