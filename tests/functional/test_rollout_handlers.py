"""The rollout workflow's Lambda handlers against moto: lock, ledger, SageMaker, CloudWatch and SNS."""

from __future__ import annotations

import dataclasses
import importlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from bench.judge_methods import run_shipped_rollout
from lambdas.locking.lock import EndpointLocked
from lambdas.release.offer import DETAIL_TYPE, EVENT_SOURCE, ReleaseOffer
from lambdas.rollout.aws.endpoint_ops import SageMakerControl, config_name_for, model_name_for
from lambdas.rollout.aws.metrics_reader import WindowQuery, windows_from_series
from lambdas.rollout.aws.wiring import RolloutServices, build_services, use
from lambdas.rollout.judge import JudgeSettings, VariantWindow
from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.payloads import InvalidRolloutRequest, RolloutRequest
from lambdas.rollout.settings import load_rollout_settings
from lambdas.rollout.state import EndpointBusy
from lambdas.shared.aws_clients import PublishesNotifications, ReadsObjects, ThrottlingException
from lambdas.shared.business_metric import BusinessMetricName
from localcloud.sagemaker.runtime import serve_endpoints
from tests.functional.golden_models import GOOD as GOOD_MODEL
from tests.functional.golden_models import OTHER, ModelName, golden_document, put_model
from tests.functional.rollout_support import (
    BAKE_MINUTES,
    BUCKET,
    BUSINESS_NAME,
    BUSINESS_NAMESPACE,
    ENDPOINT_NAME,
    ENVIRONMENT,
    GATES_PREFIX,
    GROUP,
    LOCK_TABLE,
    OTHER_GROUP,
    START_TIME,
    TOPIC,
    Clock,
    LambdaContextStub,
    MetricWriter,
    Minute,
    MotoSageMaker,
    capture_file,
    create_endpoint,
    create_tables,
    register_package,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mlrollout-dev-rollout:first"
OTHER_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mlrollout-dev-rollout:second"
HANDLERS = (
    "start",
    "gates",
    "deploy",
    "check_deployment",
    "set_traffic",
    "judge",
    "promote",
    "rollback",
    "release",
)
BAKE_SECONDS = BAKE_MINUTES * 60


@dataclass
class Rollout:
    handlers: dict[str, ModuleType]
    services: RolloutServices
    sagemaker: MotoSageMaker
    dynamodb: DynamoDBClient
    metrics: MetricWriter
    sqs: Any  # the sqs stubs are not installed
    queue_url: str
    s3: Any  # the s3 stubs are not installed
    clock: Clock
    package: str

    def run(self, name: str, event: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.handlers[name].handler(event, LambdaContextStub())
        return result

    def start(self, **overrides: Any) -> dict[str, Any]:
        request = {"endpoint": "churn", "model_package_arn": self.package, "execution_id": EXECUTION}
        return self.run("start", request | overrides)

    def deployed(self, **overrides: Any) -> dict[str, Any]:
        """Started, deployed, checked in service, at the first traffic step."""
        state = self.run("check_deployment", self.run("deploy", self.start(**overrides)))
        assert state["deployment"]["status"] == "in_service"
        return self.run("set_traffic", state)

    def finish(self, name: str, state: dict[str, Any]) -> dict[str, Any]:
        """Promote or roll back as the state machine does: the update, its check, the record."""
        state = self.run(name, state)
        if state.get("outcome") is None:
            checked = self.run("check_deployment", state)
            assert checked["deployment"]["status"] == "in_service", checked["deployment"]
            state = self.run(name, checked)
        assert state["outcome"] is not None
        return state

    def serve(self, state: dict[str, Any], champion: Minute, challenger: Minute, minutes: int = 10) -> None:
        """Both variants serve these minutes from the step's start, the champion at its rates and at the
        weights' split; the clock moves past them."""
        start = int(state["step_started_at"])
        champion = champion.beside(challenger, self.sagemaker.weights()["challenger"])
        self.metrics.minutes("champion", start, [champion] * minutes)
        self.metrics.minutes("challenger", start, [challenger] * minutes)
        self.clock.advance(BAKE_SECONDS)

    def ledger(self, rollout_id: str = EXECUTION) -> list[LedgerEntry]:
        return self.services.ledger.entries(rollout_id)

    def lock_holder(self) -> str | None:
        item = self.dynamodb.get_item(TableName=LOCK_TABLE, Key={"endpoint": {"S": ENDPOINT_NAME}})
        return item["Item"]["holder"]["S"] if "Item" in item else None

    def package_status(self) -> dict[str, Any]:
        described: dict[str, Any] = self.sagemaker.describe_model_package(ModelPackageName=self.package)
        return described

    def put_json(self, key: str, document: Any) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())

    def gate_files(self, metrics: dict[str, float] | None = None, model: ModelName = GOOD_MODEL) -> None:
        """The candidate's artifact (`model`) and its gate files beside it: the golden cases computed from
        `GOOD`, metrics and a baseline."""
        put_model(self.s3, BUCKET, GATES_PREFIX.removesuffix("/gates/"), model)
        self.put_json(GATES_PREFIX + "metrics.json", metrics or {"accuracy": 0.91, "auc": 0.95})
        self.put_json(
            GATES_PREFIX + "baseline.json", {"features": {"tenure": [float(v % 60) for v in range(600)]}}
        )

    def gated(self, **overrides: Any) -> dict[str, Any]:
        """Started, the candidate deployed at 0 % and in service, its gates run (they ask it)."""
        state = self.run("check_deployment", self.run("deploy", self.start(**overrides)))
        assert state["deployment"]["status"] == "in_service"
        return self.run("gates", state)

    def notifications(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in received.get("Messages", [])]


@pytest.fixture
def handlers() -> Iterator[dict[str, ModuleType]]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        # Re-imported under this environment: Powertools reads its namespace when a module loads.
        yield {
            name: importlib.reload(importlib.import_module(f"lambdas.handlers.rollout_{name}"))
            for name in HANDLERS
        }


@pytest.fixture
def rollout(handlers: dict[str, ModuleType]) -> Iterator[Rollout]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_tables(dynamodb)
        sagemaker = MotoSageMaker(boto3.client("sagemaker"))
        create_endpoint(sagemaker)
        sns = boto3.client("sns")
        topic = sns.create_topic(Name=TOPIC)["TopicArn"]
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        cloudwatch = boto3.client("cloudwatch")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        clock = Clock()
        services = build_services(
            load_rollout_settings(ENVIRONMENT),
            sagemaker=cast(SageMakerControl, sagemaker),
            dynamodb=dynamodb,
            cloudwatch=cloudwatch,
            sns=cast(PublishesNotifications, sns),
            s3=cast(ReadsObjects, s3),
            clock=clock,
        )
        use(services)
        yield Rollout(
            handlers,
            services,
            sagemaker,
            dynamodb,
            MetricWriter(cloudwatch),
            sqs,
            queue_url,
            s3,
            clock,
            register_package(sagemaker),
        )
        use(None)


@pytest.fixture
def served(rollout: Rollout) -> Iterator[None]:
    """InvokeEndpoint answered by the real inference server of each variant's model (the gates ask it)."""
    with serve_endpoints(clock=rollout.clock):
        yield


GOOD = Minute(requests=2000, errors_5xx=0, latency_us=20_000)
ERRING = Minute(requests=500, errors_5xx=5, latency_us=20_000)
BAD = Minute(requests=500, errors_5xx=25, latency_us=20_000)


# --- start --------------------------------------------------------------------------------------------


def test_start_takes_the_lock_records_the_start_and_returns_the_state(rollout: Rollout) -> None:
    state = rollout.start(traffic_steps=[10, 100])
    assert rollout.lock_holder() == EXECUTION
    assert state["rollout_id"] == EXECUTION
    assert state["request"]["endpoint_name"] == ENDPOINT_NAME
    assert state["request"]["model_package_group"] == GROUP
    assert state["bake_seconds"] == state["judge"]["look_seconds"]
    assert state["champion_model"] == "churn-v1"
    assert state["gates"] is None
    assert state["deployment"] is None
    assert [(e.sequence, e.kind, e.payload["action"]) for e in rollout.ledger()] == [
        (0, EntryKind.DEPLOYMENT, "rollout_started")
    ]
    assert rollout.ledger()[0].payload["challenger_shares"] == [10, 100]


def test_start_from_an_approved_package_event_finds_the_endpoint_by_its_group(rollout: Rollout) -> None:
    event = {
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "detail": {
            "ModelPackageArn": rollout.package,
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "Approved",
        },
        "execution_id": EXECUTION,
    }
    state = rollout.run("start", event)
    assert state["endpoint"] == "churn"
    assert state["request"]["strategy"] == "canary"
    assert [s["weights"]["challenger"] for s in state["request"]["traffic_steps"]] == [5, 25, 50, 100]


def test_a_second_rollout_of_a_locked_endpoint_is_refused_naming_the_holder(rollout: Rollout) -> None:
    rollout.start()
    with pytest.raises(EndpointLocked, match=f"locked by rollout {EXECUTION}"):
        rollout.start(execution_id=OTHER_EXECUTION)
    assert rollout.lock_holder() == EXECUTION
    assert rollout.ledger(OTHER_EXECUTION) == []


def test_the_same_start_delivered_twice_changes_nothing_twice(rollout: Rollout) -> None:
    first = rollout.start()
    rollout.clock.advance(30)
    assert rollout.start() == first
    assert len(rollout.ledger()) == 1


@pytest.mark.parametrize(
    ("request_changes", "error", "message"),
    [
        ({"model_package_arn": None}, "InvalidWorkflowInput", "model_package_arn"),
        ({"endpoint": "fraud"}, "UnknownEndpoint", "unknown endpoint 'fraud'"),
        ({"strategy": "big_bang"}, "InvalidWorkflowInput", "strategy"),
        ({"traffic_steps": [50, 40, 100]}, "InvalidRolloutRequest", "strictly increase"),
        ({"surprise": 1}, "InvalidWorkflowInput", "surprise"),
        (
            {"traffic_steps": [{"weights": {"champion": 90, "challenger": 5}}, 100]},
            "InvalidRolloutRequest",
            "must add up to 100",
        ),
        (
            {"traffic_steps": [{"weights": {"champion": 90, "blue": 10}}, 100]},
            "InvalidRolloutRequest",
            "unknown variant",
        ),
    ],
)
def test_malformed_workflow_input_is_refused_and_changes_nothing(
    rollout: Rollout, request_changes: dict[str, Any], error: str, message: str
) -> None:
    request = {"endpoint": "churn", "model_package_arn": rollout.package, "execution_id": EXECUTION}
    request = {key: value for key, value in (request | request_changes).items() if value is not None}
    with pytest.raises(Exception, match=message) as raised:
        rollout.run("start", request)
    assert type(raised.value).__name__ == error
    assert rollout.lock_holder() is None
    assert rollout.ledger() == []


def test_a_package_of_another_family_is_refused_and_changes_nothing(rollout: Rollout) -> None:
    foreign = register_package(rollout.sagemaker, OTHER_GROUP)
    with pytest.raises(InvalidRolloutRequest, match=f"belongs to group '{OTHER_GROUP}'"):
        rollout.start(model_package_arn=foreign)
    assert rollout.lock_holder() is None
    assert rollout.ledger() == []


def test_a_package_rolled_out_before_does_not_start_again(rollout: Rollout) -> None:
    rollout.sagemaker.update_model_package(
        ModelPackageArn=rollout.package, CustomerMetadataProperties={"rollout.outcome": "promoted"}
    )
    with pytest.raises(Exception, match="rolled out already") as raised:
        rollout.start()
    assert type(raised.value).__name__ == "PackageNotRollable"
    assert rollout.lock_holder() is None


# --- deploy and check ---------------------------------------------------------------------------------


def test_deploy_puts_the_candidate_beside_the_champion_and_check_finds_it_in_service(
    rollout: Rollout,
) -> None:
    state = rollout.run("deploy", rollout.start())
    config = config_name_for(ENDPOINT_NAME, EXECUTION, "deploy")
    assert state["deployment"] == {"status": "updating", "config_name": config, "reason": ""}
    model = model_name_for(ENDPOINT_NAME, rollout.package)
    assert state["challenger_model"] == model
    checked = rollout.run("check_deployment", state)
    assert checked["deployment"]["status"] == "in_service"
    assert rollout.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", model)]
    assert rollout.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}
    assert [e.payload["action"] for e in rollout.ledger()] == [
        "rollout_started",
        "deploy_challenger",
        "update_checked",
    ]


