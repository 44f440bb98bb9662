"""The rollout workflow on an emulated AWS: the synthesized state machine on moto's executor, its Lambda
tasks running the real handlers from the synthesized assets (`localcloud`), their AWS calls on moto.

What is emulated, and how:

* Lambda: `localcloud.awslambda.invocations` routes moto's invocations to the `LambdaRunner`; the workers
  reach moto through a `ThreadedMotoServer` on loopback, which shares its state with the in-process mock.
* Time: a rollout bakes for minutes and judges CloudWatch windows since its step started. The workers'
  clock runs `CLOCK_RATE` times faster (`localcloud.awslambda.clock`), and the definition's Wait states are
  shortened by the same rate, so a 10-minute bake passes in 2 s and both sides agree on what a minute is.
  The test writes the variants' metrics on that clock (`AcceleratedClock.now`).
* SageMaker's UpdateEndpoint, which moto lacks: `localcloud.sagemaker.control`; InvokeEndpoint (the
  gates ask the candidate) on real inference servers: `localcloud.sagemaker.runtime`.
* Resources the stack would deploy (tables, topic, bucket, endpoint, package group): created here with
  the names the template gives them; the ones outside the stack (the endpoint's bootstrap model, gate
  files, captured requests, approved packages) as the platform and the training pipeline create them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.ledger import Ledger, LedgerEntry
from lambdas.rollout.settings import RolloutEndpoint, RolloutSettings, load_rollout_settings
from lambdas.shared.endpoint_store import ENDPOINT_SETTINGS_PATH_VARIABLE
from localcloud.awslambda.clock import AcceleratedClock, SkippedTime, accelerated_workers, shortened_waits
from localcloud.awslambda.invocations import route_lambda_invocations
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner
from localcloud.cloudformation.functions import functions_from_template
from localcloud.cloudformation.template import (
    Resolver,
    StackTemplate,
    app_template,
    load_stacks,
    local_resolver,
    parameter_values,
    state_machine_definition,
)
from localcloud.events.delivery import EventDeliveries, deliver_events
from localcloud.iam.enforcement import RoleCredentials
from localcloud.moto_costs import moto_costs_kept
from localcloud.sagemaker.control import EndpointUpdates, emulate_update_endpoint
from localcloud.sagemaker.runtime import serve_endpoints
from localcloud.server import moto_server
from localcloud.stepfunctions.waits import skipped_waits
from tests.functional.golden_models import GOOD, ModelName, put_model
from tests.functional.iam_support import create_functions_with_roles, create_roles, iam_enforced
from tests.functional.rollout_support import (
    BUCKET,
    BUSINESS_NAME,
    BUSINESS_NAMESPACE,
    CAPTURE_PREFIX,
    ENDPOINT_NAME,
    IMAGE,
    MetricWriter,
    Minute,
    capture_file,
    create_endpoint,
    wait_until,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STACK = "MlRollout-dev"
STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
ROLLOUT_HANDLER_PREFIX = "lambdas.handlers.rollout_"
# 300 emulated seconds per real second: a 10-minute bake takes 2 s; the lock's 2-hour lease 24 s, far
# longer than the few seconds between two steps renewing it.
CLOCK_RATE = 300.0
# A rollout's gates start a real inference server for its candidate: seconds more on a busy machine.
EXECUTION_DEADLINE_SECONDS = 180.0
# Polled often at first (a refused rollout ends at once), then less: a rollout runs for seconds, and each
# poll at 0.1 s cost its test's main process a tenth of its CPU.
POLL_SECONDS = (0.05, 0.5)
# How often (real seconds) the metrics' writer writes the next minutes: an emulated minute is 0.2 s.
METRIC_WRITE_SECONDS = 0.02
FAILED_TASK_DETAILS = ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails")
STATES_ROLE_ARN = "arn:aws:iam::123456789012:role/local-states"
# The candidate's gate files: golden cases (tests/functional/golden_models.py), and a baseline the
# captured requests match.
CAPTURED_RECORDS = 600
BASELINE = {"features": {"tenure": [float(v % 60) for v in range(CAPTURED_RECORDS)]}}


@dataclass(frozen=True)
class RolloutTemplate:
    """The synthesized stack, read once per test module: functions, definition and settings."""

    template: StackTemplate
    resolver: Resolver
    functions: tuple[FunctionSpec, ...]
    machine_id: str

    @cached_property
    def settings(self) -> RolloutSettings:
        """The functions' settings, with the endpoints' as the stack's parameters hold them (read once: a
        fault-matrix cell asks for them at every minute it writes)."""
        loaded = load_rollout_settings(self.functions[0].environment)
        path = self.functions[0].environment[ENDPOINT_SETTINGS_PATH_VARIABLE]
        endpoints = {
            name.removeprefix(path): RolloutEndpoint.model_validate_json(value)
            for name, value in self.parameters.items()
            if name.startswith(path)
        }
        return loaded.model_copy(update={"endpoints": endpoints})

    @cached_property
    def parameters(self) -> dict[str, str]:
        """Each endpoint's settings parameter, as the stacks write them."""
        return parameter_values(
            self.template, self.resolver, self.functions[0].environment[ENDPOINT_SETTINGS_PATH_VARIABLE]
        )

    @property
    def endpoint(self) -> str:
        [name] = self.settings.endpoints
        return name

    @property
    def bake_seconds(self) -> int:
        return self.settings.endpoints[self.endpoint].rollout.bake_minutes * 60

    def table(self, variable: str) -> str:
        return self.functions[0].environment[variable]


