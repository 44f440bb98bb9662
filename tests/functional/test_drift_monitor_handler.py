"""The drift monitor's handler on moto: the champion's baseline and captured requests in S3, its metric
in CloudWatch, and nothing published (with a clear log) when there is nothing to compare."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.gates import GateSettings, TrainingBaseline
from lambdas.handlers import drift_monitor
from lambdas.retraining.aws import drift_monitor as drift_run
from lambdas.retraining.drift import DRIFT_NAMESPACE, PSI_MAX_METRIC, DriftMonitorFailed, DriftMonitorSettings
from tests.functional.rollout_support import IMAGE, ROLE, LambdaContextStub, capture_file

BUCKET = "mlrollout-dev-artifacts"
GROUP = "mlrollout-dev-churn"
CHURN = "mlrollout-dev-churn"
FRAUD = "mlrollout-dev-fraud"
FEATURES = ("monthly_charges", "tenure_months")
THRESHOLD = 0.2


def rows(count: int, seed: int, shift: float = 0.0) -> list[dict[str, Any]]:
    """Requests' records: two normal features; `shift` moves tenure by that many standard deviations."""
    rng = random.Random(seed)
    return [
        {"monthly_charges": rng.gauss(0, 1), "tenure_months": rng.gauss(shift, 1), "plan": "pro"}
        for _ in range(count)
    ]


@dataclass
class Cloud:
    sagemaker: Any
    s3: Any
    cloudwatch: Any

    def endpoint(self, name: str, model: str, *, capture: bool = True) -> None:
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-bootstrap",
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": weight,
                }
                for variant, weight in (("champion", 1.0), ("challenger", 0.0))
            ],
            **(
                {
                    "DataCaptureConfig": {
                        "EnableCapture": True,
                        "InitialSamplingPercentage": 100,
                        "DestinationS3Uri": f"s3://{BUCKET}/data-capture/{name.rsplit('-', 1)[1]}",
                        "CaptureOptions": [{"CaptureMode": "Input"}],
                    }
                }
                if capture
                else {}
            ),
        )
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-bootstrap")

    def model_from_package(self, name: str, folder: str) -> None:
        """A model as the rollout creates it: from a registered package, whose artifact is in `folder`."""
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{folder}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="Approved",
        )["ModelPackageArn"]
        self.sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": arn}]
        )

    def bootstrap_model(self, name: str, folder: str) -> None:
        """A model as CloudFormation creates it from the config: its own model data URL."""
        self.sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{folder}/model.tar.gz"},
        )

    def baseline(self, folder: str) -> None:
        training = rows(4000, seed=1)
        baseline = TrainingBaseline.from_columns({f: [row[f] for row in training] for f in FEATURES})
        self.s3.put_object(
            Bucket=BUCKET, Key=f"{folder}/gates/baseline.json", Body=baseline.model_dump_json().encode()
        )

    def captures(self, endpoint: str, hour: str, records: list[dict[str, Any]], files: int = 1) -> None:
        """`files` capture files of the champion in one hour's folder, as data capture names them."""
        family = endpoint.rsplit("-", 1)[1]
        share = len(records) // files
        for index in range(files):
            key = f"data-capture/{family}/{endpoint}/champion/{hour}/{index:02d}-00-000-file.jsonl"
            part = records[index * share : (index + 1) * share]
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=capture_file(part).encode())

    def published(self, endpoint: str) -> list[float]:
        """Every InputDriftPsiMax value of the endpoint, as the alarm would see them."""
        answer = self.cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "psi",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": DRIFT_NAMESPACE,
                            "MetricName": PSI_MAX_METRIC,
                            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            # moto stamps a datum with its receipt time; a narrow window keeps its per-period scan short.
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC) + timedelta(hours=1),
        )
        return [float(v) for v in answer["MetricDataResults"][0]["Values"]]

    def run(self, endpoints: tuple[str, ...] = (CHURN,), **settings: Any) -> list[dict[str, Any]]:
        drift_run.use(
            drift_run.build_services(
                DriftMonitorSettings.model_validate(
                    {
                        "endpoints": [{"endpoint_name": name, "champion": "champion"} for name in endpoints],
                        "gates": GateSettings(psi_max=THRESHOLD).model_dump(),
                        **settings,
                    }
                ),
                sagemaker=self.sagemaker,
                s3=self.s3,
                cloudwatch=self.cloudwatch,
            )
        )
        result: dict[str, Any] = drift_monitor.handler({"source": "aws.events"}, LambdaContextStub())
        endpoints_seen: list[dict[str, Any]] = result["endpoints"]
        return endpoints_seen


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield Cloud(sagemaker=sagemaker, s3=s3, cloudwatch=boto3.client("cloudwatch"))
    drift_run.use(None)