def test_a_silent_sagemaker_rollback_is_reported_as_a_failed_deployment(rollout: Rollout) -> None:
    rollout.sagemaker.silently_roll_back = True
    checked = rollout.run("check_deployment", rollout.run("deploy", rollout.start()))
    assert checked["deployment"]["status"] == "failed"
    assert "SageMaker rolled the update back" in checked["deployment"]["reason"]
    assert rollout.ledger()[-1].payload["state"] == "rolled_back"


def test_a_retried_deploy_sends_one_update(rollout: Rollout) -> None:
    started = rollout.start()
    assert rollout.run("deploy", started) == rollout.run("deploy", started)
    assert len(rollout.sagemaker.updates) == 1


def test_blue_green_deploys_the_promote_config_under_guardrails_and_promotion_sends_nothing_again(
    rollout: Rollout,
) -> None:
    state = rollout.run("check_deployment", rollout.run("deploy", rollout.start(strategy="blue_green")))
    assert state["deployment"]["status"] == "in_service"
    model = model_name_for(ENDPOINT_NAME, rollout.package)
    # First the candidate at 0 % beside the champion, where the gates ask it, with no guardrails.
    (gated,) = rollout.sagemaker.updates
    assert gated["EndpointConfigName"] == config_name_for(ENDPOINT_NAME, EXECUTION, "gate")
    assert "DeploymentConfig" not in gated
    assert rollout.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", model)]
    assert rollout.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}
    state["gates"] = {"passed": True, "reason": "all gates passed"}
    state = rollout.run("check_deployment", rollout.run("deploy", state))
    _, update = rollout.sagemaker.updates
    assert update["EndpointConfigName"] == config_name_for(ENDPOINT_NAME, EXECUTION, "promote")
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "mlrollout-dev-churn-composite"}]
    }
    rollout.run("promote", state)
    assert len(rollout.sagemaker.updates) == 2
    assert rollout.sagemaker.running_models() == [("champion", model), ("challenger", model)]
    assert rollout.package_status()["CustomerMetadataProperties"]["rollout.outcome"] == "promoted"


