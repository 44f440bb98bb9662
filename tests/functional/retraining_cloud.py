"""The retraining workflow on an emulated AWS: the synthesized state machine on moto's executor, its
Lambda tasks the real handlers from the synthesized asset (`localcloud`), SageMaker's jobs real local
processes of the training image's programs (`localcloud.sagemaker.jobs`), everything else on moto.

What is emulated, and how:

* Lambda: `localcloud.awslambda.invocations` routes moto's invocations to a `LambdaRunner`; the workers reach
  moto through a `ThreadedMotoServer` on loopback, which shares its state with the in-process mock.
* SageMaker jobs: `localcloud.sagemaker.jobs.run_jobs_locally` (preprocess, train and evaluate run as
  processes with SageMaker's file layout; Describe* shows them in progress until they end).
* Time: the functions run on the real clock; the definition's Wait states (the poll between two checks
  of a job) are shortened `POLL_RATE` times, so a minute's poll takes a second.
* Data drops and drift alarms: S3's EventBridge notifications from moto and alarm state changes put on
  the bus, delivered by the stack's "new data" and "drift" rules (their patterns and input transformers
  as synthesized) through `localcloud.events.delivery`.
* Resources the stack would deploy (lock table, buckets, topic, package group): created here with the
  names the template gives them; the buckets with lower-case names, as S3 requires of real ones.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

from lambdas.retraining.settings import FamilySettings, RetrainingSettings, load_retraining_settings
from lambdas.shared.endpoint_store import FAMILY_SETTINGS_PATH_VARIABLE
from localcloud.awslambda.clock import AcceleratedClock, shortened_waits
from localcloud.awslambda.invocations import route_lambda_invocations
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner
from localcloud.cloudformation.functions import functions_from_template
from localcloud.cloudformation.template import (
    SSM_PARAMETER_TYPE_PREFIX,
    Resolver,
    StackTemplate,
    TemplateError,
    local_resolver,
    parameter_values,
    state_machine_definition,
)
from localcloud.events.delivery import EventDeliveries, deliver_events
from localcloud.iam.enforcement import RoleCredentials
from localcloud.moto_costs import moto_costs_kept
from localcloud.sagemaker.job_processes import LocalJobs
from localcloud.sagemaker.jobs import run_jobs_locally
from localcloud.server import moto_server
from tests.functional.iam_support import create_functions_with_roles, create_roles, iam_enforced
from tests.functional.rollout_support import wait_until

RETRAINING_HANDLER_PREFIX = "lambdas.handlers.retraining_"
STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
BUCKET_TYPE = "AWS::S3::Bucket"
# A minute's poll of a running job takes a second.
POLL_RATE = 60.0
# Three jobs (preprocess, training and evaluation as processes) on a busy 2-core machine.
EXECUTION_DEADLINE_SECONDS = 300.0
POLL_SECONDS = 0.2
STATES_ROLE_ARN = "arn:aws:iam::123456789012:role/local-states"
FAILED_TASK_DETAILS = ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails")


@dataclass(frozen=True)
class RetrainingTemplate:
    """The synthesized stack, read once per test module: the retraining functions, machine and rules."""

    template: StackTemplate
    resolver: Resolver
    functions: tuple[FunctionSpec, ...]
    machine_id: str

    @property
    def settings(self) -> RetrainingSettings:
        """The functions' settings, with the families' as the stack's parameters hold them."""
        loaded = load_retraining_settings(self.functions[0].environment)
        path = self.functions[0].environment[FAMILY_SETTINGS_PATH_VARIABLE]
        families = {
            name.removeprefix(path): FamilySettings.model_validate_json(value)
            for name, value in self.parameters.items()
            if name.startswith(path)
        }
        return loaded.model_copy(update={"families": families})

    @property
    def parameters(self) -> dict[str, str]:
        """Each family's settings parameter, as the stacks write them."""
        return parameter_values(
            self.template, self.resolver, self.functions[0].environment[FAMILY_SETTINGS_PATH_VARIABLE]
        )

    @property
    def family(self) -> str:
        [family] = self.settings.families
        return family

    def rules(self, prefix: str) -> list[str]:
        return [key for key in self.template.resources_of_type("AWS::Events::Rule") if key.startswith(prefix)]


def retraining_template(template: StackTemplate) -> RetrainingTemplate:
    resolver = local_resolver(template)
    # S3 names are lower case; the local stand-in names keep the stack's and logical ids' capitals.
    buckets = {
        logical_id: str(resolver.physical_ids[logical_id]).lower()
        for logical_id in template.resources_of_type(BUCKET_TYPE)
    }
    resolver = dataclasses.replace(resolver, physical_ids={**resolver.physical_ids, **buckets})
    resolver = dataclasses.replace(resolver, parameters={**resolver.parameters, **_platform_values(resolver)})
    functions = tuple(
        spec
        for spec in functions_from_template(template, resolver)
        if spec.handler.startswith(RETRAINING_HANDLER_PREFIX)
    )
    [machine_id] = [
        key for key in template.resources_of_type(STATE_MACHINE_TYPE) if key.startswith("Retraining")
    ]
    return RetrainingTemplate(
        template=template, resolver=resolver, functions=functions, machine_id=machine_id
    )


