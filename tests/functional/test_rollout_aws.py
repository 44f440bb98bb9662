"""The rollout adapters against moto: the endpoint lock, the evidence ledger, SageMaker and the registry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from lambdas.locking.aws.lock_table import DynamoDBLockTable
from lambdas.locking.lock import EndpointLock, EndpointLocked, NotLockHolder
from lambdas.rollout.aws.endpoint_ops import (
    DeploymentState,
    PackageNotInFamily,
    SageMakerControl,
    SilentRollbackDetected,
    approve_package,
    challenger_config_request,
    config_name_for,
    create_endpoint_config,
    create_model_from_package,
    ensure_running,
    model_name_for,
    read_live_config,
    reject_package,
    resting_config_request,
    set_weights,
    update_endpoint,
    update_endpoint_request,
    wait_for_deployment,
)
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.ledger import (
    EntryKind,
    Ledger,
    LedgerConflict,
    LedgerEntry,
    gate_payload,
    summarize,
    traffic_payload,
)
from lambdas.rollout.payloads import VariantNames
from lambdas.rollout.traffic import step_weights

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENDPOINT = "mlrollout-dev-churn"
LOCK_TABLE = "mlrollout-dev-rollout-locks"
LEDGER_TABLE = "mlrollout-dev-rollout-ledger"
LEASE = 600


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBClient:
    return boto3.client("dynamodb", region_name="us-east-1")


# --- the endpoint lock ----------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lock(dynamodb: DynamoDBClient, clock: Clock) -> EndpointLock:
    dynamodb.create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return EndpointLock(
        DynamoDBLockTable(client=dynamodb, table_name=LOCK_TABLE), lease_seconds=LEASE, clock=clock
    )


def stored_lock(dynamodb: DynamoDBClient) -> dict[str, str]:
    item = dynamodb.get_item(TableName=LOCK_TABLE, Key={"endpoint": {"S": ENDPOINT}}, ConsistentRead=True)
    return {name: str(value.get("S", value.get("N"))) for name, value in item.get("Item", {}).items()}


def test_lock_is_stored_with_holder_and_expiry(
    lock: EndpointLock, dynamodb: DynamoDBClient, clock: Clock
) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    now = int(clock.now)
    assert stored_lock(dynamodb) == {
        "endpoint": ENDPOINT,
        "holder": "exec-1",
        "acquired_at": str(now),
        "expires_at": str(now + LEASE),
    }


def test_lock_refuses_a_second_rollout_naming_the_holder(lock: EndpointLock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    with pytest.raises(EndpointLocked, match="locked by rollout exec-1"):
        lock.acquire(ENDPOINT, "exec-2")


def test_lock_reacquired_by_its_holder_is_unchanged(
    lock: EndpointLock, dynamodb: DynamoDBClient, clock: Clock
) -> None:
    first = lock.acquire(ENDPOINT, "exec-1")
    before = stored_lock(dynamodb)
    clock.now += 60
    assert lock.acquire(ENDPOINT, "exec-1") == first
    assert stored_lock(dynamodb) == before


def test_lock_is_released_only_by_its_holder(lock: EndpointLock, dynamodb: DynamoDBClient) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    assert lock.release(ENDPOINT, "exec-2") is False
    assert stored_lock(dynamodb)["holder"] == "exec-1"
    assert lock.release(ENDPOINT, "exec-1") is True
    assert stored_lock(dynamodb) == {}
    assert lock.release(ENDPOINT, "exec-1") is False


def test_expired_lock_is_taken_over_and_the_old_holder_cannot_renew(lock: EndpointLock, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "crashed")
    clock.now += LEASE + 1
    assert lock.acquire(ENDPOINT, "exec-2").holder == "exec-2"
    with pytest.raises(NotLockHolder):
        lock.renew(ENDPOINT, "crashed")
    assert lock.release(ENDPOINT, "crashed") is False


def test_lock_renewal_pushes_the_expiry(lock: EndpointLock, dynamodb: DynamoDBClient, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    clock.now += 300
    renewed = lock.renew(ENDPOINT, "exec-1")
    assert renewed.expires_at == int(clock.now) + LEASE
    assert stored_lock(dynamodb)["expires_at"] == str(renewed.expires_at)


# --- the evidence ledger ----------------------------------------------------------------------------


@pytest.fixture
def ledger(dynamodb: DynamoDBClient) -> Ledger:
    dynamodb.create_table(
        TableName=LEDGER_TABLE,
        KeySchema=[
            {"AttributeName": "rollout_id", "KeyType": "HASH"},
            {"AttributeName": "sequence", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "rollout_id", "AttributeType": "S"},
            {"AttributeName": "sequence", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return Ledger(DynamoDBLedgerStore(client=dynamodb, table_name=LEDGER_TABLE))


def ledger_entry(
    sequence: int, kind: EntryKind, payload: Mapping[str, object], rollout_id: str = "exec-1"
) -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "rollout_id": rollout_id,
            "sequence": sequence,
            "recorded_at": 1_700_000_000 + sequence,
            "kind": kind,
            "payload": payload,
        }
    )


def test_ledger_appends_and_reads_back_in_sequence_order(ledger: Ledger) -> None:
    written = [
        ledger_entry(10, EntryKind.TRAFFIC_STEP, traffic_payload(0, 5, 950, 50)),
        ledger_entry(2, EntryKind.GATE_RESULT, gate_payload("golden", "passed", {"cases": 12, "tol": 1e-6})),
        ledger_entry(0, EntryKind.DEPLOYMENT, {"action": "deploy_challenger", "endpoint_config": "cfg"}),
    ]
    assert all(ledger.append(entry) for entry in written)
    assert ledger.entries("exec-1") == sorted(written, key=lambda e: e.sequence)


def test_ledger_ignores_a_retried_entry_and_keeps_the_recorded_one(ledger: Ledger) -> None:
    first = ledger_entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "passed"))
    ledger.append(first)
    retry = first.model_copy(update={"recorded_at": first.recorded_at + 60})
    assert ledger.append(retry) is False
    with pytest.raises(LedgerConflict):
        ledger.append(ledger_entry(0, EntryKind.GATE_RESULT, gate_payload("golden", "failed")))
    assert ledger.entries("exec-1") == [first]


def test_ledger_reads_every_page_of_a_long_rollout(ledger: Ledger) -> None:
    # 22 entries of 60 kB are more than DynamoDB returns in one 1 MB page.
    big = {"blob": "x" * 60_000}
    for sequence in range(22):
        ledger.append(ledger_entry(sequence, EntryKind.DEPLOYMENT, big))
    assert [e.sequence for e in ledger.entries("exec-1")] == list(range(22))


def test_ledger_summary_is_built_from_the_stored_entries(ledger: Ledger) -> None:
    ledger.append(ledger_entry(0, EntryKind.GATE_RESULT, gate_payload("metrics", "passed")))
    ledger.append(ledger_entry(1, EntryKind.TRAFFIC_STEP, traffic_payload(0, 25, 750, 250)))
    ledger.append(ledger_entry(2, EntryKind.OUTCOME, {"status": "promoted", "reason": ""}))
    summary = summarize(ledger.entries("exec-1"))
    assert summary["rollout.outcome"] == "promoted"
    assert summary["rollout.traffic"] == "25pct:750/250"
    assert summary["rollout.gates"] == "metrics=passed"


# --- SageMaker: models, endpoint configs, updates, weights ------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/mlrollout-dev-churn-sagemaker"
GROUP = "mlrollout-dev-churn"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-inference:0.2.0"
VARIANTS = VariantNames()


class MotoSageMaker:
    """moto's SageMaker client, plus the UpdateEndpoint that moto lacks (it raises NotImplementedError).

    The stand-in switches moto's endpoint to the config, as SageMaker does once an update succeeds,
    unless `silently_roll_back` is set: then the endpoint stays on its old config and in service, as
    after a SageMaker rollback. Every UpdateEndpoint request is kept for the tests to read.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.silently_roll_back = False
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self.updates.append(request)
        backend = sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        endpoint = backend.endpoints[request["EndpointName"]]
        config = backend.endpoint_configs[request["EndpointConfigName"]]
        if not self.silently_roll_back:
            endpoint.endpoint_config_name = config.endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        return {"EndpointArn": endpoint.arn}


