"""The retraining workflow: its state machine (valid ASL, every task retried and caught, a failure path
that notifies and releases), least privilege per function and for the jobs, the data bucket, triggers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.nag import render
from infra.platform_parameters import parameter_name
from infra.retraining_workflow import (
    ENDED_MODULE,
    HANDLER_MODULES,
    workflow_timeout,
)
from infra.workflow_task import NAMED_INPUT, START_PAYLOAD_PATH, TRANSIENT_ERRORS, handler_name
from lambdas.retraining.ended import ENDED_STATUSES, load_ended_settings
from lambdas.retraining.settings import FamilySettings, RetrainingSettings, load_retraining_settings
from lambdas.retraining.state import parse_input
from lambdas.shared.endpoint_store import SettingsCatalog
from tests.infra.conftest import REPO_ROOT, Synthesized

ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"
DUMMY_ACCOUNT = "123456789012"
NAME = "Name the run after this execution"
START = "Take the family's lock"
NOTIFY = "Notify the failure"
RELEASE_AFTER_FAILURE = "Release the lock after the failure"
FAILED = "Retraining failed"
REGISTER = "Gate and register the model"
TASK_HANDLERS = {
    START: "retraining_start",
    "Start the preprocessing": "retraining_preprocess",
    "Is the preprocessing done?": "retraining_check_job",
    "Start the training": "retraining_train",
    "Is the training done?": "retraining_check_job",
    "Start the evaluation": "retraining_evaluate",
    "Is the evaluation done?": "retraining_check_job",
    REGISTER: "retraining_register",
    "Release the lock": "retraining_release",
    RELEASE_AFTER_FAILURE: "retraining_release",
}
# The tasks between taking the lock and registering: a failure in any of them must free the family.
LOCKED_TASKS = [
    name for name in TASK_HANDLERS if name not in (START, "Release the lock", RELEASE_AFTER_FAILURE)
]
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SAGEMAKER = "arn:aws:sagemaker:us-east-1:<AWS::AccountId>"
PASSED_TO_SAGEMAKER = json.dumps(
    {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, sort_keys=True
)


def _single(dev: Synthesized, resource_type: str, prefix: str) -> str:
    [logical_id] = [key for key in dev.of_type(resource_type) if key.startswith(prefix)]
    return logical_id


def _machine(dev: Synthesized) -> dict[str, Any]:
    properties: dict[str, Any] = dev.resources[
        _single(dev, "AWS::StepFunctions::StateMachine", "Retraining")
    ]["Properties"]
    return properties


def _resolve(value: Any) -> str:
    """The definition with every GetAtt replaced by a well-formed dummy ARN and every Ref by a dummy name."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_resolve(part) for part in parts)
    if "Fn::GetAtt" in value:
        return f"arn:aws:lambda:us-east-1:{DUMMY_ACCOUNT}:function:{value['Fn::GetAtt'][0]}"
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if "Ref" in value:
        return f"arn:aws:sns:us-east-1:{DUMMY_ACCOUNT}:{value['Ref']}"
    raise ValueError(f"cannot resolve {value!r}")


@pytest.fixture(scope="module")
def definition(dev: Synthesized) -> dict[str, Any]:
    resolved: dict[str, Any] = json.loads(_resolve(_machine(dev)["DefinitionString"]))
    return resolved


def _function_ids(dev: Synthesized) -> dict[str, str]:
    by_handler = {
        function["Properties"]["Handler"]: logical_id
        for logical_id, function in dev.of_type("AWS::Lambda::Function").items()
    }
    return {module: by_handler[handler_name(module)] for module in HANDLER_MODULES}


