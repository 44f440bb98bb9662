"""Model registry: the encrypted artifact bucket and a model package group per model family."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """Artifacts, data manifests and captured requests live in one KMS-encrypted, TLS-only bucket."""

    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, model_families: list[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "ArtifactKey",
            alias=f"alias/{prefix}-artifacts",
            description=f"{prefix}: model artifacts, data manifests and captured requests",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Server access logs cannot go to a KMS-encrypted bucket; S3-managed keys are the documented choice.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.package_group_names: dict[str, str] = {}
        for family in model_families:
            group_name = f"{prefix}-{family}"
            sagemaker.CfnModelPackageGroup(
                self,
                f"Group-{family}",
                model_package_group_name=group_name,
                model_package_group_description=f"Model versions of the {family} family",
            )
            self.package_group_names[family] = group_name