def test_shadow_asks_the_candidate_at_zero_percent_then_deploys_it_as_the_shadow_and_rolls_back_cleanly(
    rollout: Rollout,
) -> None:
    state = rollout.run("check_deployment", rollout.run("deploy", rollout.start(strategy="shadow")))
    model = model_name_for(ENDPOINT_NAME, rollout.package)
    (gated,) = rollout.sagemaker.updates
    assert gated["EndpointConfigName"] == config_name_for(ENDPOINT_NAME, EXECUTION, "gate")
    assert rollout.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", model)]
    state["gates"] = {"passed": True, "reason": "all gates passed"}
    state = rollout.run("check_deployment", rollout.run("deploy", state))
    _, shadowed = rollout.sagemaker.updates
    assert shadowed["EndpointConfigName"] == config_name_for(ENDPOINT_NAME, EXECUTION, "deploy")
    config = rollout.sagemaker.describe_endpoint_config(EndpointConfigName=shadowed["EndpointConfigName"])
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["champion"]
    state = rollout.finish("rollback", rollout.run("set_traffic", state))
    assert state["outcome"] == "rolled_back"
    assert {m for _, m in rollout.sagemaker.running_models()} == {"churn-v1"}


def test_deploy_after_failed_gates_is_refused_and_sends_nothing(
    rollout: Rollout,
) -> None:
    state = rollout.run("check_deployment", rollout.run("deploy", rollout.start(strategy="blue_green")))
    state["gates"] = {"passed": False, "reason": "blocked by golden_inputs"}
    with pytest.raises(ValueError, match="nothing to deploy after its gates"):
        rollout.run("deploy", state)
    assert len(rollout.sagemaker.updates) == 1


# --- traffic steps and the judge ----------------------------------------------------------------------


def test_set_traffic_gives_the_challenger_the_first_share(rollout: Rollout) -> None:
    state = rollout.deployed()
    assert rollout.sagemaker.weights() == {"champion": 95.0, "challenger": 5.0}
    assert state["step_started_at"] == int(rollout.clock.now)
    assert rollout.ledger()[-1].payload == {
        "action": "set_weights",
        "endpoint_config": config_name_for(ENDPOINT_NAME, EXECUTION, "deploy"),
        "step": 0,
        "challenger_percent": 5,
    }


def test_a_good_challenger_advances_and_is_promoted_after_its_last_judged_step(rollout: Rollout) -> None:
    state = rollout.deployed(traffic_steps=[10, 50, 100])
    rollout.serve(state, GOOD, GOOD)
    judged = rollout.run("judge", state)
    assert judged["decision"]["action"] == "advance"
    assert (judged["step_index"], judged["bakes_done"]) == (1, 0)
    state = rollout.run("set_traffic", judged)
    assert rollout.sagemaker.weights() == {"champion": 50.0, "challenger": 50.0}
    rollout.serve(state, GOOD, GOOD)
    judged = rollout.run("judge", state)
    assert judged["decision"]["action"] == "promote"
    assert [step["challenger_requests"] for step in judged["steps"]] == [20000, 20000]


