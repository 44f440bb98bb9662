"""The role the retraining's SageMaker jobs (preprocess, train, evaluate) run as.

It reads the training data, reads and writes the runs' folders under the artifact bucket's retraining
prefix, pulls the training image from its ECR repository and writes the jobs' logs and metrics; nothing
else (see `tests/infra/test_retraining_workflow.py`).
"""

from __future__ import annotations

import re

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ECR_IMAGE_PATTERN
from infra.nag import acknowledge_wildcard_resources
from infra.registry import ModelRegistry
from lambdas.retraining.jobs import ARTIFACTS_PREFIX

JOB_LOG_GROUPS = ("/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs")


def repository_arn(image_uri: str) -> str:
    """The ECR repository an image URI names (its own account and region, which may differ from ours)."""
    match = re.match(ECR_IMAGE_PATTERN, image_uri)
    if match is None:
        raise ValueError(f"not an ECR image URI: {image_uri!r}")
    return f"arn:{Aws.PARTITION}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"


class RetrainingJobRole(iam.Role):
    """What the three jobs may do: read the data, read and write runs' folders, pull the image, log."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        data_bucket: s3.IBucket,
        registry: ModelRegistry,
        image_uri: str,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{prefix}: retraining's processing and training jobs",
        )
        stack = Stack.of(self)
        data_objects = data_bucket.arn_for_objects("*")
        run_objects = registry.bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}/*")
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[data_objects]),
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[data_bucket.bucket_arn]),
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[run_objects]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[registry.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{ARTIFACTS_PREFIX}/*"]}},
            ),
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[repository_arn(image_uri)],
            ),
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
            ),
        ]
        log_groups = [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{group}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for group in JOB_LOG_GROUPS
        ]
        statements.append(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=log_groups,
            )
        )
        for statement in statements:
            self.add_to_principal_policy(statement)
        # Reading the data and the runs' files, writing the jobs' outputs (S3 asks KMS as the caller).
        registry.key.grant(self, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge_wildcard_resources(
            self,
            [data_objects, run_objects, *log_groups],
            "A run reads every data drop of its family and writes under retraining/ with keys named at "
            "run time; SageMaker writes each job's logs to streams it names under its own log groups.",
        )
        acknowledge_wildcard_resources(
            self,
            ["*"],
            "ecr:GetAuthorizationToken supports no resource; cloudwatch:PutMetricData supports none and "
            "is limited to SageMaker's /aws/sagemaker/ namespaces by condition.",
        )
