"""cdk-nag acknowledgments by exact finding id, so a new wildcard is never waved through unseen."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def render(value: Any) -> str:
    """A resolved CloudFormation value as one string, the way cdk-nag prints it in a finding id:
    references as <LogicalId> or <LogicalId.Attribute>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")


def acknowledge_wildcard_resources(construct: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these resource ARNs (tokens allowed) on `construct`."""
    stack = Stack.of(construct)
    for resource in resources:
        rendered = render(stack.resolve(resource))
        Validations.of(construct).acknowledge(
            Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{rendered}]", reason=reason)
        )


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions rule (e.g. "AwsSolutions-S1") on `construct` with its reason."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))