def test_a_challenger_with_five_times_the_errors_is_rolled_back(rollout: Rollout) -> None:
    state = rollout.deployed()
    rollout.serve(state, ERRING, BAD)
    judged = rollout.run("judge", state)
    assert judged["decision"]["action"] == "rollback"
    assert judged["decision"]["reason"].startswith("judge:")
    verdict = next(e for e in rollout.ledger() if e.kind is EntryKind.JUDGE_VERDICT)
    assert verdict.payload["verdict"] == "rollback"
    errors = verdict.payload["evidence"][0]  # type: ignore[index]
    assert errors["challenger_samples"] == 5000  # type: ignore[index,call-overload]


def test_a_challenger_losing_a_fifth_of_its_requests_is_stopped_for_a_sample_ratio_mismatch(
    rollout: Rollout,
) -> None:
    state = rollout.deployed(traffic_steps=[25, 50, 100])
    # At 25 % the champion serves 3 requests for each of the challenger's; the challenger counts only 4 in
    # 5 of its own. Its errors and latency are as good as the champion's.
    start = int(state["step_started_at"])
    rollout.metrics.minutes("champion", start, [GOOD.beside(Minute(requests=667), 25)] * 10)
    rollout.metrics.minutes("challenger", start, [Minute(requests=533, latency_us=20_000)] * 10)
    rollout.clock.advance(BAKE_SECONDS)
    judged = rollout.run("judge", state)
    reason = judged["decision"]["reason"]
    assert judged["decision"]["action"] == "rollback"
    assert reason.startswith("sample ratio mismatch: challenger expected 25.00 % of requests, observed 21.0")
    verdict = next(e for e in rollout.ledger() if e.kind is EntryKind.JUDGE_VERDICT)
    assert verdict.payload["verdict"] != "rollback"  # the metrics alone showed no harm
    sample_ratio = verdict.payload["sample_ratio"]
    assert isinstance(sample_ratio, dict) and sample_ratio["mismatch"] is True
    assert sample_ratio["windows"] == 9  # the minute the weights changed in is left out
    rolled_back = rollout.finish("rollback", judged)
    assert rolled_back["outcome"] == "rolled_back"
    package = rollout.package_status()
    assert package["ModelApprovalStatus"] == "Rejected" and package["ApprovalDescription"] == reason
    report_uri = package["CustomerMetadataProperties"]["rollout.report"]
    assert report_uri == f"s3://{BUCKET}/rollout-reports/churn/first.html"
    page = (
        rollout.s3.get_object(Bucket=BUCKET, Key="rollout-reports/churn/first.html")["Body"].read().decode()
    )
    assert "<h2>Sample ratio look by look</h2>" in page and "MISMATCH" in page and reason in page
    (message,) = rollout.notifications()
    assert message["event"] == "rollout_rolled_back" and message["reason"] == reason
    assert message["links"]["report"] == report_uri
    assert message["numbers"]["sample_ratio"]["expected_share"] == 0.25


def test_a_report_that_cannot_be_written_does_not_hold_up_the_rollback(rollout: Rollout) -> None:
    state = rollout.deployed()
    rollout.serve(state, ERRING, BAD)
    rollout.s3.delete_bucket(Bucket=BUCKET)
    rolled_back = rollout.finish("rollback", rollout.run("judge", state))
    assert rolled_back["outcome"] == "rolled_back"
    package = rollout.package_status()
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "rollout.report" not in package["CustomerMetadataProperties"]
    (message,) = rollout.notifications()
    assert message["report"].startswith("not written") and "report" not in message["links"]


def test_no_data_is_inconclusive_and_bakes_again_never_a_pass(rollout: Rollout) -> None:
    state = rollout.deployed()
    rollout.clock.advance(BAKE_SECONDS)
    judged = rollout.run("judge", state)
    assert judged["decision"] == {"action": "bake", "reason": "judge: inconclusive at 5 % after 10 min"}
    assert (judged["step_index"], judged["bakes_done"], judged["bake_seconds"]) == (0, 1, 60)
    rollout.clock.advance(BAKE_SECONDS)
    decision = rollout.run("judge", judged)["decision"]
    assert decision["action"] == "inconclusive"
    assert decision["reason"].startswith("too little data at 5 % after 20 min")


# --- one decision path: the benchmark's simulated rollout and the handlers on moto agree ------------


def served_minutes(seed: int, challenger_error_rate: float) -> dict[tuple[int, int], tuple[Minute, Minute]]:
    """Seeded minutes at every share: 2000 requests a minute split by the share, 1 % champion errors."""
    rng = random.Random(seed)
    minutes: dict[tuple[int, int], tuple[Minute, Minute]] = {}
    for minute in range(200):
        for share in (5, 25, 50):
            challenger = sum(rng.random() < share / 100 for _ in range(2000))
            champion = 2000 - challenger

            def served(requests: int, error_rate: float) -> Minute:
                errors = sum(rng.random() < error_rate for _ in range(requests))
                trials = requests * 3 // 10
                return Minute(
                    requests=requests,
                    errors_5xx=errors,
                    latency_us=20_000 + rng.random() * 1000,
                    trials=trials,
                    successes=trials // 5,
                )

            minutes[(minute, share)] = (served(champion, 0.01), served(challenger, challenger_error_rate))
    return minutes