def rollout_template(template: StackTemplate) -> RolloutTemplate:
    resolver = local_resolver(template)
    functions = tuple(
        spec
        for spec in functions_from_template(template, resolver)
        if spec.handler.startswith(ROLLOUT_HANDLER_PREFIX)
    )
    [machine_id] = [
        key for key in template.resources_of_type(STATE_MACHINE_TYPE) if key.startswith("Rollout")
    ]
    return RolloutTemplate(template=template, resolver=resolver, functions=functions, machine_id=machine_id)


def fast_definition(definition: str, clock: AcceleratedClock, bake_seconds: int) -> str:
    """The definition with its Wait states lasting what they last on the workers' accelerated clock; the
    Bake, which reads `$.bake_seconds`, waits the configured bake."""
    return shortened_waits(definition, clock, {"$.bake_seconds": bake_seconds})


class EmulatedAws:
    """moto's server on loopback and the runner of the rollout functions, for one test module."""

    def __init__(self, rollout: RolloutTemplate, scratch: Path) -> None:
        self.rollout = rollout
        self._stack = ExitStack()
        skipped = SkippedTime(scratch / "skipped-seconds")
        self._stack.callback(skipped.close)
        self.clock = AcceleratedClock(rate=CLOCK_RATE, skipped=skipped)
        self.functions = [self.clock.on(spec) for spec in rollout.functions]
        self._server = moto_server("127.0.0.1")
        self._server.start()
        self._stack.callback(self._server.stop)
        host, port = self._server.get_host_and_port()
        self._stack.enter_context(accelerated_workers())
        self.runner = self._stack.enter_context(
            LambdaRunner(
                self.functions, aws_endpoint_url=f"http://{host}:{port}", credentials=RoleCredentials()
            )
        )

    def close(self) -> None:
        self._stack.close()

    def definition(self) -> str:
        definition = state_machine_definition(self.rollout.resolver, self.rollout.machine_id)
        return fast_definition(definition, self.clock, self.rollout.bake_seconds)


@contextmanager
def emulated_app(cdk_out: Path, scratch: Path) -> Iterator[EmulatedAws]:
    """The app's rollout workflow (STACK's) on moto's server, for one test module; closed on exit."""
    emulated = EmulatedAws(rollout_template(app_template(load_stacks(cdk_out), STACK)), scratch)
    try:
        yield emulated
    finally:
        emulated.close()


