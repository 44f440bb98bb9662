"""The drift monitor's run: per endpoint, the champion's captured inputs against its training baseline.

For each endpoint (its stored settings under ``ENDPOINT_SETTINGS_PATH``, or ``DRIFT_ENDPOINTS``):

1. the running config (DescribeEndpoint, DescribeEndpointConfig) names the champion variant's model;
   DescribeModel names the package it was created from (its artifact is the package's,
   DescribeModelPackage) or its own model data URL;
2. ``<dir>/gates/baseline.json`` beside that ``<dir>/model.tar.gz`` is the training baseline (its key is
   listed first: without a listing permission S3 reports a missing key as AccessDenied);
3. the newest data-capture files of the champion variant give the captured inputs (read exactly as the
   rollout's drift gate reads them: ``lambdas/gates/aws/inputs.py``);
4. ``lambdas.retraining.drift.observe_drift`` measures PSI (and KS) per feature, and the largest PSI is
   published with PutMetricData as ``mlrollout/drift`` ``InputDriftPsiMax`` (dimension EndpointName).

No baseline, no data capture, or too few captured requests: nothing is published (a 0 would read as
"no drift") and a warning says why. One endpoint's failure does not stop the others; the run then fails
with every failing endpoint named, so the function's Errors metric shows it.

Environment: ``ENDPOINT_SETTINGS_PATH`` (or ``DRIFT_ENDPOINTS``, a JSON list of
``{"endpoint_name", "champion"}``), ``DRIFT_GATES``
(JSON ``GateSettings``: ``psi_max`` is the alarm's threshold), optional ``DRIFT_CAPTURE_FILES_MAX``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from aws_lambda_powertools import Logger
from pydantic import ValidationError

from lambdas.gates import TrainingBaseline
from lambdas.gates.aws.inputs import (
    BASELINE_FILE,
    GateFolder,
    GateInputMissing,
    captured_features,
    gates_folder_of_artifact,
    gates_folder_of_package,
    read_gate_json,
    records_captured_under,
)
from lambdas.retraining.drift import (
    DRIFT_NAMESPACE,
    BaselineUnreadable,
    ChampionArtifact,
    DriftMonitorFailed,
    DriftMonitorSettings,
    DriftObservation,
    MonitoredEndpoint,
    ObservationStatus,
    champion_artifact,
    champion_model_name,
    load_drift_settings,
    not_measured,
    observe_drift,
    psi_max_datum,
)
from lambdas.shared.aws_clients import CLIENT_CONFIG, ReadsObjects
from lambdas.shared.container import ContainerServices
from lambdas.shared.endpoint_config import DescribesEndpointConfigs, read_live_config
from lambdas.shared.endpoint_store import SettingsCatalog
from lambdas.shared.validation import describe_problems

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

__all__ = ["DriftServices", "PublishesMetrics", "build_services", "monitor", "services", "use"]

logger = Logger()


class DescribesChampion(DescribesEndpointConfigs, Protocol):
    """The SageMaker reads that name the champion's artifact (boto3's `sagemaker` client has them)."""

    def describe_model(self, *, ModelName: str) -> Mapping[str, Any]: ...
    def describe_model_package(self, *, ModelPackageName: str) -> Mapping[str, Any]: ...


class PublishesMetrics(Protocol):
    """CloudWatch PutMetricData (boto3's `cloudwatch` client has it)."""

    def put_metric_data(self, *, Namespace: str, MetricData: Any) -> Any: ...


@dataclass(frozen=True)
class DriftServices:
    settings: DriftMonitorSettings
    sagemaker: DescribesChampion
    s3: ReadsObjects
    cloudwatch: PublishesMetrics


def build_services(
    settings: DriftMonitorSettings,
    *,
    sagemaker: DescribesChampion | None = None,
    s3: ReadsObjects | None = None,
    cloudwatch: CloudWatchClient | PublishesMetrics | None = None,
) -> DriftServices:
    return DriftServices(
        settings=settings,
        # The sagemaker and s3 stubs are not installed; the clients have every call of the protocols.
        sagemaker=sagemaker or cast("DescribesChampion", boto3.client("sagemaker", config=CLIENT_CONFIG)),
        s3=s3 or cast("ReadsObjects", boto3.client("s3", config=CLIENT_CONFIG)),
        cloudwatch=cast(PublishesMetrics, cloudwatch or boto3.client("cloudwatch", config=CLIENT_CONFIG)),
    )


_container = ContainerServices(lambda: build_services(load_drift_settings(os.environ)))
use = _container.use
services = _container.get


def monitor(services: DriftServices) -> list[DriftObservation]:
    """Observe and publish every endpoint; DriftMonitorFailed names those that could not be observed."""
    observations: list[DriftObservation] = []
    failures: list[str] = []
    endpoints: Iterable[MonitoredEndpoint] = services.settings.endpoints
    if isinstance(services.settings.endpoints, SettingsCatalog):
        # An endpoint whose stored settings are unusable is a failure of its own; the others are observed.
        failures += [f"{name}: {problem}" for name, problem in services.settings.endpoints.problems.items()]
        endpoints = list(services.settings.endpoints.values())
    for endpoint in endpoints:
        try:
            observation = observe_endpoint(endpoint, services)
            publish(observation, services.cloudwatch)
        except Exception as error:  # one endpoint's fault must not blind the others
            logger.exception("drift not observed", extra={"endpoint_name": endpoint.endpoint_name})
            failures.append(f"{endpoint.endpoint_name}: {type(error).__name__}: {error}")
            continue
        observations.append(observation)
    if failures:
        raise DriftMonitorFailed(
            f"drift of {len(failures)} of {len(failures) + len(observations)} endpoints not observed: "
            + "; ".join(failures)
        )
    return observations


def observe_endpoint(endpoint: MonitoredEndpoint, services: DriftServices) -> DriftObservation:
    settings = services.settings
    live = read_live_config(services.sagemaker, endpoint.endpoint_name)
    model_name = champion_model_name(
        {"EndpointConfigName": live.name, "ProductionVariants": live.production_variants},
        endpoint.champion,
    )
    artifact = champion_artifact(services.sagemaker.describe_model(ModelName=model_name))
    try:
        baseline = read_baseline(services.s3, _gates_folder(artifact, services), artifact)
    except GateInputMissing as missing:
        return not_measured(
            endpoint_name=endpoint.endpoint_name,
            champion=artifact.described,
            status=ObservationStatus.NO_BASELINE,
            reason=f"the champion has no training baseline ({missing})",
            settings=settings.gates,
        )
    capture = live.carried.get("DataCaptureConfig")
    if not capture:
        return not_measured(
            endpoint_name=endpoint.endpoint_name,
            champion=artifact.described,
            status=ObservationStatus.INSUFFICIENT_DATA,
            reason=f"endpoint config {live.name} captures no requests",
            settings=settings.gates,
        )
    records = records_captured_under(
        capture,
        services.s3,
        endpoint_name=endpoint.endpoint_name,
        variant=endpoint.champion,
        files_max=settings.capture_files_max,
    )
    return observe_drift(
        endpoint_name=endpoint.endpoint_name,
        champion=artifact.described,
        baseline=baseline,
        captured=captured_features(records, baseline),
        settings=settings.gates,
    )


def _gates_folder(artifact: ChampionArtifact, services: DriftServices) -> GateFolder:
    if artifact.model_package_arn is not None:
        package = services.sagemaker.describe_model_package(ModelPackageName=artifact.model_package_arn)
        return gates_folder_of_package(package)
    return gates_folder_of_artifact(artifact.model_data_url or "", artifact.described)


def read_baseline(s3: ReadsObjects, folder: GateFolder, artifact: ChampionArtifact) -> TrainingBaseline:
    """The training baseline in ``folder``: GateInputMissing when there is none, BaselineUnreadable when
    the file is not one.

    S3 answers a GetObject of a missing key with AccessDenied, not NoSuchKey, unless the caller may list
    the bucket; this function may list baseline keys only, so it asks whether the key exists first.
    """
    bucket, prefix = folder
    key = prefix + BASELINE_FILE
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents") or []
    if not any(item["Key"] == key for item in listed):
        raise GateInputMissing(f"s3://{bucket}/{key} is missing")
    try:
        return TrainingBaseline.model_validate(read_gate_json(s3, folder, BASELINE_FILE))
    except json.JSONDecodeError as error:
        problems = f"not JSON ({error})"
    except ValidationError as error:
        problems = describe_problems(error, top_level="")
    raise BaselineUnreadable(
        f"s3://{bucket}/{key} of {artifact.described} is not a training baseline: {problems}"
    )


def publish(observation: DriftObservation, cloudwatch: PublishesMetrics) -> None:
    """The measured PSI as a datapoint; otherwise only a warning, so no data never reads as no drift."""
    detail = observation.model_dump(mode="json")
    datum = psi_max_datum(observation)
    if datum is None:
        logger.warning(f"drift of {observation.endpoint_name} {observation.reason}", extra=detail)
        return
    cloudwatch.put_metric_data(Namespace=DRIFT_NAMESPACE, MetricData=[datum])
    if observation.over_threshold:
        logger.warning(f"input drift on {observation.endpoint_name}: {observation.reason}", extra=detail)
    else:
        logger.info(f"drift of {observation.endpoint_name}: {observation.reason}", extra=detail)