def as_windows(pair: tuple[Minute, Minute], minute: int) -> tuple[VariantWindow, VariantWindow]:
    """The minute as the CloudWatch reader reads what MetricWriter published."""
    timestamp = datetime.fromtimestamp(START_TIME + 60 * minute, UTC)
    series: dict[tuple[str, str], dict[datetime, float]] = {}
    for variant, served in zip(("champion", "challenger"), pair, strict=True):
        values: dict[str, float] = {
            "requests": served.requests,
            "errors_5xx": served.errors_5xx,
            "model_errors": served.model_errors,
            "outcome_trials": served.trials,
            "outcome_successes": served.successes,
        }
        if served.requests and served.latency_us is not None:
            values |= {"latency_count": served.requests, "latency_average": served.latency_us}
        for key, value in values.items():
            series[(variant, key)] = {timestamp: float(value)}
    windows = windows_from_series(series, "champion", "challenger")
    return windows.champion[0], windows.challenger[0]


@pytest.mark.parametrize(("seed", "challenger_error_rate"), [(1, 0.01), (2, 0.02)])
def test_the_handlers_on_moto_decide_as_the_benchmarks_simulated_rollout(
    rollout: Rollout, seed: int, challenger_error_rate: float
) -> None:
    state = rollout.deployed()
    minutes = served_minutes(seed, challenger_error_rate)
    request = RolloutRequest.model_validate(state["request"])
    settings = JudgeSettings.model_validate(state["judge"])
    simulated = run_shipped_rollout(
        request,
        settings,
        lambda m, share: as_windows(minutes[(m, share)], m),
        {5: 5, 25: 25, 50: 50},
        horizon_minutes=200,
        deploy_seconds=0,  # moto deploys at once: the lock and the first step share a clock reading
    )
    assert len(simulated.trace) >= 2  # several looks, not a one-look story
    assert state["step_started_at"] == START_TIME
    published, wait, on_moto = 0, state["bake_seconds"], []
    while True:
        look_at = int(rollout.clock.now) + wait
        share = request.challenger_shares[state["step_index"]]
        for minute in range(published, (look_at - START_TIME) // 60):
            champion, challenger = minutes[(minute, share)]
            rollout.metrics.minutes("champion", START_TIME + 60 * minute, [champion])
            rollout.metrics.minutes("challenger", START_TIME + 60 * minute, [challenger])
        published = (look_at - START_TIME) // 60
        rollout.clock.advance(look_at - rollout.clock.now)
        state = rollout.run("judge", state)
        decision = state["decision"]
        on_moto.append((look_at - START_TIME, decision["action"], decision["reason"]))
        if decision["action"] in ("promote", "rollback"):
            break
        if decision["action"] == "advance":
            state = rollout.run("set_traffic", state)
        wait = state["bake_seconds"]
    assert on_moto == list(simulated.trace)


# --- promote, roll back, release ----------------------------------------------------------------------


def test_promotion_makes_the_candidate_champion_and_approves_the_package_with_the_summary(
    rollout: Rollout,
) -> None:
    state = rollout.deployed(traffic_steps=[50, 100])
    rollout.serve(state, GOOD, GOOD)
    judged = rollout.run("judge", state)
    swapping = rollout.run("promote", judged)
    # Nothing is approved until the endpoint runs the promote config.
    assert swapping["outcome"] is None and swapping["deployment"]["status"] == "updating"
    assert rollout.package_status().get("CustomerMetadataProperties", {}).get("rollout.outcome") is None
    promoted = rollout.finish("promote", swapping)
    model = model_name_for(ENDPOINT_NAME, rollout.package)
    assert rollout.sagemaker.running_models() == [("champion", model), ("challenger", model)]
    assert rollout.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}
    package = rollout.package_status()
    assert package["ModelApprovalStatus"] == "Approved"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["data_version"] == "sha256-abc"
    assert metadata["rollout.outcome"] == "promoted"
    assert metadata["rollout.verdicts"] == "50pct=promote"
    assert metadata["rollout.traffic"] == "50pct:20000/20000"
    assert metadata["rollout.report"] == f"s3://{BUCKET}/rollout-reports/churn/first.html"
    assert promoted["deployment"]["config_name"] == config_name_for(ENDPOINT_NAME, EXECUTION, "promote")
    (told,) = rollout.notifications()
    assert told["event"] == "rollout_promoted" and told["links"]["report"] == metadata["rollout.report"]
    assert told["numbers"]["requests_served"] == {"champion": 20000, "challenger": 20000}


def _releasing(rollout: Rollout, events: Any) -> None:
    """The rollout's services as in an environment that releases into prod (`release:` in its file)."""
    settings = rollout.services.settings.model_copy(update={"environment": "dev", "release_to": "prod"})
    use(dataclasses.replace(rollout.services, settings=settings, events=events))


def test_a_promotion_offers_the_package_to_the_next_environment_with_its_evidence(rollout: Rollout) -> None:
    events, sqs = boto3.client("events"), rollout.sqs
    queue_url = sqs.create_queue(QueueName="offers")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name="offers", EventPattern=json.dumps({"source": [EVENT_SOURCE]}), State="ENABLED")
    events.put_targets(Rule="offers", Targets=[{"Id": "queue", "Arn": queue_arn["QueueArn"]}])
    _releasing(rollout, events)
    state = rollout.deployed(traffic_steps=[50, 100])
    rollout.serve(state, GOOD, GOOD)
    rollout.finish("promote", rollout.run("judge", state))
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert event["detail-type"] == DETAIL_TYPE
    offer = ReleaseOffer.model_validate(event["detail"])
    assert (offer.source_environment, offer.target_environment, offer.endpoint) == ("dev", "prod", "churn")
    assert offer.model_package_arn == rollout.package
    assert offer.rollout_id == EXECUTION
    assert offer.metadata["rollout.outcome"] == "promoted"
    assert offer.metadata["data_version"] == "sha256-abc"
    assert offer.refusal() is None


class _RefusingEvents:
    def put_events(self, *, Entries: Any) -> Any:
        return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "down"}]}


