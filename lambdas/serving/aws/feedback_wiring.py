"""Builds the feedback service from the settings, creating its DynamoDB client unless one is given.

Apart from the router's wiring so the feedback function does not load the AppConfig provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3

from lambdas.serving.aws.store import STORE_CONFIG, DynamoDBInferenceStore
from lambdas.serving.feedback import FeedbackRecorder
from lambdas.serving.settings import FeedbackSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def build_feedback_recorder(
    settings: FeedbackSettings, *, dynamodb: DynamoDBClient | None = None
) -> FeedbackRecorder:
    store = DynamoDBInferenceStore(
        client=dynamodb or boto3.client("dynamodb", config=STORE_CONFIG), table_name=settings.inference_table
    )
    return FeedbackRecorder(endpoints=settings.endpoints, store=store)