def _successors(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    yield from (choice["Next"] for choice in state.get("Choices", []))
    if "Default" in state:
        yield state["Default"]
    yield from (catch["Next"] for catch in state.get("Catch", []))


def _reachable(definition: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_successors(definition["States"][name]))
    return seen


# --- The definition --------------------------------------------------------------------------------------


def test_definition_is_valid_amazon_states_language(definition: dict[str, Any], tmp_path: Path) -> None:
    assert ASL_VALIDATOR.exists(), "asl-validator is missing: run `make setup` (npm ci installs it)"
    path = tmp_path / "definition.asl.json"
    path.write_text(json.dumps(definition))
    result = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_states_run_lock_three_jobs_gate_and_release_in_order(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == NAME
    assert states[NAME] == {"Type": "Pass", "Parameters": NAMED_INPUT, "Next": START}
    assert states[START]["Parameters"]["Payload.$"] == START_PAYLOAD_PATH
    assert states[START]["Next"] == "Is the lock ours?"
    lock_choice = states["Is the lock ours?"]
    assert lock_choice["Choices"] == [
        {"Variable": "$.lock.taken", "BooleanEquals": True, "Next": "Start the preprocessing"}
    ]
    assert states[lock_choice["Default"]]["Type"] == "Succeed"
    assert lock_choice["Default"] == "Already retraining"
    for job, then in (
        ("preprocessing", "Start the training"),
        ("training", "Start the evaluation"),
        ("evaluation", REGISTER),
    ):
        assert states[f"Start the {job}"]["Next"] == f"Wait for the {job}"
        assert states[f"Wait for the {job}"] == {"Type": "Wait", "Seconds": 60, "Next": f"Is the {job} done?"}
        assert states[f"Is the {job} done?"]["Next"] == f"Has the {job} completed?"
        choice = states[f"Has the {job} completed?"]
        assert choice["Choices"] == [{"Variable": "$.job.status", "StringEquals": "Completed", "Next": then}]
        assert choice["Default"] == f"Wait for the {job}"
    assert states[REGISTER]["Next"] == "Release the lock"
    assert states["Release the lock"]["Next"] == "Approved or pending?"
    handoff = states["Approved or pending?"]
    assert handoff["Choices"] == [
        {
            "Variable": "$.registration.approval_status",
            "StringEquals": "Approved",
            "Next": "Handed to the rollout",
        }
    ]
    assert handoff["Default"] == "Awaiting approval"
    assert states["Handed to the rollout"]["Type"] == states["Awaiting approval"]["Type"] == "Succeed"


def test_every_task_invokes_its_handler_and_retries_transient_errors(
    dev: Synthesized, definition: dict[str, Any]
) -> None:
    functions = _function_ids(dev)
    states = definition["States"]
    for name, module in TASK_HANDLERS.items():
        state = states[name]
        target = (
            state["Resource"]
            if "FunctionName" not in state.get("Parameters", {})
            else state["Parameters"]["FunctionName"]
        )
        assert target.endswith(f":function:{functions[module]}"), name
        [retry] = state["Retry"]
        assert set(retry["ErrorEquals"]) == set(TRANSIENT_ERRORS), name
        assert retry["MaxAttempts"] >= 3 and retry["BackoffRate"] >= 2, name


def test_every_task_after_the_lock_catches_everything_into_the_failure_path(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    for name in LOCKED_TASKS:
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": NOTIFY}
        ], name
    # A refused start took no lock: it is told, not released.
    [refused] = states[START]["Catch"]
    assert (refused["ErrorEquals"], refused["ResultPath"]) == (["States.ALL"], "$.error")
    assert states[refused["Next"]]["Resource"].endswith(":states:::sns:publish")
    assert states[states[refused["Next"]]["Next"]]["Type"] == "Fail"


def test_the_failure_path_publishes_the_reason_releases_the_lock_and_fails_with_it(
    dev: Synthesized, definition: dict[str, Any]
) -> None:
    states = definition["States"]
    notify = states[NOTIFY]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    topic = _single(dev, "AWS::SNS::Topic", "NotificationsTopic")
    assert notify["Parameters"]["TopicArn"] == f"arn:aws:sns:us-east-1:{DUMMY_ACCOUNT}:{topic}"
    message = notify["Parameters"]["Message"]
    assert (message["error.$"], message["cause.$"]) == ("$.error.Error", "$.error.Cause")
    assert message["event"] == "retraining_failed"
    # The publish and the release keep the state (and its error) as it was.
    assert notify["ResultPath"] is None and states[RELEASE_AFTER_FAILURE]["ResultPath"] is None
    assert notify["Next"] == RELEASE_AFTER_FAILURE
    # A notification that cannot be sent still frees the family.
    assert notify["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error", "Next": RELEASE_AFTER_FAILURE}
    ]
    assert states[RELEASE_AFTER_FAILURE]["Next"] == FAILED
    assert states[FAILED] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    [not_released] = states[RELEASE_AFTER_FAILURE]["Catch"]
    assert states[not_released["Next"]]["Type"] == "Fail"


def test_every_path_from_the_lock_ends_and_every_state_is_reachable(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert _reachable(definition, NAME) == set(states)
    # Once the lock is taken, every ending but "lock not released" passes through a release.
    endings = {name for name, state in states.items() if state["Type"] in ("Succeed", "Fail")}
    after_lock = _reachable(definition, "Start the preprocessing")
    for ending in endings & after_lock:
        if "lock not released" in ending:
            continue
        assert ending in _reachable(definition, "Release the lock") | _reachable(
            definition, RELEASE_AFTER_FAILURE
        )


def test_machine_is_standard_traced_logged_with_a_timeout_for_three_jobs(dev: Synthesized) -> None:
    properties = _machine(dev)
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["StateMachineName"] == f"{dev.config.prefix}-retraining"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    timeout = json.loads(_resolve(properties["DefinitionString"]))["TimeoutSeconds"]
    assert timeout == workflow_timeout(dev.config).to_seconds()
    assert timeout > 3 * dev.config.retraining.max_runtime_minutes * 60


def test_the_start_handler_accepts_what_the_triggers_send(dev: Synthesized) -> None:
    for rule in _rules(dev).values():
        target = rule["Targets"][0]
        if "Input" in target:
            parse_input(json.loads(target["Input"]) | {"execution_id": "e"})


# --- Least privilege -------------------------------------------------------------------------------------


def _grants(dev: Synthesized, role: str) -> dict[str, set[str]]:
    assert not dev.resources[role]["Properties"].get("ManagedPolicyArns"), "no managed policy on a role"
    grants: dict[str, set[str]] = {}
    for policy in dev.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            condition = (
                f"|{json.dumps(statement['Condition'], sort_keys=True)}" if "Condition" in statement else ""
            )
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                grants.setdefault(action, set()).update(
                    render(resource) + condition for resource in resources
                )
    return grants


def _ended_function_id(dev: Synthesized) -> str:
    [logical_id] = [
        logical_id
        for logical_id, function in dev.of_type("AWS::Lambda::Function").items()
        if function["Properties"]["Handler"] == handler_name(ENDED_MODULE)
    ]
    return logical_id


def _own_grants(dev: Synthesized, module: str) -> dict[str, set[str]]:
    function_ids = {**_function_ids(dev), ENDED_MODULE: _ended_function_id(dev)}
    properties = dev.resources[function_ids[module]]["Properties"]
    grants = _grants(dev, properties["Role"]["Fn::GetAtt"][0])
    for action in LOG_ACTIONS:
        assert grants.pop(action) == {f"<{properties['LoggingConfig']['LogGroup']['Ref']}.Arn>"}
    for action in XRAY_ACTIONS:
        assert grants.pop(action) == {"*"}
    return grants


class _Arns:
    def __init__(self, dev: Synthesized) -> None:
        # Every family's jobs and package group, by the environment's prefix (one pattern however many).
        names = f"{dev.config.prefix}-*"
        self.lock = f"<{_single(dev, 'AWS::DynamoDB::Table', 'RolloutLockTable')}.Arn>"
        self.processing = f"{SAGEMAKER}:processing-job/{names}"
        self.training = f"{SAGEMAKER}:training-job/{names}"
        self.packages = {f"{SAGEMAKER}:model-package/{names}/*", f"{SAGEMAKER}:model-package-group/{names}"}
        self.artifacts = f"<{_single(dev, 'AWS::S3::Bucket', 'RegistryArtifacts')}.Arn>"
        self.data = f"<{_single(dev, 'AWS::S3::Bucket', 'RetrainingTrainingData')}.Arn>"
        self.key = f"<{_single(dev, 'AWS::KMS::Key', 'RegistryArtifactKey')}.Arn>"
        self.job_role = _single(dev, "AWS::IAM::Role", "RetrainingJobRole")
        self.pass_role = f"<{self.job_role}.Arn>|{PASSED_TO_SAGEMAKER}"


# Every function reads the families' settings (one SSM parameter each) under the environment's path.
FAMILY_SETTINGS_READ = {
    "ssm:GetParametersByPath": {
        "arn:aws:ssm:us-east-1:<AWS::AccountId>:parameter/mlrollout-dev/families",
        "arn:aws:ssm:us-east-1:<AWS::AccountId>:parameter/mlrollout-dev/families/*",
    }
}


def test_each_function_is_granted_exactly_the_calls_its_handler_makes(dev: Synthesized) -> None:
    arns = _Arns(dev)
    renew = {"dynamodb:UpdateItem": {arns.lock}, "dynamodb:GetItem": {arns.lock}}
    expected = {
        "retraining_start": {"dynamodb:PutItem": {arns.lock}, "dynamodb:GetItem": {arns.lock}},
        "retraining_preprocess": renew
        | {"sagemaker:CreateProcessingJob": {arns.processing}, "iam:PassRole": {arns.pass_role}},
        "retraining_train": renew
        | {"sagemaker:CreateTrainingJob": {arns.training}, "iam:PassRole": {arns.pass_role}},
        "retraining_evaluate": renew
        | {"sagemaker:CreateProcessingJob": {arns.processing}, "iam:PassRole": {arns.pass_role}},
        "retraining_check_job": renew
        | {
            "sagemaker:DescribeProcessingJob": {arns.processing},
            "sagemaker:DescribeTrainingJob": {arns.training},
        },
        "retraining_register": renew
        | {
            "s3:GetObject": {f"{arns.artifacts}/retraining/*"},
            "kms:Decrypt": {arns.key},
            "sagemaker:CreateModelPackage": arns.packages,
        },
        "retraining_release": {"dynamodb:DeleteItem": {arns.lock}},
    }
    for module in HANDLER_MODULES:
        assert _own_grants(dev, module) == expected[module] | FAMILY_SETTINGS_READ, module


def test_only_the_job_role_is_passed_and_only_to_sagemaker(dev: Synthesized) -> None:
    arns = _Arns(dev)
    for module in HANDLER_MODULES:
        passed = _own_grants(dev, module).get("iam:PassRole")
        assert passed in (None, {arns.pass_role}), module


def test_the_jobs_read_the_data_write_only_retraining_and_pull_only_the_training_image(
    dev: Synthesized,
) -> None:
    arns = _Arns(dev)
    trust = dev.resources[arns.job_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    grants = _grants(dev, arns.job_role)
    retraining_prefix = json.dumps({"StringLike": {"s3:prefix": ["retraining/*"]}}, sort_keys=True)
    repository = "arn:<AWS::Partition>:ecr:us-east-1:123456789012:repository/mlrollout-training"
    log_groups = {
        f"arn:aws:logs:us-east-1:<AWS::AccountId>:log-group:/aws/sagemaker/{kind}:*"
        for kind in ("ProcessingJobs", "TrainingJobs")
    }
    assert grants == {
        "s3:GetObject": {f"{arns.data}/*", f"{arns.artifacts}/retraining/*"},
        "s3:PutObject": {f"{arns.artifacts}/retraining/*"},
        "s3:ListBucket": {arns.data, f"{arns.artifacts}|{retraining_prefix}"},
        "kms:Decrypt": {arns.key},
        "kms:GenerateDataKey": {arns.key},
        "ecr:BatchGetImage": {repository},
        "ecr:GetDownloadUrlForLayer": {repository},
        "ecr:BatchCheckLayerAvailability": {repository},
        "ecr:GetAuthorizationToken": {"*"},
        "cloudwatch:PutMetricData": {
            "*|" + json.dumps({"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}, sort_keys=True)
        },
        "logs:CreateLogGroup": log_groups,
        "logs:CreateLogStream": log_groups,
        "logs:PutLogEvents": log_groups,
        "logs:DescribeLogStreams": log_groups,
    }


def test_the_machine_invokes_only_its_functions_and_publishes_only_to_the_topic(dev: Synthesized) -> None:
    grants = _grants(dev, _machine(dev)["RoleArn"]["Fn::GetAtt"][0])
    functions = {f"<{logical_id}.Arn>" for logical_id in _function_ids(dev).values()}
    assert grants.pop("lambda:InvokeFunction") == functions | {f"{arn}:*" for arn in functions}
    assert grants.pop("sns:Publish") == {f"<{_single(dev, 'AWS::SNS::Topic', 'NotificationsTopic')}>"}
    topic_key = f"<{_single(dev, 'AWS::KMS::Key', 'NotificationsTopicKey')}.Arn>"
    assert (grants.pop("kms:Decrypt"), grants.pop("kms:GenerateDataKey")) == ({topic_key}, {topic_key})
    assert all(
        action.startswith(("logs:", "xray:")) and resources == {"*"} for action, resources in grants.items()
    )


def test_endpoints_load_and_the_rollouts_gates_read_retrained_artifacts_only(dev: Synthesized) -> None:
    arns = _Arns(dev)
    [endpoint] = dev.config.endpoints
    execution_role = _single(dev, "AWS::IAM::Role", f"Endpoint{endpoint.name}ExecutionRole")
    # The family stack names the environment's bucket by the name the platform stack handed over.
    bucket = dev.platform_value("bucket")["Ref"]
    assert f"arn:aws:s3:::<{bucket}>/retraining/*/model/*" in _grants(dev, execution_role)["s3:GetObject"]
    gates_function = next(
        f
        for f in dev.of_type("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"].endswith("rollout_gates.handler")
    )
    gates_reads = _grants(dev, gates_function["Properties"]["Role"]["Fn::GetAtt"][0])["s3:GetObject"]
    assert f"{arns.artifacts}/retraining/*/gates/*" in gates_reads
    assert f"{arns.artifacts}/retraining/*" not in gates_reads


# --- Environment, data and triggers ----------------------------------------------------------------------


def _with_template_families(dev: Synthesized, settings: RetrainingSettings) -> RetrainingSettings:
    """The settings with their families read from the template's parameters, as deployed."""
    assert isinstance(settings.families, SettingsCatalog)
    families = SettingsCatalog(FamilySettings, settings.families.path, client=dev.parameters())
    assert not families.problems
    return settings.model_copy(update={"families": families})


def test_every_function_gets_settings_the_handlers_accept(dev: Synthesized) -> None:
    for module, logical_id in _function_ids(dev).items():
        environment = dev.resources[logical_id]["Properties"]["Environment"]["Variables"]
        resolved = {
            name: value if isinstance(value, str) else "mlrollout-dev-resolved"
            for name, value in environment.items()
            if name not in ("SAGEMAKER_ROLE_ARN",)
        }
        resolved["SAGEMAKER_ROLE_ARN"] = f"arn:aws:iam::{DUMMY_ACCOUNT}:role/jobs"
        resolved["JOBS"] = _resolve(environment["JOBS"])
        settings = _with_template_families(dev, load_retraining_settings(resolved))
        assert settings.jobs.name_prefix == dev.config.prefix, module
        assert settings.jobs.image_uri == dev.config.retraining.training_image_uri
        assert settings.auto_approve is dev.config.retraining.auto_approve
        [family] = settings.families.values()
        assert family.inference_image == dev.config.endpoints[0].initial_model.image_uri
        assert family.gates == dev.config.rollout.gates


def test_the_data_bucket_is_encrypted_tls_only_private_and_sends_events(dev: Synthesized) -> None:
    bucket_id = _single(dev, "AWS::S3::Bucket", "RetrainingTrainingData")
    properties = dev.resources[bucket_id]["Properties"]
    [encryption] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["LoggingConfiguration"]["LogFilePrefix"] == "training-data/"
    [policy] = [
        p
        for p in dev.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    denials = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denials)


def _rules(dev: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        logical_id: rule["Properties"]
        for logical_id, rule in dev.of_type("AWS::Events::Rule").items()
        if logical_id.startswith("Retraining")
    }


def _published(dev: Synthesized, what: str) -> Any:
    """The value the platform stack writes to its parameter `what` (infra/platform_parameters.py)."""
    [value] = [
        parameter["Properties"]["Value"]
        for parameter in dev.of_type("AWS::SSM::Parameter").values()
        if parameter["Properties"]["Name"] == parameter_name(dev.config.prefix, what)
    ]
    return value


def _machine_arn(dev: Synthesized) -> Any:
    """The retraining machine as a family stack names it: by the name the platform publishes, in the family
    stack's own account and region."""
    [arn] = [
        target["Arn"]
        for rule in _rules(dev).values()
        for target in rule["Targets"]
        if "ScheduleExpression" in rule
    ]
    parameter = dev.platform_value("retraining")["Ref"]
    assert render(arn) == f"arn:aws:states:us-east-1:<AWS::AccountId>:stateMachine:<{parameter}>"
    return arn


def test_the_triggers_live_in_the_familys_stack_and_reach_the_platform_through_its_parameters(
    dev: Synthesized,
) -> None:
    [family] = dev.config.model_families
    stacks = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())["Resources"]
        for path in dev.outdir.glob("*.template.json")
    }
    platform, family_stack = (
        stacks[f"MlRollout-{dev.config.name}"],
        stacks[f"MlRollout-{dev.config.name}-{family}"],
    )
    triggers = {
        key for key in _rules(dev) if key != _single(dev, "AWS::Events::Rule", "RetrainingEndedExecution")
    }
    assert triggers and triggers <= set(family_stack) and not triggers & set(platform)
    # What the rules start and watch: the platform's machine and data bucket, by the ARN and name it writes.
    assert _published(dev, "retraining") == _machine(dev)["StateMachineName"]
    assert _published(dev, "training_data") == {
        "Ref": _single(dev, "AWS::S3::Bucket", "RetrainingTrainingData")
    }
    # The role the rules start it with may start that machine and nothing else.
    [role] = [key for key, r in family_stack.items() if r["Type"] == "AWS::IAM::Role" and "EventsRole" in key]
    [policy] = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in family_stack.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]
    assert policy == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": _machine_arn(dev)}]


def test_the_schedule_retrains_each_family_with_the_contracts_input(dev: Synthesized) -> None:
    scheduled = [rule for rule in _rules(dev).values() if "ScheduleExpression" in rule]
    assert [rule["ScheduleExpression"] for rule in scheduled] == [dev.config.retraining.schedule]
    [target] = scheduled[0]["Targets"]
    assert target["Arn"] == _machine_arn(dev)
    assert json.loads(target["Input"]) == {
        "model_family": "churn-classifier",
        "trigger": {"kind": "schedule", "detail": {}},
    }
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_a_new_object_under_the_familys_prefix_retrains_it_with_the_object_named(dev: Synthesized) -> None:
    [rule] = [
        rule for rule in _rules(dev).values() if rule.get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [dev.platform_value("training_data")]},
            "object": {"key": [{"prefix": "churn-classifier/"}]},
        },
    }
    [target] = rule["Targets"]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "detail-bucket-name": "$.detail.bucket.name",
        "detail-object-key": "$.detail.object.key",
    }
    template = json.loads(
        transformer["InputTemplate"]
        .replace("<detail-bucket-name>", '"b"')
        .replace("<detail-object-key>", '"k"')
    )
    assert template == {
        "model_family": "churn-classifier",
        "trigger": {"kind": "new_data", "detail": {"bucket": "b", "key": "k"}},
    }


