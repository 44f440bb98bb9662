"""Model registry: the encrypted artifact bucket; a model package group per model family (in its stack)."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """Artifacts, data manifests and captured requests live in one KMS-encrypted, TLS-only bucket; its key
    (the environment's) also encrypts the functions' log groups."""

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
        # The functions' log groups are encrypted with this key too (requests can reach the logs):
        # CloudWatch Logs may use it for this account's log groups only.
        stack = Stack.of(self)
        log_groups = stack.format_arn(
            service="logs", resource="log-group", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],  # in a key policy "*" means this key only
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            )
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
        # The groups themselves are created by each family's stack (infra/family_stack.py).
        self.package_group_names: dict[str, str] = {
            family: package_group_name(prefix, family) for family in model_families
        }


def package_group_name(prefix: str, family: str) -> str:
    return f"{prefix}-{family}"


class ModelPackageGroup(Construct):
    """A model family's package group: every version of the family, approved or not."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, family: str) -> None:
        super().__init__(scope, construct_id)
        self.group_name = package_group_name(prefix, family)
        sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=self.group_name,
            model_package_group_description=f"Model versions of the {family} family",
        )
