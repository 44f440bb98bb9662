"""Builds the router's service from the settings, creating each boto3 client unless one is given.

Called on a function's first request (not at import), so moto in tests sees every client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import boto3
from botocore.config import Config

from lambdas.serving.aws.flags import AppConfigFlagSource
from lambdas.serving.aws.invoker import SageMakerInvoker
from lambdas.serving.aws.store import STORE_CONFIG, DynamoDBInferenceStore
from lambdas.serving.aws.weights import DescribesEndpoints, EndpointWeightSource
from lambdas.serving.inference import Predictor
from lambdas.serving.ports import FlagSource, WeightSource
from lambdas.serving.settings import RouterSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

# Worst case within the router's 30 s budget (the HTTP API's limit): flags and weights at most 3 s each
# (no retry: a failed read backs off and falls back), the model two tries of at most 2 + 8 s, the store
# two of 1 + 1 s. A slow model call ends as this function's 504, not as the API's own timeout.
CONTROL_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=2
)
RUNTIME_CONFIG = Config(
    retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=8
)


def build_predictor(
    settings: RouterSettings,
    *,
    runtime: SageMakerRuntimeClient | None = None,
    dynamodb: DynamoDBClient | None = None,
    sagemaker: DescribesEndpoints | None = None,
    flag_source: FlagSource | None = None,
    weight_source: WeightSource | None = None,
) -> Predictor:
    return Predictor(
        endpoints=settings.endpoints,
        flags=flag_source or _flag_source(settings),
        weights=weight_source or _weight_source(settings, sagemaker),
        invoker=SageMakerInvoker(runtime or boto3.client("sagemaker-runtime", config=RUNTIME_CONFIG)),
        store=DynamoDBInferenceStore(
            client=dynamodb or boto3.client("dynamodb", config=STORE_CONFIG),
            table_name=settings.inference_table,
        ),
        ttl_days=settings.inference_ttl_days,
    )


def _flag_source(settings: RouterSettings) -> AppConfigFlagSource:
    return AppConfigFlagSource(
        application=settings.appconfig_application,
        environment=settings.appconfig_environment,
        profile=settings.appconfig_profile,
        ttl_seconds=settings.flags_ttl_seconds,
        catalog=settings.catalog,
        client=boto3.client("appconfigdata", config=CONTROL_CONFIG),
    )


def _weight_source(settings: RouterSettings, client: DescribesEndpoints | None) -> EndpointWeightSource:
    if client is None:
        # The sagemaker stubs are not installed; the client's describe_endpoint matches the protocol.
        client = cast("DescribesEndpoints", boto3.client("sagemaker", config=CONTROL_CONFIG))
    return EndpointWeightSource(client=client, ttl_seconds=settings.weights_ttl_seconds)
