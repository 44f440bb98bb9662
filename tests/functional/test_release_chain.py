"""The release chain end to end on the local cloud: two environments of one assembly in one moto.

`localstaging` releases into `local` (infra/environments/localstaging.yaml). Both stacks are deployed by
`LocalCloud`; every step is the stacks' own: the staging rollout (its state machine on moto's executor,
the real handlers, the workers' clock 300 times faster, the variants' metrics written on that clock) ends
in its promote, which puts the offer on the bus; the next environment's rule starts its release workflow,
which registers the package with the evidence and approves it (or asks a person, waiting on a task
token); the approval event starts that environment's own rollout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_cdk import App

from infra.application import build_app
from lambdas.release.offer import ReleaseOffer, offer_entry
from localcloud.awslambda.clock import AcceleratedClock, shortened_waits
from localcloud.cloud import LocalCloud
from localcloud.events.delivery import deliver_events
from localcloud.sagemaker.control import emit_registry_events
from localcloud.sagemaker.runtime import serve_endpoints
from tests.functional.golden_models import GOOD, put_model
from tests.functional.rollout_cloud import BASELINE, CAPTURED_RECORDS
from tests.functional.rollout_support import MetricWriter, Minute, capture_file
from tests.infra.conftest import cdk_json_context

STAGING, PROD = "localstaging", "local"
FAMILY = "churn-classifier"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-inference:0.2.0"
CLOCK_RATE = 300.0
# Two rollouts one after the other on a loaded laptop: far more than they take alone (about a minute).
DEADLINE_SECONDS = 240.0
# Per emulated minute and variant: enough for the local judge's minimum samples within one bake.
HEALTHY = Minute(requests=600, latency_us=20_000, trials=600, successes=60)
FAILING = Minute(requests=600, errors_5xx=120, latency_us=20_000, trials=600, successes=60)
# The serving thread keeps the variants' metrics this many emulated minutes ahead of the clock.
METRICS_BEHIND_MINUTES = 30
ENVIRONMENTS = Path(__file__).resolve().parents[2] / "infra" / "environments"
# The manual approval's timeout in the test's definition: long enough to approve in, short to wait out.
APPROVAL_SECONDS = 8
ASK_STATE = "Ask a person to approve"


def synthesize_chain(outdir: Path, config_dir: Path = ENVIRONMENTS) -> Path:
    app = App(outdir=str(outdir), context={**cdk_json_context(), "env": f"{STAGING},{PROD}"})
    build_app(app, config_dir=config_dir)
    app.synth()
    return outdir


@pytest.fixture(scope="module")
def chain_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_chain(tmp_path_factory.mktemp("chain") / "cdk.out")


@pytest.fixture(scope="module")
def manual_chain_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same pair with `approval: manual` between them."""
    config_dir = tmp_path_factory.mktemp("manual-environments")
    for env in (STAGING, PROD):
        document = yaml.safe_load((ENVIRONMENTS / f"{env}.yaml").read_text())
        if env == STAGING:
            document["release"] = {
                "next_environment": PROD,
                "approval": "manual",
                "approval_timeout_hours": 1,
            }
        (config_dir / f"{env}.yaml").write_text(yaml.safe_dump(document))
    return synthesize_chain(tmp_path_factory.mktemp("manual-chain") / "cdk.out", config_dir)


