"""The gate over an evaluation report and the package it registers: metadata within SageMaker's limits,
the endpoint's serving image with the new artifact, the approval as configured."""

from __future__ import annotations

import pytest

from lambdas.gates import GateSettings
from lambdas.retraining.evaluation import GoldenCheck
from lambdas.retraining.gate import judge_report
from lambdas.retraining.registration import (
    METADATA_MAX_ENTRIES,
    RETRAINING_MAX_ENTRIES,
    InvalidMetadata,
    package_metadata,
    registration_request,
)
from lambdas.rollout.ledger import summarize
from tests.retraining_support import (
    DATA_VERSION,
    EXECUTION_ID,
    FAMILY,
    GROUP,
    INFERENCE_IMAGE,
    report,
    settings,
    trained_state,
)

MANIFEST = "s3://artifacts/retraining/churn-classifier/run/model/job/output/data-manifest.json"
MINIMUMS = GateSettings(minimum_metrics={"accuracy": 0.7, "auc": 0.75})


def test_a_report_above_every_minimum_with_its_golden_check_passes() -> None:
    verdict = judge_report(report(), MINIMUMS)
    assert verdict.passed
    assert "accuracy 0.91 >= 0.7" in verdict.reason and "auc 0.95 >= 0.75" in verdict.reason
    assert [check.metric for check in verdict.checks] == ["accuracy", "auc"]


def test_a_metric_below_its_minimum_fails_the_gate_with_the_numbers() -> None:
    verdict = judge_report(report(metrics={**report().metrics, "accuracy": 0.55}), MINIMUMS)
    assert not verdict.passed
    assert "accuracy 0.55 is below the minimum 0.7" in verdict.reason


def test_a_failed_golden_check_fails_the_gate_whatever_the_metrics() -> None:
    failed = report(golden_check=GoldenCheck(passed=False, detail="case loyal: label 1, expected 0"))
    verdict = judge_report(failed, MINIMUMS)
    assert not verdict.passed
    assert "golden check failed: case loyal: label 1, expected 0" in verdict.reason


def test_without_configured_minimums_only_the_golden_check_gates() -> None:
    verdict = judge_report(report(metrics={**report().metrics, "accuracy": 0.1}), GateSettings())
    assert verdict.passed
    assert "no metric minimums configured" in verdict.reason


def test_metadata_records_provenance_hyperparameters_and_metrics() -> None:
    metadata = package_metadata(trained_state(), report(), data_manifest_url=MANIFEST)
    assert metadata["data_version"] == DATA_VERSION
    assert metadata["code_version"] == "0.1.0+0123456789ab"
    assert metadata["model_version"] == "churn-classifier-0123456789ab"
    assert metadata["recipe"] == "logistic"
    assert (metadata["hp.C"], metadata["hp.max_iter"]) == ("1.0", "1000")
    assert metadata["metric.accuracy"] == "0.91"
    assert metadata["training_rows"] == "1200"
    assert metadata["data_manifest"] == MANIFEST
    assert metadata["retraining_execution"] == EXECUTION_ID
    assert metadata["retraining_trigger"] == "new_data"


def test_metadata_leaves_room_for_the_rollouts_summary() -> None:
    metadata = package_metadata(trained_state(), report(), data_manifest_url=MANIFEST)
    rollout_summary = summarize([])
    assert len(metadata) + len(rollout_summary) <= METADATA_MAX_ENTRIES
    many = {f"p{i}": i for i in range(RETRAINING_MAX_ENTRIES)}
    with pytest.raises(InvalidMetadata, match="metadata entries exceed the 42 a retrained package may have"):
        package_metadata(trained_state(), report(hyperparameters=many), data_manifest_url=MANIFEST)


def test_the_most_hyperparameters_that_fit_are_accepted() -> None:
    fixed = len(package_metadata(trained_state(), report(hyperparameters={}), data_manifest_url=MANIFEST))
    fitting = {f"p{i}": i for i in range(RETRAINING_MAX_ENTRIES - fixed)}
    metadata = package_metadata(trained_state(), report(hyperparameters=fitting), data_manifest_url=MANIFEST)
    assert len(metadata) == RETRAINING_MAX_ENTRIES


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"k" * 126: 1}, "is 129 characters (1-128)"),
        ({"layers": "x" * 257}, "metadata hp.layers: value is 257 characters, SageMaker allows 1-256"),
        ({"layers": ""}, "metadata hp.layers: value is 0 characters"),
        ({"layers": "[64, 32]"}, "metadata hp.layers: the value '[64, 32]' has characters SageMaker refuses"),
    ],
)
def test_an_entry_outside_sagemakers_limits_is_named(
    hyperparameters: dict[str, str | int], message: str
) -> None:
    with pytest.raises(InvalidMetadata) as raised:
        package_metadata(trained_state(), report(hyperparameters=hyperparameters), data_manifest_url=MANIFEST)
    assert message in str(raised.value)


def test_values_at_the_limits_are_accepted() -> None:
    at_limits = {"k" * 125: "v" * 256}
    metadata = package_metadata(
        trained_state(), report(hyperparameters=at_limits), data_manifest_url=MANIFEST
    )
    assert metadata["hp." + "k" * 125] == "v" * 256


@pytest.mark.parametrize(("approve", "status"), [(True, "Approved"), (False, "PendingManualApproval")])
def test_the_request_registers_the_serving_image_with_the_new_artifact(approve: bool, status: str) -> None:
    run = trained_state()
    request = registration_request(
        run,
        report(),
        settings().family(FAMILY),
        model_data_url="s3://a/model.tar.gz",
        evaluation_url="s3://a/evaluation.json",
        data_manifest_url=MANIFEST,
        approve=approve,
    )
    assert request["ModelPackageGroupName"] == GROUP
    assert request["ModelApprovalStatus"] == status
    assert request["InferenceSpecification"]["Containers"] == [
        {"Image": INFERENCE_IMAGE, "ModelDataUrl": "s3://a/model.tar.gz"}
    ]
    assert request["ModelMetrics"] == {
        "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://a/evaluation.json"}}
    }
    assert request["ClientToken"] == f"retraining-{run.run_id}"
    assert len(request["ClientToken"]) <= 36
    assert request["CustomerMetadataProperties"]["data_version"] == DATA_VERSION