def _platform_values(resolver: Resolver) -> dict[str, str]:
    """The family stacks' SSM-typed parameters (the retraining machine the triggers start, say), valued as
    the platform stack, merged into the same template, writes them."""
    template = resolver.template
    values: dict[str, str] = {}
    for name, declaration in template.parameters.items():
        ssm_name = str(declaration.get("Default", ""))
        if not str(declaration.get("Type", "")).startswith(SSM_PARAMETER_TYPE_PREFIX):
            continue
        try:
            written = parameter_values(template, resolver, ssm_name)
        except TemplateError:  # an ARN only a deployment knows; the retraining needs none of these
            continue
        if ssm_name in written:
            values[name] = written[ssm_name]
    return values


class EmulatedAws:
    """moto's server on loopback and the runner of the retraining functions, for one test module."""

    def __init__(self, retraining: RetrainingTemplate) -> None:
        self.retraining = retraining
        self.clock = AcceleratedClock(rate=POLL_RATE)
        self._stack = ExitStack()
        self._server = moto_server("127.0.0.1")
        self._server.start()
        self._stack.callback(self._server.stop)
        host, port = self._server.get_host_and_port()
        self.runner = self._stack.enter_context(
            LambdaRunner(
                list(retraining.functions),
                aws_endpoint_url=f"http://{host}:{port}",
                credentials=RoleCredentials(),
            )
        )

    def close(self) -> None:
        self._stack.close()

    def definition(self) -> str:
        definition = state_machine_definition(self.retraining.resolver, self.retraining.machine_id)
        return shortened_waits(definition, self.clock, {})