def logged(caplog: pytest.LogCaptureFixture, level: str) -> list[logging.LogRecord]:
    """The handler's log records of one level (Powertools' logger propagates to the root logger)."""
    return [record for record in caplog.records if record.levelname == level]


def test_shifted_inputs_publish_a_psi_above_the_threshold(cloud: Cloud) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    cloud.captures(CHURN, "2026/01/01/05", rows(400, seed=7, shift=1.0), files=4)

    [observation] = cloud.run()

    [value] = cloud.published(CHURN)
    assert value > THRESHOLD
    assert observation["status"] == "measured"
    assert observation["psi_max"] == value
    assert observation["drifted_features"] == ["tenure_months"]
    assert observation["captured_rows"] == 400
    assert "package arn:aws:sagemaker" in observation["champion"]


def test_inputs_like_the_training_data_publish_a_psi_below_the_threshold(cloud: Cloud) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    cloud.captures(CHURN, "2026/01/01/05", rows(400, seed=7), files=4)

    [observation] = cloud.run()

    [value] = cloud.published(CHURN)
    assert 0 <= value < THRESHOLD
    assert observation["drifted_features"] == []


def test_the_bootstrap_models_baseline_is_beside_its_own_model_data_url(cloud: Cloud) -> None:
    cloud.bootstrap_model("churn-bootstrap", "bootstrap/churn")
    cloud.baseline("bootstrap/churn")
    cloud.endpoint(CHURN, "churn-bootstrap")
    cloud.captures(CHURN, "2026/01/01/05", rows(300, seed=7, shift=1.0))

    [observation] = cloud.run()

    assert observation["champion"] == "model churn-bootstrap"
    assert cloud.published(CHURN)[0] > THRESHOLD


def test_only_the_newest_capture_files_are_read(cloud: Cloud) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    # Drifted a day ago; since then the inputs look like the training data again.
    cloud.captures(CHURN, "2026/01/01/05", rows(600, seed=7, shift=2.0), files=3)
    cloud.captures(CHURN, "2026/01/02/05", rows(300, seed=8), files=3)

    [observation] = cloud.run(capture_files_max=3)

    assert observation["captured_rows"] == 300
    assert cloud.published(CHURN)[0] < THRESHOLD


def test_no_baseline_publishes_nothing_and_logs_why(cloud: Cloud, caplog: pytest.LogCaptureFixture) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    cloud.captures(CHURN, "2026/01/01/05", rows(400, seed=7, shift=1.0))

    [observation] = cloud.run()

    assert cloud.published(CHURN) == []
    assert cloud.cloudwatch.list_metrics(Namespace=DRIFT_NAMESPACE)["Metrics"] == []
    assert observation["status"] == "no_baseline"
    assert observation["psi_max"] is None
    [warning] = logged(caplog, "WARNING")
    assert warning.getMessage().startswith(f"drift of {CHURN} not measured, nothing published: ")
    assert f"s3://{BUCKET}/models/churn/v2/gates/baseline.json is missing" in warning.getMessage()
    assert warning.__dict__["status"] == "no_baseline"