@dataclass
class Deployment:
    """One deployment of the stack on a fresh moto: what a test drives and inspects."""

    aws: EmulatedAws
    machine_arn: str
    package_group: str
    updates: EndpointUpdates
    queue_url: str
    events: EventDeliveries
    _stop_serving: threading.Event = field(default_factory=threading.Event)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """The test's client of `service`, made once: the tests poll every 50 ms, and making a client at
        each poll was a fifth of a rollout test's CPU."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service)  # type: ignore[call-overload]  # any service
        return self._clients[service]

    def request(self, package: str, **overrides: Any) -> dict[str, Any]:
        """A rollout started by hand with the strategy's overrides, as `mlrollout start` sends it."""
        return {"endpoint": self.aws.rollout.endpoint, "model_package_arn": package} | overrides

    @property
    def endpoint_name(self) -> str:
        return self.aws.rollout.settings.endpoints[self.aws.rollout.endpoint].endpoint_name

    @property
    def sagemaker(self) -> Any:  # the sagemaker stubs are not installed
        return self.client("sagemaker")

    @property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client

    def register_package(self, metrics: Mapping[str, float] | None = None, model: ModelName = GOOD) -> str:
        """An approved package of the family with its gate files, as the training pipeline leaves it; its
        artifact is `model`, its golden cases `GOOD`'s answers."""
        group = self.package_group
        version = len(
            self.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        )
        folder = f"models/{group}/v{version + 1}"
        write_gate_files(folder, metrics or {"accuracy": 0.91, "auc": 0.95}, model)
        created = self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{folder}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="Approved",
        )
        return str(created["ModelPackageArn"])

    def approval_event(self, package_arn: str) -> dict[str, Any]:
        """What EventBridge delivers when the package is approved (the approval rule's input)."""
        return {
            "version": "0",
            "detail-type": "SageMaker Model Package State Change",
            "source": "aws.sagemaker",
            "region": "us-east-1",
            "resources": [package_arn],
            "detail": {
                "ModelPackageArn": package_arn,
                "ModelPackageGroupName": self.package_group,
                "ModelApprovalStatus": "Approved",
            },
        }

    def serve(self, champion: Minute, challenger: Minute) -> None:
        """Both variants serve these minutes, on the workers' clock, for as long as a test runs: the
        challenger its minute, the champion its minute's rates at the split the endpoint's weights set
        (as the judge's sample-ratio check expects), from a minute before now on.

        Each minute is written when the one before it begins, at the weights of that moment: the minute
        a step's weights change in, and the next, are the ones the check leaves out."""
        writer = MetricWriter(boto3.client("cloudwatch"))
        sagemaker = boto3.client("sagemaker")
        written = int(self.aws.clock.now()) // 60 * 60 - 120
        share = 0.0
        writing = threading.Lock()

        def write_up_to_the_next_minute() -> None:
            nonlocal written, share
            with writing:
                while written < int(self.aws.clock.now()) // 60 * 60 + 60:
                    written += 60
                    # moto cannot describe an endpoint amid an emulated update: the share as before.
                    with suppress(ClientError):
                        share = self._challenger_percent(sagemaker)
                    served = champion.beside(challenger, share) if 0 < share < 100 else champion
                    writer.minute_of_each(written, {"champion": served, "challenger": challenger})

        def keep_writing() -> None:
            while not self._stop_serving.wait(METRIC_WRITE_SECONDS):
                write_up_to_the_next_minute()

        write_up_to_the_next_minute()
        # A skipped wait: the minutes it skipped are written before the workflow's next state reads them.
        self._skip_listeners.append(write_up_to_the_next_minute)
        threading.Thread(target=keep_writing, name="metrics-writer", daemon=True).start()

    @property
    def _skip_listeners(self) -> list[Callable[[], None]]:
        assert self.aws.clock.skipped is not None
        return self.aws.clock.skipped.listeners

    def stop_serving(self) -> None:
        self._stop_serving.set()
        self._skip_listeners.clear()

    def _challenger_percent(self, sagemaker: Any) -> float:
        described = sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        # moto leaves a weight of 0 out of the description.
        weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}
        total = weights.get("champion", 0.0) + weights.get("challenger", 0.0)
        return 100 * weights.get("challenger", 0.0) / total if total else 0.0

    def start(self, execution_input: Mapping[str, Any]) -> str:
        """A new execution, named as EventBridge names the ones it starts: uniquely (moto names every
        unnamed execution "None", which would make all of them one rollout)."""
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=self.machine_arn, name=str(uuid.uuid4()), input=json.dumps(execution_input)
        )
        return str(started["executionArn"])

    def finished(self, execution_arn: str) -> dict[str, Any]:
        """The execution once it has ended; fails the test past the deadline."""
        sfn = self.client("stepfunctions")

        def ended() -> dict[str, Any] | None:
            described = dict(sfn.describe_execution(executionArn=execution_arn))
            return described if described["status"] != "RUNNING" else None

        return wait_until(ended, f"{execution_arn} ending", EXECUTION_DEADLINE_SECONDS, POLL_SECONDS)

    def run(self, execution_input: Mapping[str, Any]) -> dict[str, Any]:
        return self.finished(self.start(execution_input))

    def executions(self) -> list[dict[str, Any]]:
        listed = self.client("stepfunctions").list_executions(stateMachineArn=self.machine_arn)
        return list(listed["executions"])

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        return list(sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])

    def states_entered(self, execution_arn: str) -> list[str]:
        events = self.history(execution_arn)
        return [str(e["stateEnteredEventDetails"]["name"]) for e in events if "stateEnteredEventDetails" in e]

    def task_errors(self, execution_arn: str) -> list[tuple[str, str]]:
        """(error, errorMessage) of every failed task, in order: a task with a payload is a
        `lambda:invoke` integration (TaskFailed), one without calls the function's ARN directly
        (LambdaFunctionFailed)."""
        failed = [
            event[key] for event in self.history(execution_arn) for key in FAILED_TASK_DETAILS if key in event
        ]
        return [(str(f["error"]), str(json.loads(f["cause"])["errorMessage"])) for f in failed]

    def progress(self) -> str:
        """Where each execution is: its last states, its failed tasks and its ledger (for a failing test)."""
        lines = []
        for execution in self.executions():
            arn = execution["executionArn"]
            lines.append(f"{arn} {execution['status']}: ...{self.states_entered(arn)[-8:]}")
            lines += [f"  failed task: {error}" for error in self.task_errors(arn)]
            lines += [f"  {e.kind.value}: {dict(e.payload)}"[:400] for e in self.ledger(arn)]
        return "\n".join(lines)

    def ledger(self, rollout_id: str) -> list[LedgerEntry]:
        table = self.aws.rollout.table("LEDGER_TABLE")
        return Ledger(DynamoDBLedgerStore(client=self.dynamodb, table_name=table)).entries(rollout_id)

    def lock_holder(self) -> str | None:
        key = {"endpoint": {"S": self.endpoint_name}}
        item = self.dynamodb.get_item(TableName=self.aws.rollout.table("LOCK_TABLE"), Key=key)
        return item["Item"]["holder"]["S"] if "Item" in item else None

    def package(self, package_arn: str) -> dict[str, Any]:
        """The package as DescribeModelPackage shows it (without the response's metadata)."""
        described = self.sagemaker.describe_model_package(ModelPackageName=package_arn)
        return {key: value for key, value in described.items() if key != "ResponseMetadata"}

    def running_models(self) -> dict[str, str]:
        """Variant -> model of the config the endpoint runs."""
        config = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)["EndpointConfigName"]
        variants = self.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        return {v["VariantName"]: v["ModelName"] for v in variants}

    def weights(self) -> dict[str, float]:
        described = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        # moto leaves a weight of 0 out of the description.
        return {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}

    def put_event(
        self, source: str, detail_type: str, detail: Mapping[str, Any], resources: list[str]
    ) -> None:
        """An event on the default bus, as an AWS service puts it; the matching rules deliver it."""
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
            "Resources": resources,
        }
        [result] = self.client("events").put_events(Entries=[entry])["Entries"]
        assert "EventId" in result, result

    def notifications(self) -> list[dict[str, Any]]:
        received = self.client("sqs").receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in received.get("Messages", [])]