def until(what: str, found: Callable[[], Any], deadline_seconds: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {deadline_seconds} s")


class Chain:
    """The two deployed environments and what a test does in them."""

    def __init__(self, cloud: LocalCloud, clock: AcceleratedClock) -> None:
        self.cloud = cloud
        self.clock = clock
        self.sagemaker: Any = boto3.client("sagemaker")
        self.s3 = boto3.client("s3")
        self.states = boto3.client("stepfunctions")
        self.sqs = boto3.client("sqs")  # `told` is polled
        self.queues = {env: self._subscribe(env) for env in (STAGING, PROD)}
        self._serving: list[threading.Thread] = []
        self._told: dict[str, list[dict[str, Any]]] = {STAGING: [], PROD: []}
        self._closed = threading.Event()

    def stack(self, env: str) -> Any:
        return self.cloud.stacks[f"MlRollout-{env}"]

    def bucket(self, env: str) -> str:
        [name] = [n for key, n in self.stack(env).bucket_names.items() if "RegistryArtifacts" in key]
        return str(name)

    def group(self, env: str) -> str:
        return f"mlrollout-{env}-{FAMILY}"

    def endpoint_name(self, env: str) -> str:
        return f"mlrollout-{env}-churn"

    def _subscribe(self, env: str) -> str:
        sqs = self.sqs
        url = str(sqs.create_queue(QueueName=f"told-{env}")["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=self.stack(env).topic_arn, Protocol="sqs", Endpoint=arn)
        return url

    def told(self, env: str) -> list[dict[str, Any]]:
        """Every message the environment's topic has published so far."""
        sqs = self.sqs
        received = sqs.receive_message(QueueUrl=self.queues[env], MaxNumberOfMessages=10)
        for message in received.get("Messages", []):
            self._told[env].append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=self.queues[env], ReceiptHandle=message["ReceiptHandle"])
        return list(self._told[env])

    def released(self, source: str) -> list[dict[str, Any]]:
        """Prod's packages registered for the staging package `source`."""
        return [
            p
            for p in self.packages(PROD)
            if p.get("CustomerMetadataProperties", {}).get("release.source-package") == source
        ]

    def runs_of(self, env: str, machine: str, package: str) -> list[dict[str, Any]]:
        """The machine's executions whose input names the package."""
        return [
            e
            for e in self.executions(env, machine)
            if package in self.states.describe_execution(executionArn=e["executionArn"])["input"]
        ]

    def ended_release_of(self, source: str) -> dict[str, Any]:
        def ended() -> list[dict[str, Any]]:
            return [e for e in self.runs_of(PROD, "Release", source) if e["status"] != "RUNNING"]

        [run] = until(f"release of {source}", ended)
        return dict(run)

    def serve(self, env: str, challenger: Minute) -> None:
        """From now on the endpoint's variants serve these minutes on the workers' clock (a thread keeps
        the metrics ahead of it, as live traffic would), and its champion's requests are captured."""
        records = [{"tenure": float(v % 60)} for v in range(CAPTURED_RECORDS)]
        name = self.endpoint_name(env)
        config = self.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        capture = self.sagemaker.describe_endpoint_config(EndpointConfigName=config)["DataCaptureConfig"]
        bucket, _, prefix = capture["DestinationS3Uri"].removeprefix("s3://").partition("/")
        key = f"{prefix.strip('/')}/{name}/champion/2026/01/01/00/capture.jsonl".lstrip("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=capture_file(records).encode())
        writer = MetricWriter(boto3.client("cloudwatch"), endpoint_name=name)
        thread = threading.Thread(target=self._keep_serving, args=(writer, challenger), daemon=True)
        thread.start()
        self._serving.append(thread)

    def _keep_serving(self, writer: MetricWriter, challenger: Minute) -> None:
        """The minutes behind the clock at once, then each minute as the one before it begins, the champion
        at the split the endpoint's weights set at that moment (the judge's sample-ratio check leaves out
        the minute the weights change in, and the next)."""
        written = int(self.clock.now()) // 60 * 60 - 60 * METRICS_BEHIND_MINUTES
        while not self._closed.is_set():
            while written < int(self.clock.now()) // 60 * 60 + 60:
                share = self._challenger_percent(writer.endpoint_name)
                champion = HEALTHY.beside(challenger, share) if 0 < share < 100 else HEALTHY
                writer.minute_of_each(written, {"champion": champion, "challenger": challenger})
                written += 60
            self._closed.wait(0.02)

    def _challenger_percent(self, endpoint_name: str) -> float:
        described = self.sagemaker.describe_endpoint(EndpointName=endpoint_name)
        # moto leaves a weight of 0 out of the description.
        weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}
        total = weights.get("champion", 0.0) + weights.get("challenger", 0.0)
        return 100 * weights.get("challenger", 0.0) / total if total else 0.0

    def close(self) -> None:
        self._closed.set()
        for thread in self._serving:
            thread.join(timeout=5)

    def approve_in_staging(self) -> str:
        """A package of the family, with its gate files, approved in staging: its rollout starts."""
        folder = f"models/{self.group(STAGING)}/v2"
        bucket = self.bucket(STAGING)
        # A real model: the gates send its golden inputs to the candidate's variant.
        put_model(self.s3, bucket, folder, GOOD)
        files = {"metrics.json": {"accuracy": 0.91, "auc": 0.95}, "baseline.json": BASELINE}
        for name, document in files.items():
            self.s3.put_object(
                Bucket=bucket, Key=f"{folder}/gates/{name}", Body=json.dumps(document).encode()
            )
        created = self.sagemaker.create_model_package(
            ModelPackageGroupName=self.group(STAGING),
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{folder}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"training.data-version": "sha256-0123abcd"},
            ModelApprovalStatus="Approved",
        )
        return str(created["ModelPackageArn"])

    def packages(self, env: str) -> list[dict[str, Any]]:
        listed = self.sagemaker.list_model_packages(ModelPackageGroupName=self.group(env))
        return [
            self.sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])
            for p in listed["ModelPackageSummaryList"]
        ]

    def executions(self, env: str, machine: str, status: str | None = None) -> list[dict[str, Any]]:
        arn = self.stack(env).state_machine_of(machine)
        listed = self.states.list_executions(stateMachineArn=arn)["executions"]
        return [e for e in listed if status is None or e["status"] == status]

    def ended(self, env: str, machine: str) -> list[dict[str, Any]]:
        return [e for e in self.executions(env, machine) if e["status"] != "RUNNING"]

    def first_ended(self, env: str, machine: str) -> dict[str, Any]:
        """The first execution, once it has ended (the promote's own approval event starts a second
        rollout of the package, refused at once: it was rolled out already)."""

        def first() -> dict[str, Any] | None:
            executions = sorted(self.executions(env, machine), key=lambda e: e["startDate"])
            return executions[0] if executions and executions[0]["status"] != "RUNNING" else None

        found: dict[str, Any] = until(f"{env} {machine} run", first)
        return found

    def offer_from_staging(self, version: int, outcome: str = "promoted") -> str:
        """What staging's promote puts on the bus for a package it promoted (without running its rollout:
        the tests of the approval start here); `version` names the package's folder."""
        folder = f"models/{self.group(STAGING)}/v{version}"
        bucket = self.bucket(STAGING)
        put_model(self.s3, bucket, folder, GOOD)
        created = self.sagemaker.create_model_package(
            ModelPackageGroupName=self.group(STAGING),
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{folder}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="PendingManualApproval",
        )
        arn = str(created["ModelPackageArn"])
        offer = ReleaseOffer(
            source_environment=STAGING,
            target_environment=PROD,
            endpoint="churn",
            model_package_arn=arn,
            image=IMAGE,
            model_data_url=f"s3://{bucket}/{folder}/model.tar.gz",
            rollout_id="a-staging-rollout",
            metadata={"rollout.id": "a-staging-rollout", "rollout.outcome": outcome},
        )
        [put] = boto3.client("events").put_events(Entries=[offer_entry(offer)])["Entries"]
        assert "EventId" in put, put
        return arn


