"""The AWS account and region the local cloud runs as: what a template's pseudo parameters give."""

from __future__ import annotations

from dataclasses import dataclass

# moto's default account: ARNs built here match the ones moto builds for the same names.
LOCAL_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class AwsEnvironment:
    """The account and region a template is deployed into: the values of the pseudo parameters."""

    account_id: str = LOCAL_ACCOUNT_ID
    region: str = "us-east-1"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"