def write_gate_files(folder: str, metrics: Mapping[str, float], model: ModelName = GOOD) -> None:
    """A package's artifact (`model`) and the gate files beside it: golden cases and outputs, metrics,
    baseline."""
    s3 = boto3.client("s3")
    put_model(s3, BUCKET, folder, model)
    files = {
        "metrics.json": dict(metrics),
        "baseline.json": BASELINE,
    }
    for name, document in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/gates/{name}", Body=json.dumps(document).encode())


def deploy(aws: EmulatedAws, test: pytest.Item) -> Iterator[Deployment]:
    """A fresh moto with the stack's resources and the workflow's functions and state machine, for `test`.

    The workflow's Wait states move the clock ahead instead of waiting (`localcloud.stepfunctions.waits`),
    unless the test is marked `real_waits`: one that acts while a rollout waits (pauses it, aborts it,
    starts another) needs the rollout to still be waiting when it acts."""
    with ExitStack() as stack:
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        stack.enter_context(moto_costs_kept())
        if test.get_closest_marker("real_waits") is None:
            stack.enter_context(skipped_waits(aws.clock))
        updates = stack.enter_context(emulate_update_endpoint(clock=aws.clock.now))
        # The gates send the golden inputs to the candidate's variant: real inference servers answer.
        stack.enter_context(serve_endpoints(clock=aws.clock.now))
        stack.enter_context(route_lambda_invocations(aws.runner))
        rollout = aws.rollout
        create_roles(rollout.template, rollout.resolver)
        create_functions_with_roles(rollout.template, rollout.resolver, aws.functions)
        create_tables(aws.rollout)
        create_parameters(aws.rollout)
        queue_url = subscribe_to_topic(aws.rollout.settings.topic_arn)
        group = create_endpoint_and_registry(aws.rollout)
        machine = boto3.client("stepfunctions").create_state_machine(
            name=STACK.lower() + "-rollout", definition=aws.definition(), roleArn=STATES_ROLE_ARN
        )
        assert machine["stateMachineArn"] == aws.rollout.resolver.resolve({"Ref": aws.rollout.machine_id})
        deliveries = stack.enter_context(deliver_events())
        create_rules(aws.rollout)
        # From here on each function runs as its template role, and moto checks every call.
        stack.enter_context(iam_enforced())
        deployment = Deployment(aws, machine["stateMachineArn"], group, updates, queue_url, deliveries)
        # Before moto goes: the metrics' writer stops first.
        stack.callback(deployment.stop_serving)
        yield deployment


