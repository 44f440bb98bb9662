"""The model registry: encrypted, TLS-only, versioned artifacts and a package group per family."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized


def test_artifact_bucket_is_kms_encrypted_versioned_and_private(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {
                                "Fn::GetAtt": [Match.string_like_regexp("ArtifactKey"), "Arn"]
                            },
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "artifacts/"}),
        },
    )


def test_artifact_bucket_policy_denies_requests_without_tls(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": Match.string_like_regexp("RegistryArtifacts")},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Principal": {"AWS": "*"},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_artifact_key_rotates(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::KMS::Key",
        {"EnableKeyRotation": True, "Description": Match.string_like_regexp("model artifacts")},
    )


def test_each_model_family_has_a_package_group(dev: Synthesized) -> None:
    for family in dev.config.model_families:
        dev.template.has_resource_properties(
            "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": f"mlrollout-dev-{family}"}
        )