def test_an_endpoints_drift_alarm_going_to_alarm_retrains_its_family(dev: Synthesized) -> None:
    [endpoint] = dev.config.endpoints
    alarm = _single(dev, "AWS::CloudWatch::Alarm", f"Drift{dev.config.endpoints[0].name}")
    assert (
        dev.resources[alarm]["Properties"]["AlarmName"] == f"{dev.config.prefix}-{endpoint.name}-input-drift"
    )
    [rule] = [
        rule
        for rule in _rules(dev).values()
        if rule.get("EventPattern", {}).get("source") == ["aws.cloudwatch"]
    ]
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        # By name: the alarm lives in the endpoint's family stack.
        "resources": [
            {
                "Fn::Join": [
                    "",
                    [
                        "arn:aws:cloudwatch:us-east-1:",
                        {"Ref": "AWS::AccountId"},
                        f":alarm:{dev.resources[alarm]['Properties']['AlarmName']}",
                    ],
                ]
            }
        ],
        "detail": {"state": {"value": ["ALARM"]}},
    }
    [target] = rule["Targets"]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-alarmName": "$.detail.alarmName"}
    template = json.loads(transformer["InputTemplate"].replace("<detail-alarmName>", '"a"'))
    assert template == {
        "model_family": endpoint.model_family,
        "trigger": {"kind": "drift_alarm", "detail": {"endpoint": endpoint.name, "alarm": "a"}},
    }


