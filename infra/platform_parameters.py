"""What an environment's family stacks use of its platform stack, handed over as SSM parameters.

The platform stack writes the artifact bucket's name, the artifact key's ARN and the topic's ARN under
``/<prefix>/platform/``; each family stack reads them as SSM-typed template parameters at deploy time.
No CloudFormation export ties the stacks, so neither blocks the other's update, and the dependency runs
one way (a family stack deploys after the platform's).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

NAMES = {"bucket": "artifact-bucket-name", "key": "artifact-key-arn", "topic": "topic-arn"}


def parameter_name(prefix: str, what: str) -> str:
    return f"/{prefix}/platform/{NAMES[what]}"


@dataclass(frozen=True)
class SharedResources:
    """The platform's resources as a family stack sees them (imported by name or ARN)."""

    bucket: s3.IBucket
    key: kms.IKey
    topic: sns.ITopic


class PlatformParameters(Construct):
    """The platform's side: one String parameter per shared resource."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        for what, value in (("bucket", bucket.bucket_name), ("key", key.key_arn), ("topic", topic.topic_arn)):
            ssm.StringParameter(
                self,
                NAMES[what],
                parameter_name=parameter_name(prefix, what),
                string_value=value,
                description=f"{prefix}: for the family stacks",
                tier=ssm.ParameterTier.STANDARD,
            )

    @staticmethod
    def read(scope: Construct, construct_id: str, *, prefix: str) -> SharedResources:
        """A family stack's side: the values as deploy-time parameters, the resources imported."""
        holder = Construct(scope, construct_id)

        def value(what: str) -> str:
            return ssm.StringParameter.value_for_string_parameter(holder, parameter_name(prefix, what))

        return SharedResources(
            bucket=s3.Bucket.from_bucket_name(holder, "Artifacts", value("bucket")),
            key=kms.Key.from_key_arn(holder, "ArtifactKey", value("key")),
            topic=sns.Topic.from_topic_arn(holder, "Topic", value("topic")),
        )