def open_chain(cdk_out: Path) -> Iterator[Chain]:
    clock = AcceleratedClock(rate=CLOCK_RATE)

    def definition(logical_id: str, text: str) -> str:
        document = json.loads(text)
        # The release's approval only (the rollout's human gates have a state of that name too).
        if logical_id.startswith("ReleaseStateMachine") and ASK_STATE in document["States"]:
            document["States"][ASK_STATE]["TimeoutSeconds"] = APPROVAL_SECONDS
        # Both environments' bakes are local.yaml's 3 minutes.
        return shortened_waits(json.dumps(document), clock, {"$.bake_seconds": 180})

    with LocalCloud(
        cdk_out,
        None,
        clock=clock,
        definition_transform=definition,
        require_appconfig=False,
        gap_fillers={
            "events": lambda _cloud: deliver_events(),
            "registry events": lambda _cloud: emit_registry_events(),
            # The gates send the golden inputs to the candidate's variant: real inference servers answer.
            "inference servers": lambda _cloud: serve_endpoints(clock=clock.now),
        },
    ) as cloud:
        chain = Chain(cloud, clock)
        try:
            yield chain
        finally:
            chain.close()


@pytest.fixture
def chain(chain_out: Path) -> Iterator[Chain]:
    yield from open_chain(chain_out)


@pytest.fixture(scope="module")
def manual_chain(manual_chain_out: Path) -> Iterator[Chain]:
    """One deployment for the approval tests: each offers its own package and follows its own release."""
    yield from open_chain(manual_chain_out)


