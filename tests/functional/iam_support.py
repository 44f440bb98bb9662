"""IAM enforced on the hand-built emulations of the workflows (`rollout_cloud`, `retraining_cloud`): the
template's roles created with their policies, each function created with its own role, and moto's
authorization switched on (`localcloud.iam`), as `LocalCloud(enforce_iam=True)` does for a deployment."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from localcloud.awslambda.invocations import create_functions
from localcloud.awslambda.runner import FunctionSpec
from localcloud.cloud import patched_environment
from localcloud.cloudformation.template import Resolver, StackTemplate
from localcloud.iam.enforcement import admit_emulator_credentials, enforced_iam

# The functional tier's fixed credentials (tests/functional/conftest.py), admitted as the emulator's.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def resolved_policy(resolver: Resolver, document: Any) -> dict[str, Any]:
    """The policy with its intrinsics resolved; a statement naming a resource this hand-built emulation
    has no ARN for (a log group, the bucket) keeps its actions on every resource: moto checks resources of
    S3, SQS, IAM and STS only, and the least privilege of those is the infra tests' to prove."""
    statements = []
    for statement in document["Statement"]:
        try:
            statements.append(resolver.resolve(statement))
        except Exception:
            statements.append(
                {**resolver.resolve({k: v for k, v in statement.items() if k != "Resource"}), "Resource": "*"}
            )
    return {**document, "Statement": statements}


def create_roles(template: StackTemplate, resolver: Resolver) -> None:
    """The template's roles, their inline policies and the `AWS::IAM::Policy`s attached to them."""
    iam = boto3.client("iam")
    for logical_id, resource in template.resources_of_type("AWS::IAM::Role").items():
        properties = resource["Properties"]
        name = str(resolver.resolve({"Ref": logical_id}))
        trust = resolver.resolve(properties["AssumeRolePolicyDocument"])
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        for policy in properties.get("Policies", []):
            document = resolved_policy(resolver, policy["PolicyDocument"])
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )
    for resource in template.resources_of_type("AWS::IAM::Policy").values():
        properties = resource["Properties"]
        document = resolved_policy(resolver, properties["PolicyDocument"])
        for role in properties.get("Roles", []):
            iam.put_role_policy(
                RoleName=str(resolver.resolve(role)),
                PolicyName=str(properties["PolicyName"]),
                PolicyDocument=json.dumps(document),
            )


def create_functions_with_roles(
    template: StackTemplate, resolver: Resolver, functions: Iterable[FunctionSpec]
) -> None:
    """Each function with the role its template names."""
    client = boto3.client("lambda")
    for spec in functions:
        assert spec.logical_id is not None
        role_arn = str(resolver.resolve(template.resources[spec.logical_id]["Properties"]["Role"]))
        create_functions(client, [spec], role_arn=role_arn)


@contextmanager
def iam_enforced() -> Iterator[None]:
    """The emulator's credentials admitted, then every call checked. mock_aws put its own fake keys in the
    environment, and boto3's default session may hold them: the admitted ones take their place."""
    with patched_environment(TEST_CREDENTIALS):
        boto3.DEFAULT_SESSION = None
        admit_emulator_credentials(boto3.client("iam"), TEST_CREDENTIALS)
        with enforced_iam():
            yield
