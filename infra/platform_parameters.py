"""What an environment's family stacks use of its platform stack, handed over as SSM parameters.

The platform stack writes the artifact bucket's name, the artifact key's ARN and the topic's ARN under
``/<prefix>/platform/`` (and, when it retrains, the retraining state machine's name and the training-data
bucket's name, which the family's retraining triggers need); each family stack reads them as SSM-typed
template parameters at deploy time.
No CloudFormation export ties the stacks, so neither blocks the other's update, and the dependency runs
one way (a family stack deploys after the platform's).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

NAMES = {
    "bucket": "artifact-bucket-name",
    "key": "artifact-key-arn",
    "topic": "topic-arn",
    "retraining": "retraining-state-machine-name",
    "training_data": "training-data-bucket-name",
}


def parameter_name(prefix: str, what: str) -> str:
    return f"/{prefix}/platform/{NAMES[what]}"


@dataclass(frozen=True)
class SharedResources:
    """The platform's resources as a family stack sees them (imported by name or ARN)."""

    bucket: s3.IBucket
    key: kms.IKey
    topic: sns.ITopic


@dataclass(frozen=True)
class SharedRetraining:
    """The platform's retraining as a family's triggers see it: the machine to start, the bucket to watch."""

    state_machine: sfn.IStateMachine
    data_bucket_name: str


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
        self._prefix = prefix
        for what, value in (("bucket", bucket.bucket_name), ("key", key.key_arn), ("topic", topic.topic_arn)):
            self._publish(what, value)

    def publish_retraining(self, *, state_machine_name: str, data_bucket: s3.IBucket) -> None:
        """What the families' retraining triggers start and watch (`read_retraining`)."""
        self._publish("retraining", state_machine_name)
        self._publish("training_data", data_bucket.bucket_name)

    def _publish(self, what: str, value: str) -> None:
        ssm.StringParameter(
            self,
            NAMES[what],
            parameter_name=parameter_name(self._prefix, what),
            string_value=value,
            description=f"{self._prefix}: for the family stacks",
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

    @staticmethod
    def read_retraining(scope: Construct, construct_id: str, *, prefix: str) -> SharedRetraining:
        """A family stack's side of `publish_retraining`. The machine by name: its ARN is then built in the
        family stack's own account and region, which tells EventBridge the target is the rule's own."""
        holder = Construct(scope, construct_id)

        def value(what: str) -> str:
            return ssm.StringParameter.value_for_string_parameter(holder, parameter_name(prefix, what))

        return SharedRetraining(
            state_machine=sfn.StateMachine.from_state_machine_name(
                holder, "StateMachine", value("retraining")
            ),
            data_bucket_name=value("training_data"),
        )
