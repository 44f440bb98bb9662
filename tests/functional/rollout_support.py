"""Shared pieces of the rollout handler tests: environment, moto resources, UpdateEndpoint, metric data."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
REGION = "us-east-1"
# A test waiting for a workflow's state asks often at first, then less: each question is a boto3 call in
# the test's own process, and asked every 50 ms they were a third of the hold tests' CPU.
WAIT_POLL_SECONDS = (0.05, 0.25)
ACCOUNT = "123456789012"
ENDPOINT_NAME = "mlrollout-dev-churn"
GROUP = "mlrollout-dev-churn"
OTHER_GROUP = "mlrollout-dev-fraud"
LOCK_TABLE = "mlrollout-dev-rollout-locks"
LEDGER_TABLE = "mlrollout-dev-rollout-ledger"
TOPIC = "mlrollout-dev-notifications"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlrollout-dev-churn-sagemaker"
# The model the endpoint is bootstrapped with (`create_endpoint`).
BOOTSTRAP_MODEL = "churn-v1"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlrollout-inference:0.2.0"
BUCKET = "mlrollout-dev-artifacts"
CAPTURE_PREFIX = "data-capture"
GATES_PREFIX = f"models/{GROUP}/gates/"
BUSINESS_NAMESPACE = "mlrollout/business"
BUSINESS_NAME = "ConversionRate"
BAKE_MINUTES = 10
ENDPOINTS = {
    "churn": {
        "endpoint_name": ENDPOINT_NAME,
        "champion": "champion",
        "challenger": "challenger",
        "business_metric": {"namespace": BUSINESS_NAMESPACE, "name": BUSINESS_NAME},
        "model_package_group": GROUP,
        "execution_role_arn": ROLE,
        "rollback_alarm_names": ["mlrollout-dev-churn-composite"],
        "abort_alarm_name": "mlrollout-dev-churn-unhealthy",
        "rollout": {
            "strategy": "canary",
            "traffic_steps": [5, 25, 50, 100],
            "bake_minutes": BAKE_MINUTES,
            "max_bakes_per_step": 2,
            # Errors alone, with a guard the tests' few minutes of data can pass.
            "judge": {"metrics": ["errors"], "min_requests": 200},
            "gates": {"require_drift_data": False},
        },
    }
}
ENVIRONMENT = {
    "ENDPOINTS": json.dumps(ENDPOINTS),
    "LOCK_TABLE": LOCK_TABLE,
    "LEDGER_TABLE": LEDGER_TABLE,
    "TOPIC_ARN": TOPIC_ARN,
    "REPORT_BUCKET": BUCKET,
    "POWERTOOLS_SERVICE_NAME": "rollout",
    "POWERTOOLS_METRICS_NAMESPACE": "mlrollout",
}
START_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z, a whole minute


@dataclass
class Clock:
    now: float = float(START_TIME)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LambdaContextStub:
    function_name: str = "mlrollout-dev-rollout"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlrollout-dev-rollout"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"


class MotoSageMaker:
    """moto's SageMaker client plus the UpdateEndpoint that moto lacks.

    The stand-in switches moto's endpoint to the config, as SageMaker does once an update succeeds,
    unless `silently_roll_back` is set: then the endpoint stays in service on its old config.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.silently_roll_back = False
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self.updates.append(request)
        backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
        endpoint = backend.endpoints[request["EndpointName"]]
        config = backend.endpoint_configs[request["EndpointConfigName"]]
        if not self.silently_roll_back:
            endpoint.endpoint_config_name = config.endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        return {"EndpointArn": endpoint.arn}

    def weights(self) -> dict[str, float]:
        described = self._client.describe_endpoint(EndpointName=ENDPOINT_NAME)
        # moto leaves a weight of 0 out of the description.
        return {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}

    def running_models(self) -> list[tuple[str, str]]:
        config = self._client.describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointConfigName"]
        variants = self._client.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        return [(v["VariantName"], v["ModelName"]) for v in variants]


def create_tables(client: DynamoDBClient) -> None:
    """The lock and ledger tables as the stack defines them."""
    client.create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=LOCK_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    client.create_table(
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


def create_endpoint(client: Any) -> None:
    """The endpoint in its bootstrap shape: champion and an idle challenger on BOOTSTRAP_MODEL."""
    client.create_model(ModelName=BOOTSTRAP_MODEL, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    client.create_endpoint_config(
        EndpointConfigName=f"{ENDPOINT_NAME}-bootstrap",
        ProductionVariants=[
            {
                "VariantName": name,
                "ModelName": BOOTSTRAP_MODEL,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for name, weight in (("champion", 1.0), ("challenger", 0.0))
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/{CAPTURE_PREFIX}",
            "CaptureOptions": [{"CaptureMode": "Input"}],
        },
    )
    client.create_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=f"{ENDPOINT_NAME}-bootstrap")
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    client.create_model_package_group(ModelPackageGroupName=OTHER_GROUP)


def register_package(client: Any, group: str = GROUP) -> str:
    created = client.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{group}/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"data_version": "sha256-abc"},
    )
    return str(created["ModelPackageArn"])