def test_a_promotion_whose_offer_cannot_be_sent_stands_and_is_told(rollout: Rollout) -> None:
    _releasing(rollout, _RefusingEvents())
    state = rollout.deployed(traffic_steps=[50, 100])
    rollout.serve(state, GOOD, GOOD)
    promoted = rollout.finish("promote", rollout.run("judge", state))
    assert promoted["outcome"] == "promoted"
    assert rollout.package_status()["ModelApprovalStatus"] == "Approved"
    [told] = [m for m in rollout.notifications() if m["event"] == "release_not_offered"]
    assert told["next_environment"] == "prod" and "InternalFailure" in told["reason"]
    assert told["model_package_arn"] == rollout.package


def test_rollback_restores_the_champion_rejects_the_package_and_notifies(rollout: Rollout) -> None:
    state = rollout.deployed()
    rollout.serve(state, ERRING, BAD)
    rolled_back = rollout.finish("rollback", rollout.run("judge", state))
    assert rollout.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", "churn-v1")]
    assert rollout.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}
    assert "DeploymentConfig" not in rollout.sagemaker.updates[-1]
    package = rollout.package_status()
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"] == rolled_back["decision"]["reason"]
    assert package["CustomerMetadataProperties"]["rollout.outcome"] == "rolled_back"
    (message,) = rollout.notifications()
    assert message["event"] == "rollout_rolled_back"
    assert message["reason"] == rolled_back["decision"]["reason"]


def test_too_little_data_restores_the_champion_and_the_package_waits_for_a_persons_approval(
    rollout: Rollout,
) -> None:
    state = rollout.deployed()
    # Ten requests a minute, the challenger's about its 5 %.
    start = int(state["step_started_at"])
    rollout.metrics.minutes(
        "champion", start, [Minute(requests=9, latency_us=20_000, trials=9, successes=2)] * 10
    )
    rollout.metrics.minutes("challenger", start, [Minute(requests=1, latency_us=20_000, trials=1)] * 10)
    rollout.clock.advance(BAKE_SECONDS)
    judged = rollout.run("judge", state)
    assert judged["decision"]["action"] == "inconclusive"
    reason = judged["decision"]["reason"]
    assert reason.startswith("too little data: at 0.167 requests/s the first step (5 %) needs about")
    assert "what would fit: bake_minutes >= " in reason
    stopped = rollout.finish("rollback", judged)
    assert stopped["outcome"] == "inconclusive"
    assert rollout.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}
    assert rollout.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", "churn-v1")]
    package = rollout.package_status()
    # Nothing was shown wrong with the model: not Rejected, and no longer Approved while not deployed.
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["ApprovalDescription"] == reason
    assert package["CustomerMetadataProperties"]["rollout.outcome"] == "inconclusive"
    outcomes = [e.payload for e in rollout.ledger() if e.kind is EntryKind.OUTCOME]
    assert [(o["status"], o["reason"]) for o in outcomes] == [("inconclusive", reason)]
    (message,) = rollout.notifications()
    assert message["event"] == "rollout_inconclusive"
    assert message["reason"] == reason
    assert "approve the package again" in message["action"]


def test_a_package_stopped_for_too_little_data_may_start_again(rollout: Rollout) -> None:
    rollout.sagemaker.update_model_package(
        ModelPackageArn=rollout.package, CustomerMetadataProperties={"rollout.outcome": "inconclusive"}
    )
    assert rollout.start()["rollout_id"] == EXECUTION


def test_rollback_after_a_failed_task_gives_the_caught_error_as_the_reason(rollout: Rollout) -> None:
    state = rollout.deployed()
    cause = {"errorMessage": "UpdateEndpointWeightsAndCapacities failed", "errorType": "ClientError"}
    state["error"] = {"Error": "ClientError", "Cause": json.dumps(cause)}
    rollout.finish("rollback", state)
    reason = "ClientError: UpdateEndpointWeightsAndCapacities failed"
    assert rollout.package_status()["ApprovalDescription"] == reason
    assert rollout.notifications()[0]["reason"] == reason
    assert rollout.sagemaker.running_models()[0] == ("champion", "churn-v1")


def test_rollback_before_any_deployment_leaves_the_endpoint_alone(rollout: Rollout) -> None:
    state = rollout.start()
    state["gates"] = {"passed": False, "reason": "blocked by golden_inputs: 2 of 12 cases differ"}
    rollout.run("rollback", state)
    assert rollout.sagemaker.updates == []
    assert rollout.package_status()["ApprovalDescription"].startswith("gates: blocked by golden_inputs")


def test_release_frees_the_endpoint_and_is_idempotent(rollout: Rollout) -> None:
    state = rollout.start()
    assert rollout.run("release", state) == state
    assert rollout.lock_holder() is None
    assert rollout.run("release", state) == state
    rollout.start(execution_id=OTHER_EXECUTION)
    rollout.run("release", state)
    assert rollout.lock_holder() == OTHER_EXECUTION


# --- retryable errors ---------------------------------------------------------------------------------


def test_throttling_reaches_the_state_machine_by_name(rollout: Rollout) -> None:
    state = rollout.run("deploy", rollout.start())

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeEndpoint"
        )

    rollout.sagemaker.describe_endpoint = throttled  # type: ignore[attr-defined]
    with pytest.raises(ThrottlingException, match="Rate exceeded"):
        rollout.run("check_deployment", state)


def test_traffic_is_not_shifted_while_the_endpoint_updates(rollout: Rollout) -> None:
    state = rollout.run("check_deployment", rollout.run("deploy", rollout.start()))
    endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].endpoints[ENDPOINT_NAME]
    endpoint.endpoint_status = "Updating"
    with pytest.raises(EndpointBusy, match="Updating"):
        rollout.run("set_traffic", state)
    endpoint.endpoint_status = "InService"
    assert rollout.sagemaker.weights() == {"champion": 100.0, "challenger": 0.0}