def test_only_the_retraining_rules_start_the_retraining_machine(dev: Synthesized) -> None:
    machine = _machine_arn(dev)
    starters = {
        logical_id
        for logical_id, rule in dev.of_type("AWS::Events::Rule").items()
        if any(target["Arn"] == machine for target in rule["Properties"]["Targets"])
    }
    assert starters == set(_rules(dev)) - {_single(dev, "AWS::Events::Rule", "RetrainingEndedExecution")}
    # Per family a schedule and new data; per endpoint its drift alarm.
    assert len(starters) == 2 * len(dev.config.model_families) + len(dev.config.endpoints)


# --- An execution stopped by hand or timed out -----------------------------------------------------------


def test_a_retraining_stopped_or_timed_out_invokes_the_clean_up_with_retries_and_a_dead_letter_queue(
    dev: Synthesized,
) -> None:
    machine = _single(dev, "AWS::StepFunctions::StateMachine", "Retraining")
    rule = dev.resources[_single(dev, "AWS::Events::Rule", "RetrainingEndedExecution")]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["ABORTED", "TIMED_OUT"], "stateMachineArn": [{"Ref": machine}]},
    }
    # The handler's own list of the statuses it cleans up after is the rule's.
    assert list(ENDED_STATUSES) == rule["EventPattern"]["detail"]["status"]
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_ended_function_id(dev), "Arn"]}
    assert "Input" not in target and "InputTransformer" not in target, "the handler reads the whole event"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    queue = _single(dev, "AWS::SQS::Queue", "RetrainingUndeliveredEnded")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    permissions = [
        p["Properties"]
        for p in dev.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [_ended_function_id(dev), "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [_ended_function_id(dev), "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {
                "Fn::GetAtt": [_single(dev, "AWS::Events::Rule", "RetrainingEndedExecution"), "Arn"]
            },
        }
    ]


