"""Pre-traffic gates: golden inputs, metric thresholds and input drift, before the candidate sees a request.

Where the inputs are (beside the package's model artifact, ``s3://<bucket>/<dir>/model.tar.gz``):

* ``<dir>/gates/golden.json``          -- the golden cases (GoldenSet);
* ``<dir>/gates/golden_outputs.json``  -- ``{case_id: {"label": ..., "probabilities": [...]}}``, what this
                                          model version returned for them when it was evaluated;
* ``<dir>/gates/metrics.json``         -- its held-out metrics (``{"accuracy": 0.91, ...}``);
* ``<dir>/gates/baseline.json``        -- the training baseline (TrainingBaseline).

The champion's metrics come the same way from the package its model was created from (none when the
champion was not created from a package). Captured requests are the newest data-capture files of the
champion variant under the live endpoint config's capture destination; the numeric values of the
baseline's features are taken from each captured ``{"instances": [{feature: value, ...}]}`` request.
Every gate's result is recorded; ``gates.passed`` says whether the rollout may go on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from math import isfinite
from typing import Any
from urllib.parse import urlparse

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from lambdas.rollout.aws.endpoint_ops import read_live_config
from lambdas.rollout.aws.wiring import ReadsObjects, RolloutServices, run_task
from lambdas.rollout.gates import (
    CapturedFeatures,
    GoldenSet,
    Prediction,
    TrainingBaseline,
    evaluate_gates,
)
from lambdas.rollout.ledger import EntryKind, gate_payload
from lambdas.rollout.state import GatesStatus, RolloutState

logger = Logger()
tracer = Tracer()
metrics = Metrics()

GATES_FOLDER = "gates"
CAPTURE_FILES_MAX = 20
"""Newest capture files read: enough requests for the drift gate's minimum, bounded in time."""


class GateInputMissing(ValueError):
    """A file the gates need is not where the package says its artifacts are."""


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_task(event, run_gates)


def run_gates(state: RolloutState, services: RolloutServices) -> RolloutState:
    services.hold_lock(state)
    sagemaker, s3 = services.sagemaker, services.s3
    candidate = _gates_folder(
        sagemaker.describe_model_package(ModelPackageName=state.request.model_package_arn)
    )
    outputs = _read_json(s3, candidate, "golden_outputs.json")
    baseline = TrainingBaseline.model_validate(_read_json(s3, candidate, "baseline.json"))
    report = evaluate_gates(
        settings=state.gate_settings,
        golden=GoldenSet.model_validate(_read_json(s3, candidate, "golden.json")),
        challenger_outputs={case: Prediction.model_validate(output) for case, output in outputs.items()},
        candidate_metrics=_read_json(s3, candidate, "metrics.json"),
        champion_metrics=_champion_metrics(state, services),
        baseline=baseline,
        captured=_captured(state, services, baseline),
    )
    logger.info("gates evaluated", extra={"passed": report.passed, "reason": report.reason})
    for result in report.results():
        detail = result.model_dump(mode="json", exclude={"gate", "status"})
        state = services.record(
            state, EntryKind.GATE_RESULT, gate_payload(result.gate.value, result.status.value, detail)
        )
    return state.model_copy(update={"gates": GatesStatus(passed=report.passed, reason=report.reason)})


def _gates_folder(package: Mapping[str, Any]) -> tuple[str, str]:
    """(bucket, key prefix) of the package's gate files, beside its first container's artifact."""
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    artifact = str(containers[0].get("ModelDataUrl") or "")
    url = urlparse(artifact)
    if url.scheme != "s3" or not url.path.strip("/"):
        raise GateInputMissing(
            f"model package {package.get('ModelPackageArn')} names no S3 model artifact ({artifact!r}), "
            "so its gate files cannot be found"
        )
    folder = url.path.lstrip("/").rsplit("/", 1)[0]
    return url.netloc, f"{folder}/{GATES_FOLDER}/"


def _read_json(s3: ReadsObjects, folder: tuple[str, str], name: str) -> Any:
    bucket, prefix = folder
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise GateInputMissing(f"s3://{bucket}/{prefix}{name} is missing") from None
        raise
    return json.loads(body)


def _champion_metrics(state: RolloutState, services: RolloutServices) -> dict[str, float] | None:
    if state.champion_model is None:
        return None
    model = services.sagemaker.describe_model(ModelName=state.champion_model)
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    packages = [str(c["ModelPackageName"]) for c in containers if c.get("ModelPackageName")]
    if not packages:
        return None  # the bootstrap model from the config: nothing registered to compare with
    folder = _gates_folder(services.sagemaker.describe_model_package(ModelPackageName=packages[0]))
    metrics_of_champion: dict[str, float] = _read_json(services.s3, folder, "metrics.json")
    return metrics_of_champion


def _captured(state: RolloutState, services: RolloutServices, baseline: TrainingBaseline) -> CapturedFeatures:
    features = sorted(baseline.features)
    rows = [row for row in _captured_records(state, services) if all(_number(row.get(f)) for f in features)]
    return CapturedFeatures(features={f: tuple(float(row[f]) for row in rows) for f in features})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)


def _captured_records(state: RolloutState, services: RolloutServices) -> Iterator[dict[str, Any]]:
    request = state.request
    capture = read_live_config(services.sagemaker, request.endpoint_name).carried.get("DataCaptureConfig")
    if not capture:
        return
    url = urlparse(str(capture["DestinationS3Uri"]))
    prefix = f"{url.path.strip('/')}/{request.endpoint_name}/{request.variants.champion}/".lstrip("/")
    listed = services.s3.list_objects_v2(Bucket=url.netloc, Prefix=prefix).get("Contents") or []
    newest = sorted(listed, key=lambda item: item["LastModified"], reverse=True)[:CAPTURE_FILES_MAX]
    for item in newest:
        body = services.s3.get_object(Bucket=url.netloc, Key=item["Key"])["Body"].read().decode()
        for line in body.splitlines():
            yield from _instances(line)


def _instances(line: str) -> Iterator[dict[str, Any]]:
    """The records of one captured request; anything else (CSV, arrays, broken lines) is skipped."""
    try:
        captured = json.loads(line)["captureData"]["endpointInput"]
        data = captured["data"]
        if captured.get("encoding") == "BASE64":
            data = base64.b64decode(data).decode()
        instances = json.loads(data).get("instances", [])
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    yield from (record for record in instances if isinstance(record, dict))