def test_the_rollback_waits_for_an_update_in_progress_however_long_it_lasts(rollout: Rollout) -> None:
    state = rollout.deployed()
    endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].endpoints[ENDPOINT_NAME]
    # A promotion's or a blue/green deployment's update runs when the rollback begins.
    endpoint.endpoint_status = "Updating"
    waiting = rollout.run("rollback", state)
    assert waiting["outcome"] is None
    assert waiting["deployment"]["status"] == "updating"
    # Hours later it still runs: the rollback still waits, it does not give up.
    rollout.clock.advance(8 * 3600)
    assert rollout.run("rollback", waiting)["deployment"]["status"] == "updating"
    endpoint.endpoint_status = "InService"
    rolled_back = rollout.finish("rollback", waiting)
    assert rolled_back["outcome"] == "rolled_back"
    assert rollout.sagemaker.running_models() == [("champion", "churn-v1"), ("challenger", "churn-v1")]


def test_a_failed_rollback_is_told_with_its_reason_and_its_lock_released(rollout: Rollout) -> None:
    state = rollout.deployed()
    # The judge failed (the reason to roll back), then the rollback function failed past its retries
    # twice: its own error is beside the reason, not in its place.
    judge = {"errorType": "MetricsUnavailable", "errorMessage": "GetMetricData failed"}
    rollback = {"errorType": "ThrottlingException", "errorMessage": "Rate exceeded"}
    failed = state | {
        "error": {"Error": "MetricsUnavailable", "Cause": json.dumps(judge)},
        "rollback_error": {"Error": "ThrottlingException", "Cause": json.dumps(rollback)},
    }
    rollout.run("release", failed)
    [told] = rollout.notifications()
    assert (told["event"], told["rollout_id"]) == ("rollout_rollback_failed", EXECUTION)
    assert told["reason"] == (
        "rolling back (MetricsUnavailable: GetMetricData failed) failed: ThrottlingException: Rate exceeded"
    )
    assert rollout.lock_holder() is None


def test_a_rollback_that_gave_up_is_not_told_twice_by_the_release(rollout: Rollout) -> None:
    gave_up = rollout.deployed() | {"outcome": "failed"}
    rollout.run("release", gave_up)
    assert rollout.notifications() == []
    assert rollout.lock_holder() is None


def test_a_start_that_failed_after_taking_the_lock_is_told_and_frees_it(rollout: Rollout) -> None:
    rollout.start()
    # Its Lambda timed out after taking the lock, past the state machine's retries.
    failed = {
        "input": {"endpoint": "churn", "model_package_arn": rollout.package},
        "execution": {"execution_id": EXECUTION},
        "error": {"Error": "Sandbox.Timedout", "Cause": json.dumps({"errorMessage": "Task timed out"})},
    }
    assert rollout.run("release", {"not_started": failed}) == failed
    assert rollout.lock_holder() is None
    [told] = rollout.notifications()
    assert (told["event"], told["rollout_id"], told["endpoint"]) == (
        "rollout_not_started",
        EXECUTION,
        "churn",
    )
    assert told["reason"] == "Sandbox.Timedout: Task timed out"


def test_an_approval_refused_by_a_held_lock_is_told_naming_the_holder(rollout: Rollout) -> None:
    rollout.start()
    with pytest.raises(EndpointLocked) as locked:
        rollout.start(execution_id=OTHER_EXECUTION)
    failed = {
        "input": {"endpoint": "churn", "model_package_arn": rollout.package},
        "execution": {"execution_id": OTHER_EXECUTION},
        "error": {"Error": "EndpointLocked", "Cause": json.dumps({"errorMessage": str(locked.value)})},
    }
    rollout.run("release", {"not_started": failed})
    # The running rollout keeps its lock; the refused one is told, with the holder's name.
    assert rollout.lock_holder() == EXECUTION
    [told] = rollout.notifications()
    assert told["rollout_id"] == OTHER_EXECUTION
    assert f"locked by rollout {EXECUTION}" in told["reason"]


def _scale_champion(instances: int) -> None:
    """Autoscaling sets the champion's desired instances; SageMaker runs them."""
    endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].endpoints[ENDPOINT_NAME]
    for variant in endpoint.production_variants:
        if variant["VariantName"] == "champion":
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = instances


def _instances(rollout: Rollout, config: str) -> dict[str, int]:
    described = rollout.sagemaker.describe_endpoint_config(EndpointConfigName=config)
    return {v["VariantName"]: v["InitialInstanceCount"] for v in described["ProductionVariants"]}


def test_each_new_config_keeps_the_instances_autoscaling_gave_the_champion(rollout: Rollout) -> None:
    _scale_champion(3)
    deployed = rollout.run("deploy", rollout.start())
    # The champion keeps its 3 instances under load; the candidate at 0 % starts at the initial count.
    assert _instances(rollout, deployed["deployment"]["config_name"]) == {"champion": 3, "challenger": 1}
    state = rollout.run("set_traffic", rollout.run("check_deployment", deployed))
    _scale_champion(5)
    promoting = rollout.run("promote", state | {"decision": {"action": "promote", "reason": "judge"}})
    assert _instances(rollout, promoting["deployment"]["config_name"]) == {"champion": 5, "challenger": 1}


def test_the_rollback_keeps_the_instances_the_champion_runs(rollout: Rollout) -> None:
    state = rollout.deployed()
    _scale_champion(4)
    restoring = rollout.run("rollback", state)
    assert _instances(rollout, restoring["deployment"]["config_name"]) == {"champion": 4, "challenger": 1}


# --- the judge's windows from CloudWatch --------------------------------------------------------------