def test_the_clean_up_may_only_describe_and_stop_the_jobs_release_the_lock_and_notify(
    dev: Synthesized,
) -> None:
    arns = _Arns(dev)
    topic_key = f"<{_single(dev, 'AWS::KMS::Key', 'NotificationsTopicKey')}.Arn>"
    assert _own_grants(dev, ENDED_MODULE) == {
        "sagemaker:DescribeProcessingJob": {arns.processing},
        "sagemaker:StopProcessingJob": {arns.processing},
        "sagemaker:DescribeTrainingJob": {arns.training},
        "sagemaker:StopTrainingJob": {arns.training},
        "dynamodb:DeleteItem": {arns.lock},
        "sns:Publish": {f"<{_single(dev, 'AWS::SNS::Topic', 'NotificationsTopic')}>"},
        "kms:Decrypt": {topic_key},
        "kms:GenerateDataKey": {topic_key},
        **FAMILY_SETTINGS_READ,
    }


def test_the_clean_up_gets_settings_it_accepts_naming_the_machine_and_the_topic(dev: Synthesized) -> None:
    environment = dev.resources[_ended_function_id(dev)]["Properties"]["Environment"]["Variables"]
    machine = _single(dev, "AWS::StepFunctions::StateMachine", "Retraining")
    topic = _single(dev, "AWS::SNS::Topic", "NotificationsTopic")
    assert environment["STATE_MACHINE_ARN"] == {"Ref": machine}
    assert environment["TOPIC_ARN"] == {"Ref": topic}
    resolved = {name: value for name, value in environment.items() if isinstance(value, str)}
    resolved |= {
        "LOCK_TABLE": "mlrollout-dev-locks",
        "DATA_BUCKET": "mlrollout-dev-data",
        "ARTIFACTS_BUCKET": "mlrollout-dev-artifacts",
        "SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{DUMMY_ACCOUNT}:role/jobs",
        "JOBS": _resolve(environment["JOBS"]),
        "STATE_MACHINE_ARN": f"arn:aws:states:us-east-1:{DUMMY_ACCOUNT}:stateMachine:{machine}",
        "TOPIC_ARN": f"arn:aws:sns:us-east-1:{DUMMY_ACCOUNT}:{dev.config.prefix}-notifications",
    }
    settings = load_ended_settings(resolved)
    settings = settings.model_copy(update={"retraining": _with_template_families(dev, settings.retraining)})
    assert settings.retraining.jobs.name_prefix == dev.config.prefix
    assert set(settings.retraining.families) == set(dev.config.model_families)


def test_a_failed_or_timed_out_retraining_alarms_on_the_topic(dev: Synthesized) -> None:
    """Every Fail state of the retraining is a failure (its ordinary ends are Succeed states), so
    ExecutionsFailed is the genuinely failed runs; a run that times out is told by its own alarm."""
    prefix = dev.config.prefix
    machine = _single(dev, "AWS::StepFunctions::StateMachine", "Retraining")
    topic = _single(dev, "AWS::SNS::Topic", "NotificationsTopic")
    alarms = {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in dev.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/States"
    }
    for name, metric in (
        (f"{prefix}-retraining-failed", "ExecutionsFailed"),
        (f"{prefix}-retraining-timed-out", "ExecutionsTimedOut"),
    ):
        alarm = alarms[name]
        assert alarm["MetricName"] == metric, name
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}], name
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching", name