@pytest.fixture
def sagemaker(aws: None) -> MotoSageMaker:
    """An endpoint in its bootstrap shape (champion + idle challenger on churn-v1) and a package group."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    client.create_model(ModelName="churn-v1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    client.create_endpoint_config(
        EndpointConfigName=f"{ENDPOINT}-bootstrap",
        ProductionVariants=[
            {
                "VariantName": name,
                "ModelName": "churn-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for name, weight in (("champion", 1.0), ("challenger", 0.0))
        ],
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/abc",
    )
    client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-bootstrap")
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    return MotoSageMaker(client)


def control(sagemaker: MotoSageMaker) -> SageMakerControl:
    return cast(SageMakerControl, sagemaker)


def register_package(sagemaker: MotoSageMaker, group: str = GROUP) -> str:
    if group != GROUP:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    created = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://artifacts/models/churn/v2/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"data_version": "sha256-abc", "code_version": "1a2b3c"},
    )
    return str(created["ModelPackageArn"])


def deploy_challenger(
    sagemaker: MotoSageMaker, package: str | None = None, rollout_id: str = "exec-1"
) -> tuple[str, str]:
    """Model from the package, the deploy config, UpdateEndpoint: the steps a rollout takes first."""
    package = package or register_package(sagemaker)
    model = create_model_from_package(
        control(sagemaker),
        model_name=model_name_for(ENDPOINT, package),
        model_package_arn=package,
        execution_role_arn=ROLE,
        expected_group=GROUP,
    )
    live = read_live_config(control(sagemaker), ENDPOINT)
    config = create_endpoint_config(
        control(sagemaker),
        challenger_config_request(
            config_name_for(ENDPOINT, rollout_id, "deploy"),
            live,
            VARIANTS,
            challenger_model=model,
            shadow=False,
        ),
    )
    update_endpoint(control(sagemaker), update_endpoint_request(ENDPOINT, config))
    return model, config


def no_sleep(_: float) -> None:
    raise AssertionError("moto's endpoint never reports an update in progress")


def test_model_is_created_from_the_registered_package(sagemaker: MotoSageMaker) -> None:
    package = register_package(sagemaker)
    name = create_model_from_package(
        control(sagemaker),
        model_name="churn-v2",
        model_package_arn=package,
        execution_role_arn=ROLE,
        expected_group=GROUP,
    )
    assert sagemaker.describe_model(ModelName=name)["Containers"] == [{"ModelPackageName": package}]


def test_a_package_of_another_family_creates_no_model(sagemaker: MotoSageMaker) -> None:
    package = register_package(sagemaker, group="mlrollout-dev-fraud")
    with pytest.raises(PackageNotInFamily, match="mlrollout-dev-fraud"):
        create_model_from_package(
            control(sagemaker),
            model_name="x",
            model_package_arn=package,
            execution_role_arn=ROLE,
            expected_group=GROUP,
        )
    assert [model["ModelName"] for model in sagemaker.list_models()["Models"]] == ["churn-v1"]


def test_the_live_config_is_read_from_the_running_endpoint(sagemaker: MotoSageMaker) -> None:
    live = read_live_config(control(sagemaker), ENDPOINT)
    assert live.name == f"{ENDPOINT}-bootstrap"
    assert live.variant("champion")["ModelName"] == "churn-v1"
    assert live.carried == {"KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/abc"}


def test_deployed_challenger_runs_beside_the_champion_at_weight_zero(sagemaker: MotoSageMaker) -> None:
    model, config = deploy_challenger(sagemaker)
    ensure_running(wait_for_deployment(control(sagemaker), ENDPOINT, config, sleep=no_sleep))
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    assert [(v["VariantName"], v["ModelName"], v["InitialVariantWeight"]) for v in variants] == [
        ("champion", "churn-v1", 100.0),
        ("challenger", model, 0.0),
    ]
    assert sagemaker.updates[0]["RetainAllVariantProperties"] is False


def test_a_retried_deploy_creates_the_same_model_and_config_and_runs_it(sagemaker: MotoSageMaker) -> None:
    package = register_package(sagemaker)
    first = deploy_challenger(sagemaker, package)
    assert deploy_challenger(sagemaker, package) == first
    assert len(sagemaker.updates) == 1
    assert [model["ModelName"] for model in sagemaker.list_models()["Models"]] == ["churn-v1", first[0]]
    ensure_running(wait_for_deployment(control(sagemaker), ENDPOINT, first[1], sleep=no_sleep))


def test_a_silent_rollback_is_detected(sagemaker: MotoSageMaker) -> None:
    sagemaker.silently_roll_back = True
    _, config = deploy_challenger(sagemaker)
    report = wait_for_deployment(control(sagemaker), ENDPOINT, config, sleep=no_sleep)
    assert report.state is DeploymentState.ROLLED_BACK
    with pytest.raises(SilentRollbackDetected, match=f"runs config {ENDPOINT}-bootstrap, not {config}"):
        ensure_running(report)


def test_traffic_step_weights_reach_the_endpoint(sagemaker: MotoSageMaker) -> None:
    deploy_challenger(sagemaker)
    set_weights(control(sagemaker), ENDPOINT, step_weights(5, VARIANTS), VARIANTS)
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in sagemaker.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    }
    assert weights == {"champion": 95.0, "challenger": 5.0}


def test_promotion_makes_the_candidate_the_champion(sagemaker: MotoSageMaker) -> None:
    model, _ = deploy_challenger(sagemaker)
    live = read_live_config(control(sagemaker), ENDPOINT)
    promote = create_endpoint_config(
        control(sagemaker),
        resting_config_request(
            config_name_for(ENDPOINT, "exec-1", "promote"), live, VARIANTS, champion_model=model
        ),
    )
    update_endpoint(control(sagemaker), update_endpoint_request(ENDPOINT, promote))
    ensure_running(wait_for_deployment(control(sagemaker), ENDPOINT, promote, sleep=no_sleep))
    assert read_live_config(control(sagemaker), ENDPOINT).variant("champion")["ModelName"] == model


def test_rollback_restores_the_champion_model_alone(sagemaker: MotoSageMaker) -> None:
    deploy_challenger(sagemaker)
    live = read_live_config(control(sagemaker), ENDPOINT)
    rollback = create_endpoint_config(
        control(sagemaker),
        resting_config_request(
            config_name_for(ENDPOINT, "exec-1", "rollback"),
            live,
            VARIANTS,
            champion_model="churn-v1",
            keep_idle_slot=False,
        ),
    )
    update_endpoint(control(sagemaker), update_endpoint_request(ENDPOINT, rollback))
    ensure_running(wait_for_deployment(control(sagemaker), ENDPOINT, rollback, sleep=no_sleep))
    variants = read_live_config(control(sagemaker), ENDPOINT).production_variants
    assert [(v["VariantName"], v["ModelName"]) for v in variants] == [("champion", "churn-v1")]


# --- the model registry -----------------------------------------------------------------------------


def test_approval_writes_the_summary_beside_the_existing_metadata(sagemaker: MotoSageMaker) -> None:
    package = register_package(sagemaker)
    approve_package(
        control(sagemaker), package, {"rollout.outcome": "promoted"}, "promoted by rollout exec-1"
    )
    described = sagemaker.describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "promoted by rollout exec-1"
    assert described["CustomerMetadataProperties"] == {
        "data_version": "sha256-abc",
        "code_version": "1a2b3c",
        "rollout.outcome": "promoted",
    }


def test_rejection_records_the_reason_and_the_summary(sagemaker: MotoSageMaker) -> None:
    package = register_package(sagemaker)
    reason = "judge: errors: rate ratio lower bound 2.1 above tolerance 1.1 " + "x" * 2000
    reject_package(control(sagemaker), package, {"rollout.outcome": "rolled_back"}, reason)
    described = sagemaker.describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == reason[:1024]
    assert described["CustomerMetadataProperties"]["rollout.outcome"] == "rolled_back"
    assert described["CustomerMetadataProperties"]["data_version"] == "sha256-abc"