def test_too_few_captured_rows_publish_nothing_and_log_how_many(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    cloud.captures(CHURN, "2026/01/01/05", rows(150, seed=7, shift=3.0))

    [observation] = cloud.run()

    assert cloud.published(CHURN) == []
    assert observation["status"] == "insufficient_data"
    [warning] = logged(caplog, "WARNING")
    assert warning.getMessage() == (
        f"drift of {CHURN} not measured, nothing published: 150 captured requests, at least 200 "
        "needed to judge drift"
    )
    assert warning.__dict__["captured_rows"] == 150


def test_an_endpoint_without_data_capture_publishes_nothing_and_says_so(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2", capture=False)

    [observation] = cloud.run()

    assert cloud.published(CHURN) == []
    assert observation["status"] == "insufficient_data"
    assert observation["reason"].endswith(f"endpoint config {CHURN}-bootstrap captures no requests")


def test_one_failing_endpoint_does_not_stop_the_others_and_fails_the_run_naming_it(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    cloud.captures(CHURN, "2026/01/01/05", rows(400, seed=7, shift=1.0))
    # The fraud champion's baseline is broken: an error to fix, not "no baseline".
    cloud.bootstrap_model("fraud-v1", "models/fraud/v1")
    cloud.s3.put_object(Bucket=BUCKET, Key="models/fraud/v1/gates/baseline.json", Body=b'{"features": {}}')
    cloud.endpoint(FRAUD, "fraud-v1")

    with pytest.raises(
        DriftMonitorFailed,
        match=rf"1 of 2 endpoints not observed: {FRAUD}: BaselineUnreadable: "
        rf"s3://{BUCKET}/models/fraud/v1/gates/baseline.json of model fraud-v1 is not a training "
        "baseline: features: .*at least one feature",
    ):
        cloud.run((FRAUD, CHURN))

    assert cloud.published(CHURN)[0] > THRESHOLD
    assert [
        r.__dict__.get("endpoint_name") for r in logged(caplog, "ERROR") if "drift" in r.getMessage()
    ] == [FRAUD]


def test_the_real_services_are_built_from_the_environment(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.baseline("models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    cloud.captures(CHURN, "2026/01/01/05", rows(400, seed=7, shift=1.0))
    monkeypatch.setenv("DRIFT_ENDPOINTS", json.dumps([{"endpoint_name": CHURN, "champion": "champion"}]))
    monkeypatch.setenv("DRIFT_GATES", json.dumps({"psi_max": THRESHOLD}))
    drift_run.use(None)

    result = drift_monitor.handler({}, LambdaContextStub())

    assert result["endpoints"][0]["status"] == "measured"
    assert cloud.published(CHURN)[0] > THRESHOLD


class ListingOnlyBaselines:
    """S3 as the function's role sees it: a GetObject of a missing key is AccessDenied, not NoSuchKey."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def list_objects_v2(self, **request: Any) -> Any:
        return self.s3.list_objects_v2(**request)

    def get_object(self, *, Bucket: str, Key: str) -> Any:
        try:
            return self.s3.get_object(Bucket=Bucket, Key=Key)
        except self.s3.exceptions.NoSuchKey:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject"
            ) from None


def test_a_missing_baseline_is_found_missing_without_reading_it(cloud: Cloud) -> None:
    cloud.model_from_package("churn-v2", "models/churn/v2")
    cloud.endpoint(CHURN, "churn-v2")
    # A file whose name starts like the baseline's is not the baseline.
    cloud.s3.put_object(Bucket=BUCKET, Key="models/churn/v2/gates/baseline.json.old", Body=b"{}")
    cloud.s3 = ListingOnlyBaselines(cloud.s3)

    [observation] = cloud.run()

    assert observation["status"] == "no_baseline"
    assert f"s3://{BUCKET}/models/churn/v2/gates/baseline.json is missing" in observation["reason"]


def test_a_baseline_that_is_not_json_fails_naming_the_file(cloud: Cloud) -> None:
    cloud.bootstrap_model("churn-v1", "models/churn/v1")
    cloud.s3.put_object(Bucket=BUCKET, Key="models/churn/v1/gates/baseline.json", Body=b"{not json")
    cloud.endpoint(CHURN, "churn-v1")

    with pytest.raises(
        DriftMonitorFailed,
        match=r"models/churn/v1/gates/baseline.json of model churn-v1 is not a training baseline: not JSON",
    ):
        cloud.run()
