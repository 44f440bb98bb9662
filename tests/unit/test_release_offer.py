"""The release chain's domain: what an offer carries to the next environment, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.release.offer import (
    DETAIL_TYPE,
    EVENT_SOURCE,
    METADATA_ENTRIES_MAX,
    ReleaseOffer,
    evidence_metadata,
    offer_entry,
)
from lambdas.release.settings import ReleaseSettings
from lambdas.release.workflow import (
    ReleaseRefused,
    ReleaseServices,
    ReleaseState,
    StepError,
    register,
    reject,
)

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlrollout-staging-churn/3"
PROD_PACKAGES = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlrollout-prod-churn"
SUMMARY = {
    "rollout.id": "arn:aws:states:us-east-1:123456789012:execution:mlrollout-staging-rollout:run-1",
    "rollout.outcome": "promoted",
    "rollout.verdicts": "25pct=promote 50pct=promote",
}


def offer(**changes: Any) -> ReleaseOffer:
    fields: dict[str, Any] = {
        "source_environment": "staging",
        "target_environment": "prod",
        "endpoint": "churn",
        "model_package_arn": PACKAGE,
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-inference:0.2.0",
        "model_data_url": "s3://mlrollout-staging-registryartifacts-x/models/mlrollout-staging-churn/v3/model.tar.gz",
        "rollout_id": SUMMARY["rollout.id"],
        "metadata": {**SUMMARY, "training.data-version": "sha256-abc"},
    }
    return ReleaseOffer.model_validate(fields | changes)


def test_the_evidence_keeps_the_source_rollout_under_its_environment_and_the_provenance_as_is() -> None:
    metadata = evidence_metadata(offer())
    assert metadata["staging.rollout.outcome"] == "promoted"
    assert metadata["staging.rollout.verdicts"] == "25pct=promote 50pct=promote"
    assert metadata["staging.rollout.id"] == SUMMARY["rollout.id"]
    assert metadata["training.data-version"] == "sha256-abc"
    assert metadata["release.source-environment"] == "staging"
    assert metadata["release.source-package"] == PACKAGE
    # The next environment's own rollout writes rollout.*: nothing of the source's is left there.
    assert not [key for key in metadata if key.startswith("rollout.")]


def test_the_evidence_stays_within_sagemakers_metadata_limits() -> None:
    crowded = {f"training.k{i:03d}": "v" for i in range(80)} | SUMMARY | {"bad key!": "x", "long": "v" * 257}
    metadata = evidence_metadata(offer(metadata=crowded))
    assert len(metadata) == METADATA_ENTRIES_MAX
    assert metadata["staging.rollout.outcome"] == "promoted"  # the evidence goes first
    assert "bad key!" not in metadata and "long" not in metadata
    assert all(0 < len(key) <= 128 and len(value) <= 256 for key, value in metadata.items())


def test_the_entry_carries_the_offer_on_the_release_source() -> None:
    entry = offer_entry(offer())
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        EVENT_SOURCE,
        DETAIL_TYPE,
        "default",
    )
    assert ReleaseOffer.model_validate(json.loads(entry["Detail"])) == offer()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"metadata": {**SUMMARY, "rollout.outcome": "rolled_back"}}, "was not promoted in 'staging'"),
        ({"metadata": {}}, "outcome: none recorded"),
        ({"target_environment": "staging"}, "comes from 'staging' itself"),
    ],
)
def test_only_a_promoted_package_moves_on(changes: dict[str, Any], problem: str) -> None:
    refusal = offer(**changes).refusal()
    assert refusal is not None and problem in refusal


def test_an_offer_with_a_bad_field_is_invalid() -> None:
    with pytest.raises(ValidationError, match="model_package_arn"):
        offer(model_package_arn="arn:aws:s3:::not-a-package")


class Recording:
    """Records the calls of the registry, S3 and SNS clients the release functions make."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_model_package(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("create_model_package", request))
        return {
            "ModelPackageArn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlrollout-prod-churn/1"
        }

    def update_model_package(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("update_model_package", request))
        return {}

    def copy_object(self, **request: Any) -> None:
        self.calls.append(("copy_object", request))

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        prefix = request["Prefix"]
        return {"Contents": [{"Key": f"{prefix}golden.json"}, {"Key": f"{prefix}metrics.json"}]}

    def publish(self, **request: Any) -> None:
        self.calls.append(("publish", request))


def services(recording: Recording) -> ReleaseServices:
    settings = ReleaseSettings(
        endpoints={"churn": {"model_package_group": "mlrollout-prod-churn"}},
        environment="prod",
        source_environment="staging",
        artifact_bucket="mlrollout-prod-registryartifacts-y",
        topic_arn="arn:aws:sns:eu-west-1:123456789012:mlrollout-prod-notifications",
    )
    return ReleaseServices(settings=settings, sagemaker=recording, s3=recording, sns=recording)


def test_registering_copies_the_model_and_its_gate_files_and_waits_for_approval() -> None:
    recording = Recording()
    state = register(offer(), services(recording))
    copies = [request["Key"] for name, request in recording.calls if name == "copy_object"]
    folder = "models/released/mlrollout-prod-churn/staging/mlrollout-staging-churn/v3"
    assert copies == [f"{folder}/model.tar.gz", f"{folder}/gates/golden.json", f"{folder}/gates/metrics.json"]
    [(_, created)] = [call for call in recording.calls if call[0] == "create_model_package"]
    assert created["ModelApprovalStatus"] == "PendingManualApproval"
    assert created["ModelPackageGroupName"] == "mlrollout-prod-churn"
    container = created["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == f"s3://mlrollout-prod-registryartifacts-y/{folder}/model.tar.gz"
    assert created["CustomerMetadataProperties"]["staging.rollout.outcome"] == "promoted"
    assert state.model_package_arn is not None and state.model_package_arn.endswith("/1")
    # The same offer delivered twice asks for the same package: SageMaker's idempotency token.
    again = Recording()
    register(offer(), services(again))
    [(_, recreated)] = [call for call in again.calls if call[0] == "create_model_package"]
    assert recreated["ClientToken"] == created["ClientToken"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"target_environment": "qa"}, "the offer is for 'qa', this is 'prod'"),
        ({"source_environment": "dev"}, "takes packages from 'staging' only"),
        ({"endpoint": "fraud"}, "has no endpoint 'fraud'"),
        ({"metadata": {"rollout.outcome": "rolled_back"}}, "was not promoted"),
    ],
)
def test_an_offer_that_cannot_be_taken_is_refused_and_nothing_is_created(
    changes: dict[str, Any], problem: str
) -> None:
    recording = Recording()
    with pytest.raises(ReleaseRefused, match=problem):
        register(offer(**changes), services(recording))
    assert recording.calls == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"Error": "States.Timeout"}, "rejected: nobody approved the release before its approval timed out"),
        ({"Error": "Rejected", "Cause": "holdout drifted"}, "rejected by a person: holdout drifted"),
        ({"Error": "Rejected", "Cause": None}, "rejected by a person: no reason given"),
    ],
)
def test_a_rejection_says_why_and_is_told(error: dict[str, Any], reason: str) -> None:
    recording = Recording()
    state = ReleaseState(offer=offer(), model_package_arn="arn:p/1", error=StepError.model_validate(error))
    reject(state, services(recording))
    [(_, update)] = [call for call in recording.calls if call[0] == "update_model_package"]
    assert (update["ModelApprovalStatus"], update["ApprovalDescription"]) == ("Rejected", reason)
    [(_, told)] = [call for call in recording.calls if call[0] == "publish"]
    assert json.loads(told["Message"])["reason"] == reason
