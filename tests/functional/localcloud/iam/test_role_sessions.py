"""The functions' role sessions (`localcloud.iam.enforcement.RoleCredentials`) across fresh motos.

Apart from `test_enforcement.py`: its module's local cloud keeps moto's request checks on, and these tests
make their own mocks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.account import LOCAL_ACCOUNT_ID
from localcloud.iam.enforcement import RoleCredentials, RoleNotAssumableError
from tests.functional.localcloud.cloudformation.test_stacks import ASSUME_LAMBDA


def test_a_fresh_moto_with_the_same_role_gets_the_roles_session_back_and_one_without_it_none() -> None:
    """A fresh mock per test resets moto's STS: the role's session is put back, so that the function's
    warm workers, started with its credentials, keep working; the trust is checked again."""
    credentials = RoleCredentials()
    arn = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/function"

    def create_role(trust: dict[str, Any]) -> None:
        boto3.client("iam").create_role(RoleName="function", AssumeRolePolicyDocument=json.dumps(trust))

    def caller(session: Mapping[str, str]) -> str:
        sts = boto3.client(
            "sts",
            aws_access_key_id=session["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=session["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=session["AWS_SESSION_TOKEN"],
        )
        return str(sts.get_caller_identity()["Arn"])

    with mock_aws():
        create_role(ASSUME_LAMBDA)
        first = dict(credentials(arn))
        assert caller(first).endswith(":assumed-role/function/localcloud-function")
    with mock_aws():
        create_role(ASSUME_LAMBDA)
        assert credentials(arn) == first
        assert caller(first).endswith(":assumed-role/function/localcloud-function")
    with mock_aws():
        create_role({"Version": "2012-10-17", "Statement": []})
        with pytest.raises(RoleNotAssumableError, match="cannot be assumed by Lambda"):
            credentials(arn)
    with mock_aws(), pytest.raises(RoleNotAssumableError, match="does not exist"):
        credentials(arn)