def test_windows_pair_the_variants_minutes_with_latency_and_feedback(rollout: Rollout) -> None:
    start = START_TIME
    served = Minute(requests=400, errors_5xx=3, model_errors=2, latency_us=25_000, trials=80, successes=12)
    # The minute before the step started is not the step's.
    rollout.metrics.minutes("champion", start - 60, [ERRING, GOOD, GOOD, GOOD])
    rollout.metrics.minutes("challenger", start + 60, [served, served])
    windows = rollout.services.windows.windows(
        WindowQuery(
            endpoint_name=ENDPOINT_NAME,
            champion="champion",
            challenger="challenger",
            business_metric=BusinessMetricName(namespace=BUSINESS_NAMESPACE, name=BUSINESS_NAME),
            start=start - 43,
            end=start + 180,
        )
    )
    assert [w.requests for w in windows.champion] == [2000, 2000, 2000]
    assert [w.requests for w in windows.challenger] == [0, 400, 400]
    assert windows.challenger[0].latency is None
    later = windows.challenger[1]
    assert (later.errors_5xx, later.model_errors, later.outcome_trials, later.outcome_successes) == (
        3,
        2,
        80,
        12,
    )
    assert later.latency is not None
    assert (later.latency.sample_count, later.latency.average) == (400, 25_000)


# --- gates --------------------------------------------------------------------------------------------


def gate_statuses(rollout: Rollout) -> dict[str, Any]:
    gates = [e.payload for e in rollout.ledger() if e.kind is EntryKind.GATE_RESULT]
    return {str(payload["gate"]): payload["status"] for payload in gates}


def test_gates_pass_and_every_gate_result_is_recorded(rollout: Rollout, served: None) -> None:
    rollout.gate_files()
    state = rollout.gated()
    assert state["gates"]["passed"] is True
    # This environment captures no requests yet, and its config lets drift go unjudged.
    assert gate_statuses(rollout) == {
        "golden_inputs": "passed",
        "metric_thresholds": "passed",
        "input_drift": "insufficient_data",
    }


def test_the_golden_gate_fails_a_deployed_candidate_that_answers_otherwise_naming_cases_and_values(
    rollout: Rollout, served: None
) -> None:
    # The package's golden cases and its own golden_outputs.json agree; the artifact it deploys does not.
    rollout.gate_files(model=OTHER)
    state = rollout.gated()
    assert state["gates"]["passed"] is False
    assert gate_statuses(rollout)["golden_inputs"] == "failed"
    golden = next(e for e in rollout.ledger() if e.payload.get("gate") == "golden_inputs")
    detail = cast("dict[str, Any]", golden.payload["detail"])
    cases = {case["case_id"]: case for case in detail["cases"]}
    failed = list(detail["failed_cases"])
    assert failed and set(failed) <= set(cases)
    first = cases[failed[0]]
    assert first["actual_probabilities"] != first["expected_probabilities"]
    assert f"{failed[0]}: probabilities [" in state["gates"]["reason"]
    assert "expected [" in state["gates"]["reason"]


def test_a_guardrail_alarm_raised_after_the_start_fails_the_gates_before_any_traffic(
    rollout: Rollout, served: None
) -> None:
    rollout.gate_files()
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="orders-db-cpu-high",
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="orders-db-cpu-high", StateValue="OK", StateReason="40 % CPU")
    # What the start returns for an endpoint guarded by the database's alarm, which was OK then.
    started = rollout.start() | {"guardrails": {"alarms": ["orders-db-cpu-high"]}}
    # The alarm went to ALARM between the start's read and its record: the abort found no rollout yet.
    # (With the alarm OK the gates run as ever: tests/functional/test_rollout_guardrails.py.)
    cloudwatch.set_alarm_state(AlarmName="orders-db-cpu-high", StateValue="ALARM", StateReason="97 % CPU")
    deployed = rollout.run("check_deployment", rollout.run("deploy", started))
    state = rollout.run("gates", deployed)
    assert state["gates"]["passed"] is False
    assert (
        state["gates"]["reason"]
        == "endpoint churn: guardrail alarm(s) in ALARM: orders-db-cpu-high (97 % CPU)"
    )
    recorded = [e.payload for e in rollout.ledger() if e.payload.get("gate") == "guardrail_alarms"]
    assert [p["status"] for p in recorded] == ["failed"]


def test_a_golden_case_the_candidate_refuses_fails_the_gate_with_the_endpoints_answer(
    rollout: Rollout, served: None
) -> None:
    rollout.gate_files()
    golden = golden_document()
    broken = {
        **golden,
        "cases": [{**golden["cases"][0], "record": {"tenure_months": 3.0}}, *golden["cases"][1:]],
    }
    rollout.put_json(GATES_PREFIX + "golden.json", broken)
    state = rollout.gated()
    assert state["gates"]["passed"] is False
    case_id = golden["cases"][0]["case_id"]
    assert f"{case_id}: no prediction: ModelError" in state["gates"]["reason"]


def test_gates_before_the_candidate_is_deployed_are_refused(rollout: Rollout) -> None:
    rollout.gate_files()
    with pytest.raises(ValueError, match="before its candidate is deployed in service at 0 %"):
        rollout.run("gates", rollout.start())


def test_drifted_captured_requests_fail_the_drift_gate(rollout: Rollout, served: None) -> None:
    rollout.gate_files()
    # A categorical value beside the numeric feature is ignored; the tenure has moved far out.
    shifted: list[dict[str, Any]] = [{"tenure": 100.0 + v % 7, "plan": "pro"} for v in range(300)]
    key = f"data-capture/{ENDPOINT_NAME}/champion/2026/01/01/00/capture.jsonl"
    rollout.s3.put_object(Bucket=BUCKET, Key=key, Body=capture_file(shifted).encode())
    state = rollout.gated()
    assert state["gates"]["passed"] is False
    assert gate_statuses(rollout)["input_drift"] == "failed"


def test_gates_without_their_files_are_a_clear_error(rollout: Rollout, served: None) -> None:
    with pytest.raises(Exception, match=f"s3://{BUCKET}/{GATES_PREFIX}golden.json is missing") as raised:
        rollout.gated()
    assert type(raised.value).__name__ == "GateInputMissing"