def create_rules(rollout: RolloutTemplate) -> None:
    """The rollout workflow's EventBridge rules and their targets, as the template defines them."""
    events = boto3.client("events")
    for logical_id in rollout.template.resources_of_type("AWS::Events::Rule"):
        if not logical_id.startswith("Rollout"):
            continue
        properties = rollout.resolver.resolve(rollout.template.resources[logical_id]["Properties"])
        name = rollout.resolver.resolve({"Ref": logical_id})
        events.put_rule(Name=name, EventPattern=json.dumps(properties["EventPattern"]), State="ENABLED")
        targets = [
            {key: target[key] for key in ("Id", "Arn", "Input", "InputPath") if key in target}
            for target in properties["Targets"]
        ]
        events.put_targets(Rule=name, Targets=targets)


def create_parameters(rollout: RolloutTemplate) -> None:
    """The stack's SSM parameters (each endpoint's settings), as its template writes them."""
    ssm = boto3.client("ssm")
    for name, value in rollout.parameters.items():
        ssm.put_parameter(Name=name, Value=value, Type="String")


def create_tables(rollout: RolloutTemplate) -> None:
    """The stack's DynamoDB tables, with their template's keys, names and TTL."""
    dynamodb = boto3.client("dynamodb")
    for logical_id in rollout.template.resources_of_type("AWS::DynamoDB::Table"):
        properties = rollout.resolver.resolve(rollout.template.resources[logical_id]["Properties"])
        name = rollout.resolver.resolve({"Ref": logical_id})
        dynamodb.create_table(
            TableName=name,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode=properties["BillingMode"],
        )
        if "TimeToLiveSpecification" in properties:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
            )


def subscribe_to_topic(topic_arn: str) -> str:
    """The stack's topic, with a queue subscribed so that a test reads what was published."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    sns.create_topic(Name=topic_arn.rsplit(":", 1)[1])
    queue_url = str(sqs.create_queue(QueueName="notifications")["QueueUrl"])
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["QueueArn"])
    return queue_url


def create_endpoint_and_registry(rollout: RolloutTemplate) -> str:
    """The endpoint in its bootstrap shape capturing requests, the family's package group, the bucket."""
    endpoint = rollout.settings.endpoints[rollout.endpoint]
    # The handler tests' endpoint and metric writer are reused: they must be the ones the stack names.
    business = endpoint.business_metric
    assert (endpoint.endpoint_name, business.namespace, business.name) == (
        ENDPOINT_NAME,
        BUSINESS_NAMESPACE,
        BUSINESS_NAME,
    ), "the dev config's endpoint no longer matches tests/functional/rollout_support.py"
    sagemaker = boto3.client("sagemaker")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    create_endpoint(sagemaker)
    sagemaker.create_model_package_group(ModelPackageGroupName=endpoint.model_package_group)
    records = [{"tenure": float(v % 60)} for v in range(CAPTURED_RECORDS)]
    key = f"{CAPTURE_PREFIX}/{endpoint.endpoint_name}/{endpoint.champion}/2026/01/01/00/capture.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=capture_file(records).encode())
    return endpoint.model_package_group