def test_a_package_promoted_in_staging_is_registered_and_rolled_out_in_prod_with_its_evidence(
    chain: Chain,
) -> None:
    chain.serve(STAGING, HEALTHY)
    chain.serve(PROD, HEALTHY)
    source = chain.approve_in_staging()
    staging_run = chain.first_ended(STAGING, "Rollout")
    assert staging_run["status"] == "SUCCEEDED", staging_run
    [released] = until("registered package in prod", lambda: chain.packages(PROD))
    metadata = released["CustomerMetadataProperties"]
    assert metadata["release.source-environment"] == STAGING
    assert metadata["release.source-package"] == source
    assert metadata[f"{STAGING}.rollout.outcome"] == "promoted"
    assert metadata[f"{STAGING}.rollout.id"] == staging_run["executionArn"]
    assert metadata["training.data-version"] == "sha256-0123abcd"
    model_data_url = released["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert model_data_url.startswith(f"s3://{chain.bucket(PROD)}/models/released/")
    [release_run] = until("release run", lambda: chain.ended(PROD, "Release"))
    assert release_run["status"] == "SUCCEEDED"
    prod_run = chain.first_ended(PROD, "Rollout")
    assert prod_run["status"] == "SUCCEEDED", prod_run
    [rolled_out] = chain.packages(PROD)
    assert rolled_out["ModelApprovalStatus"] == "Approved"
    assert rolled_out["CustomerMetadataProperties"]["rollout.outcome"] == "promoted"
    assert rolled_out["CustomerMetadataProperties"][f"{STAGING}.rollout.outcome"] == "promoted"


def test_a_package_rolled_back_in_staging_never_reaches_prod(chain: Chain) -> None:
    chain.serve(STAGING, FAILING)
    chain.approve_in_staging()
    staging_run = chain.first_ended(STAGING, "Rollout")
    assert staging_run["status"] == "FAILED"
    time.sleep(2)  # what an offer would take to arrive
    assert chain.packages(PROD) == []
    assert chain.executions(PROD, "Release") == []


def approval_request(chain: Chain, source: str) -> dict[str, Any]:
    def asked() -> list[dict[str, Any]]:
        return [m for m in chain.told(PROD) if m.get("source_package") == source and "approve" in m]

    [request] = until("approval request", asked)
    return dict(request)


def test_a_manual_release_waits_for_a_person_and_proceeds_once_approved(manual_chain: Chain) -> None:
    chain = manual_chain
    source = chain.offer_from_staging(2)
    waiting = approval_request(chain, source)
    [registered] = chain.released(source)
    assert registered["ModelApprovalStatus"] == "PendingManualApproval"
    assert [run["status"] for run in chain.runs_of(PROD, "Release", source)] == ["RUNNING"]
    token = waiting["approve"].split("--task-token ")[1].split(" --task-output")[0].strip("'")
    chain.states.send_task_success(taskToken=token, output=json.dumps({"approved_by": "Dana"}))
    assert chain.ended_release_of(source)["status"] == "SUCCEEDED"
    [approved] = chain.released(source)
    assert approved["ModelApprovalStatus"] == "Approved"
    assert "approved by Dana" in approved["ApprovalDescription"]
    # The approval started prod's own rollout of the package (its gates then find no golden outputs).
    until("prod rollout", lambda: chain.runs_of(PROD, "Rollout", approved["ModelPackageArn"]))


def test_a_manual_release_nobody_approves_in_time_is_rejected_and_told(manual_chain: Chain) -> None:
    chain = manual_chain
    source = chain.offer_from_staging(3)
    assert chain.ended_release_of(source)["status"] == "FAILED"
    [rejected] = chain.released(source)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert "nobody approved" in rejected["ApprovalDescription"]
    told = [m for m in chain.told(PROD) if m.get("event") == "release_rejected"]
    assert [m["model_package_arn"] for m in told] == [rejected["ModelPackageArn"]]
    assert chain.runs_of(PROD, "Rollout", rejected["ModelPackageArn"]) == []


def test_a_release_a_person_rejects_is_rejected_with_the_reason(manual_chain: Chain) -> None:
    chain = manual_chain
    source = chain.offer_from_staging(4)
    waiting = approval_request(chain, source)
    token = waiting["reject"].split("--task-token ")[1].split(" --error")[0].strip("'")
    chain.states.send_task_failure(taskToken=token, error="Rejected", cause="the holdout looks odd")
    assert chain.ended_release_of(source)["status"] == "FAILED"
    [rejected] = chain.released(source)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    # moto's SendTaskFailure drops the cause (AWS passes it on): the person's rejection is what is kept.
    assert rejected["ApprovalDescription"].startswith("rejected by a person:")
    told = [m for m in chain.told(PROD) if m.get("event") == "release_rejected"]
    assert rejected["ModelPackageArn"] in [m["model_package_arn"] for m in told]
    assert chain.runs_of(PROD, "Rollout", rejected["ModelPackageArn"]) == []


def test_an_offer_of_a_package_not_promoted_is_refused_and_nothing_is_registered(manual_chain: Chain) -> None:
    chain = manual_chain
    source = chain.offer_from_staging(5, outcome="rolled_back")
    run = chain.ended_release_of(source)
    assert run["status"] == "FAILED"
    assert chain.released(source) == []
    [told] = [
        m for m in chain.told(PROD) if m.get("event") == "release_refused" and m["source_package"] == source
    ]
    assert "was not promoted" in told["reason"]