@dataclass
class Deployment:
    """One deployment of the workflow on a fresh moto: what a test drives and inspects."""

    aws: EmulatedAws
    machine_arn: str
    jobs: LocalJobs
    queue_url: str
    events: EventDeliveries

    @property
    def settings(self) -> RetrainingSettings:
        return self.aws.retraining.settings

    @property
    def family(self) -> str:
        return self.aws.retraining.family

    @property
    def sagemaker(self) -> Any:  # the sagemaker stubs are not installed
        return boto3.client("sagemaker")

    def drop(self, key: str, text: str) -> list[str]:
        """Put a data file under the family's prefix; the executions its "Object Created" event started."""
        before = {e["executionArn"] for e in self.executions()}
        boto3.client("s3").put_object(
            Bucket=self.settings.data_bucket, Key=f"{self.family}/{key}", Body=text.encode()
        )
        self.events.wait()
        return [e["executionArn"] for e in self.executions() if e["executionArn"] not in before]

    def alarm(self, alarm_arn: str, alarm_name: str, state: str) -> list[str]:
        """A CloudWatch alarm's state change on the default bus; the executions it started."""
        before = {e["executionArn"] for e in self.executions()}
        detail = {"alarmName": alarm_name, "state": {"value": state}, "previousState": {"value": "OK"}}
        entry = {
            "Source": "aws.cloudwatch",
            "DetailType": "CloudWatch Alarm State Change",
            "Detail": json.dumps(detail),
            "Resources": [alarm_arn],
        }
        [result] = boto3.client("events").put_events(Entries=[entry])["Entries"]
        assert "EventId" in result, result
        self.events.wait()
        return [e["executionArn"] for e in self.executions() if e["executionArn"] not in before]

    def execution_input(self, execution_arn: str) -> dict[str, Any]:
        described = boto3.client("stepfunctions").describe_execution(executionArn=execution_arn)
        given: dict[str, Any] = json.loads(described["input"])
        return given

    def start(self, execution_input: Mapping[str, Any]) -> str:
        started = boto3.client("stepfunctions").start_execution(
            stateMachineArn=self.machine_arn, name=str(uuid.uuid4()), input=json.dumps(execution_input)
        )
        return str(started["executionArn"])

    def finished(self, execution_arn: str) -> dict[str, Any]:
        sfn = boto3.client("stepfunctions")

        def ended() -> dict[str, Any] | None:
            described = dict(sfn.describe_execution(executionArn=execution_arn))
            return described if described["status"] != "RUNNING" else None

        pauses = (POLL_SECONDS, POLL_SECONDS)
        return wait_until(ended, f"{execution_arn} ending", EXECUTION_DEADLINE_SECONDS, pauses)

    def executions(self) -> list[dict[str, Any]]:
        listed = boto3.client("stepfunctions").list_executions(stateMachineArn=self.machine_arn)
        return list(listed["executions"])

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = boto3.client("stepfunctions")
        return list(sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])

    def states_entered(self, execution_arn: str) -> list[str]:
        events = self.history(execution_arn)
        return [str(e["stateEnteredEventDetails"]["name"]) for e in events if "stateEnteredEventDetails" in e]

    def task_errors(self, execution_arn: str) -> list[tuple[str, str]]:
        failed = [
            event[key] for event in self.history(execution_arn) for key in FAILED_TASK_DETAILS if key in event
        ]
        return [(str(f["error"]), str(json.loads(f["cause"])["errorMessage"])) for f in failed]

    def output(self, execution_arn: str) -> dict[str, Any]:
        described = boto3.client("stepfunctions").describe_execution(executionArn=execution_arn)
        result: dict[str, Any] = json.loads(described["output"])
        return result

    def input_of_state(self, execution_arn: str, state: str) -> dict[str, Any]:
        """The input a state was entered with (a Catch's error beside the state)."""
        for event in self.history(execution_arn):
            entered = event.get("stateEnteredEventDetails")
            if entered and entered["name"] == state:
                given: dict[str, Any] = json.loads(entered["input"])
                return given
        raise AssertionError(f"{execution_arn} never entered {state!r}")

    def topic_arn(self) -> str:
        [topic_id] = [
            key
            for key in self.aws.retraining.template.resources_of_type("AWS::SNS::Topic")
            if key.startswith("Notifications")
        ]
        return str(self.aws.retraining.resolver.resolve({"Ref": topic_id}))

    def lock_holder(self) -> str | None:
        key = {"endpoint": {"S": f"retraining#{self.family}"}}
        item = boto3.client("dynamodb").get_item(TableName=self.settings.lock_table, Key=key)
        return item["Item"]["holder"]["S"] if "Item" in item else None

    def packages(self) -> list[dict[str, Any]]:
        group = self.settings.families[self.family].model_package_group
        listed = self.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        described = [
            self.sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in listed
        ]
        return sorted(described, key=lambda package: int(package["ModelPackageVersion"]))

    def notifications(self) -> list[dict[str, Any]]:
        received = boto3.client("sqs").receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in received.get("Messages", [])]

    def read_json(self, uri: str) -> Any:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def deploy(aws: EmulatedAws) -> Iterator[Deployment]:
    """A fresh moto with the workflow's table, buckets, topic, group, functions, machine and rules."""
    retraining = aws.retraining
    settings = retraining.settings
    with ExitStack() as stack:
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        stack.enter_context(moto_costs_kept())
        jobs = stack.enter_context(run_jobs_locally())
        stack.enter_context(route_lambda_invocations(aws.runner))
        create_roles(retraining.template, retraining.resolver)
        create_functions_with_roles(retraining.template, retraining.resolver, retraining.functions)
        for name, value in retraining.parameters.items():  # the families' settings
            boto3.client("ssm").put_parameter(Name=name, Value=value, Type="String")
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=settings.lock_table,
            KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3")
        for bucket in (settings.data_bucket, settings.artifacts_bucket):
            s3.create_bucket(Bucket=bucket)
        # As the template's NotificationConfiguration sets it: S3 sends its events to EventBridge.
        s3.put_bucket_notification_configuration(
            Bucket=settings.data_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        for family in settings.families.values():
            boto3.client("sagemaker").create_model_package_group(
                ModelPackageGroupName=family.model_package_group
            )
        queue_url = _subscribe_to_topic(retraining)
        machine = boto3.client("stepfunctions").create_state_machine(
            name=retraining.resolver.resolve({"Ref": retraining.machine_id}).rsplit(":", 1)[1],
            definition=aws.definition(),
            roleArn=STATES_ROLE_ARN,
        )
        deliveries = stack.enter_context(deliver_events())
        for prefix in ("RetrainingNewData", "RetrainingDrift"):
            _create_rules(retraining, prefix)
        # From here on each function runs as its template role, and moto checks every call.
        stack.enter_context(iam_enforced())
        yield Deployment(aws, machine["stateMachineArn"], jobs, queue_url, deliveries)


def _subscribe_to_topic(retraining: RetrainingTemplate) -> str:
    [topic_id] = [
        key
        for key in retraining.template.resources_of_type("AWS::SNS::Topic")
        if key.startswith("Notifications")
    ]
    topic_arn = str(retraining.resolver.resolve({"Ref": topic_id}))
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    sns.create_topic(Name=topic_arn.rsplit(":", 1)[1])
    queue_url = str(sqs.create_queue(QueueName="notifications")["QueueUrl"])
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["QueueArn"])
    return queue_url


def _create_rules(retraining: RetrainingTemplate, prefix: str) -> None:
    """The stack's rules of that logical-id prefix and their targets, as the template defines them."""
    events = boto3.client("events")
    for logical_id in retraining.rules(prefix):
        properties = retraining.resolver.resolve(retraining.template.resources[logical_id]["Properties"])
        name = retraining.resolver.resolve({"Ref": logical_id})
        events.put_rule(Name=name, EventPattern=json.dumps(properties["EventPattern"]), State="ENABLED")
        keys = ("Id", "Arn", "Input", "InputPath", "InputTransformer")
        targets = [{key: target[key] for key in keys if key in target} for target in properties["Targets"]]
        events.put_targets(Rule=name, Targets=targets)