@dataclass(frozen=True)
class Minute:
    """What one variant served in one minute."""

    requests: int
    errors_5xx: int = 0
    model_errors: int = 0
    latency_us: float | None = None
    trials: int = 0
    successes: int = 0

    def beside(self, challenger: Minute, challenger_percent: float) -> Minute:
        """This (the champion's) minute at its own rates, with as many requests as the weights give it
        beside the challenger's: the split the judge's sample-ratio check expects."""
        if not 0 < challenger_percent < 100:
            raise ValueError(f"a split needs both variants, got a challenger share of {challenger_percent} %")
        requests = round(challenger.requests * (100 - challenger_percent) / challenger_percent)
        factor = requests / self.requests if self.requests else 0.0
        return Minute(
            requests=requests,
            errors_5xx=round(self.errors_5xx * factor),
            model_errors=round(self.model_errors * factor),
            latency_us=self.latency_us,
            trials=round(self.trials * factor),
            successes=round(self.successes * factor),
        )


# The rollout tests' variants, per emulated minute: enough requests, latency samples and feedback for the
# judge's minimum-sample guards within one 10-minute bake; FAILING's 5 % of failed requests is far beyond
# the judge's 10 % relative error tolerance over an error-free champion.
HEALTHY = Minute(requests=3000, latency_us=20_000, trials=3000, successes=300)
FAILING = Minute(requests=3000, errors_5xx=150, latency_us=20_000, trials=3000, successes=300)


# Datapoints a PutMetricData call: its body stays under botocore's 10 KB threshold of gzip compression, which
# moto's signature check (under IAM enforcement) refuses as SignatureDoesNotMatch.
MAX_DATA_PER_PUT = 20


@dataclass
class MetricWriter:
    """Publishes per-variant minutes as SageMaker and the feedback handler do (aggregated values)."""

    client: CloudWatchClient
    endpoint_name: str = ENDPOINT_NAME

    def minutes(self, variant: str, start: int, served: list[Minute]) -> None:
        """`variant`'s minutes from `start` on, one a minute."""
        self._write([(variant, start + 60 * index, minute) for index, minute in enumerate(served)])

    def minute_of_each(self, start: int, served: Mapping[str, Minute]) -> None:
        """One minute of every variant in `served`, in one call per namespace."""
        self._write([(variant, start, minute) for variant, minute in served.items()])

    def _write(self, minutes: list[tuple[str, int, Minute]]) -> None:
        sagemaker: list[MetricDatumTypeDef] = []
        business: list[MetricDatumTypeDef] = []
        for variant, start, minute in minutes:
            timestamp = datetime.fromtimestamp(start + 5, UTC)
            counts: dict[str, tuple[float, int]] = {
                "Invocations": (minute.requests, 1),
                "Invocation5XXErrors": (minute.errors_5xx, 1),
                "InvocationModelErrors": (minute.model_errors, 1),
            }
            if minute.latency_us is not None and minute.requests:
                counts["ModelLatency"] = (minute.latency_us * minute.requests, minute.requests)
            sagemaker += self._data(variant, timestamp, counts)
            if minute.trials:
                business += self._data(variant, timestamp, {BUSINESS_NAME: (minute.successes, minute.trials)})
        # One call per namespace: each was a call per minute and variant, a tenth of a rollout test.
        for namespace, data in (("AWS/SageMaker", sagemaker), (BUSINESS_NAMESPACE, business)):
            for first in range(0, len(data), MAX_DATA_PER_PUT):
                self.client.put_metric_data(
                    Namespace=namespace, MetricData=data[first : first + MAX_DATA_PER_PUT]
                )

    def _data(
        self, variant: str, timestamp: datetime, values: Mapping[str, tuple[float, int]]
    ) -> list[MetricDatumTypeDef]:
        return [
            {
                "MetricName": name,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": self.endpoint_name},
                    {"Name": "VariantName", "Value": variant},
                ],
                "Timestamp": timestamp,
                "StatisticValues": {
                    "SampleCount": count,
                    "Sum": total,
                    "Minimum": total / count,
                    "Maximum": total / count,
                },
            }
            for name, (total, count) in values.items()
        ]


def capture_file(records: list[dict[str, Any]], per_request: int = 10) -> str:
    """SageMaker data-capture JSON lines: one line per request of `per_request` router instances."""
    lines = []
    for start in range(0, len(records), per_request):
        body = json.dumps({"instances": records[start : start + per_request]})
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": "application/json",
                            "mode": "INPUT",
                            "data": base64.b64encode(body.encode()).decode(),
                            "encoding": "BASE64",
                        }
                    },
                    "eventMetadata": {"eventId": f"event-{start}"},
                }
            )
        )
    return "\n".join(lines)


def wait_until(
    condition: Callable[[], T | None],
    what: str | Callable[[], str],
    deadline_seconds: float,
    pauses: tuple[float, float] = WAIT_POLL_SECONDS,
) -> T:
    """What `condition()` returns once it is true; past the deadline fails saying `what` (or what `what()`
    says). Asked at `pauses[0]` first, each pause half as long again, up to `pauses[1]`."""
    deadline = time.monotonic() + deadline_seconds
    pause, longest = pauses
    while not (value := condition()):
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said} not within {deadline_seconds} s")
        time.sleep(pause)
        pause = min(pause * 1.5, longest)
    return value
