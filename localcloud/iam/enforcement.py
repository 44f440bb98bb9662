"""IAM enforced on moto: the emulator's own identity, the functions' role credentials, and moto's
request authorization switched on with its one resource gap closed narrowly. What it checks: README.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSRequest
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import IAMPolicyStatement, IAMRequestBase, PermissionResult
from moto.iam.models import iam_backends
from moto.sts.models import AssumedRole, sts_backends

from localcloud.account import LOCAL_ACCOUNT_ID

EMULATOR_IDENTITY = "localcloud-emulator"
# moto's Step Functions executor signs its Lambda (and other service) calls with this fixed key.
EXECUTOR_USER = "localcloud-stepfunctions-executor"
EXECUTOR_KEY = ("ak", "sk")
EMULATOR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
LAMBDA_SERVICE = "lambda.amazonaws.com"
# Lambda's sessions last hours; an hour here, renewed this long before they expire.
SESSION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 300
# moto names the resource of a request only for these services; for the others it passes "*".
UNKNOWN_RESOURCE = "*"


class RoleNotAssumableError(RuntimeError):
    """The function's execution role does not exist or does not trust Lambda: the message says which."""


def admit_emulator_credentials(
    iam: Any, credentials: Mapping[str, str], account_id: str = LOCAL_ACCOUNT_ID, region: str = "us-east-1"
) -> str:
    """Makes the emulator's fixed credentials a session of a role allowed everything, for the emulator's
    own calls (deploy, gap fillers, the stories' orchestration); and the fixed key moto's Step Functions
    executor signs its tasks' calls with (`ak`/`sk`) a key of a user allowed everything. The role's ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    everything = json.dumps(EMULATOR_POLICY)
    role_arn = str(
        iam.create_role(RoleName=EMULATOR_IDENTITY, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    )
    iam.put_role_policy(RoleName=EMULATOR_IDENTITY, PolicyName="everything", PolicyDocument=everything)
    session = sts_backends[account_id]["aws"].assume_role(
        region_name=region,
        role_session_name=EMULATOR_IDENTITY,
        role_arn=role_arn,
        policy="",
        duration=SESSION_SECONDS,
        external_id="",
    )
    session.access_key_id = credentials["AWS_ACCESS_KEY_ID"]
    session.secret_access_key = credentials["AWS_SECRET_ACCESS_KEY"]
    session.session_token = credentials["AWS_SESSION_TOKEN"]
    iam.create_user(UserName=EXECUTOR_USER)
    iam.put_user_policy(UserName=EXECUTOR_USER, PolicyName="everything", PolicyDocument=everything)
    key = iam_backends[account_id]["aws"].get_user(EXECUTOR_USER).create_access_key(prefix="AKIA")
    key.access_key_id, key.secret_access_key = EXECUTOR_KEY
    return role_arn


def trusts_lambda(trust_policy: Mapping[str, Any]) -> bool:
    """Whether a role's trust policy lets Lambda assume it (an Allow of sts:AssumeRole to the service)."""
    statements = trust_policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        services = statement.get("Principal", {}).get("Service", [])
        if (
            statement.get("Effect") == "Allow"
            and "sts:AssumeRole" in ([actions] if isinstance(actions, str) else actions)
            and LAMBDA_SERVICE in ([services] if isinstance(services, str) else services)
        ):
            return True
    return False


@dataclass(frozen=True)
class _Session:
    expires: float
    assumed: AssumedRole

    def variables(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.assumed.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.assumed.secret_access_key,
            "AWS_SESSION_TOKEN": self.assumed.session_token,
        }


class RoleCredentials:
    """The credentials Lambda gives a function: a session of its execution role, assumed from moto's STS
    as the Lambda service assumes it (not as an IAM principal: moto cannot match service principals in
    a trust policy, so the trust is checked here). Sessions are shared per role and renewed before they
    expire. A fresh moto (a fresh mock per test) that has a role of the same ARN, trusting Lambda, gets
    the role's session back, as a deployed function's environments keep theirs across deployments of
    other resources: the function's warm workers stay warm. Thread-safe; a callable from a role ARN to
    the worker's credential variables."""

    def __init__(self, account_id: str = LOCAL_ACCOUNT_ID, region: str = "us-east-1") -> None:
        self.account_id = account_id
        self.region = region
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def __call__(self, role_arn: str) -> Mapping[str, str]:
        with self._lock:
            cached = self._sessions.get(role_arn)
            if (
                cached is not None
                and cached.expires - time.time() > RENEW_BEFORE_SECONDS
                and self._held(cached)
            ):
                return cached.variables()
            session = self._assume(role_arn)
            self._sessions[role_arn] = session
            return session.variables()

    def _held(self, session: _Session) -> bool:
        """Whether moto holds the session, after putting it back into a fresh moto whose role of that
        ARN Lambda may assume."""
        sts = sts_backends[self.account_id]["aws"]
        if sts.get_assumed_role_from_access_key(session.assumed.access_key_id) is not None:
            return True
        try:
            self._role(session.assumed.role_arn)
        except RoleNotAssumableError:
            return False
        sts.assumed_roles.append(session.assumed)
        return True

    def _role(self, role_arn: str) -> Any:
        """The role, if it exists and trusts Lambda."""
        iam = iam_backends[self.account_id]["aws"]
        try:
            role = iam.get_role_by_arn(role_arn)
        except Exception:
            raise RoleNotAssumableError(
                f"The role defined for the function ({role_arn}) does not exist"
            ) from None
        if not trusts_lambda(json.loads(role.assume_role_policy_document)):
            raise RoleNotAssumableError(
                f"The role defined for the function ({role_arn}) cannot be assumed by Lambda: its trust "
                f"policy does not allow sts:AssumeRole to {LAMBDA_SERVICE}"
            )
        return role

    def _assume(self, role_arn: str) -> _Session:
        role = self._role(role_arn)
        assumed = sts_backends[self.account_id]["aws"].assume_role(
            region_name=self.region,
            role_session_name=f"localcloud-{role.name}"[:64],
            role_arn=role_arn,
            policy="",
            duration=SESSION_SECONDS,
            external_id="",
        )
        return _Session(expires=time.time() + SESSION_SECONDS, assumed=assumed)


def statement_permission(
    original: Callable[..., PermissionResult],
) -> Callable[..., PermissionResult]:
    """moto's statement evaluation, where moto does not know the request's resource ("*"): an Allow is
    judged on its actions alone and a Deny applies only if it names every resource. Without this, moto
    refuses every call of a least-privileged role to the services it names no resource for (DynamoDB,
    SageMaker, SNS, CloudWatch, ...): a statement `Resource: <table ARN>` never matches "*"."""

    def evaluate(
        statement: IAMPolicyStatement,
        action: str,
        resource: str = UNKNOWN_RESOURCE,
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        document = statement._statement
        if resource == UNKNOWN_RESOURCE and document.get("Resource") and principal is None:
            widened = dict(document)
            if widened.get("Effect") == "Allow":
                widened["Resource"] = UNKNOWN_RESOURCE
            elif UNKNOWN_RESOURCE not in _listed(widened.get("Resource")):
                return PermissionResult.NEUTRAL
            return original(
                IAMPolicyStatement(widened), action, resource, principal, incoming_condition_values
            )
        return original(statement, action, resource, principal, incoming_condition_values)

    return evaluate


def signed_request(request: IAMRequestBase) -> AWSRequest:
    """The request whose signature moto recomputes, with the body as sent. moto 5.2.5 signs the parsed
    parameters in place of any empty body (its server has consumed a form's body by then), so that every
    signed request without a body (an Invoke without a payload, a GET) failed with SignatureDoesNotMatch:
    the parameters stand for the body of a form only."""
    names = request._get_string_between("SignedHeaders=", ",", request._headers["Authorization"]).split(";")
    headers = request._create_headers_for_aws_request(names, request._headers)
    form = "x-www-form-urlencoded" in str(request._headers.get("Content-Type", ""))
    body = request._body or (request._data if form else b"")
    aws_request = AWSRequest(method=request._method, url=request._path, data=body, headers=headers)
    aws_request.context["timestamp"] = headers["X-Amz-Date"]
    return aws_request


# DynamoDB's transactions are no IAM actions: AWS authorizes each item's operation instead.
TRANSACTION_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


# moto prefixes the action with the service's signing name; IAM's prefix differs for these.
IAM_PREFIXES = {"monitoring": "cloudwatch"}


def action_check(original: Callable[[IAMRequestBase, str], None]) -> Callable[[IAMRequestBase, str], None]:
    """moto's check of the request's action, with the action named as IAM names it (CloudWatch signs as
    `monitoring`, its actions are `cloudwatch:`), and DynamoDB's TransactWriteItems and TransactGetItems
    checked as AWS checks them: each item's operation (`dynamodb:PutItem`, ...), not an action of the
    transaction's name, which no policy grants."""

    def check(request: IAMRequestBase, resource: str) -> None:
        prefix, _, name = request._action.partition(":")
        request._action = f"{IAM_PREFIXES.get(prefix, prefix)}:{name}"
        if request._action not in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            original(request, resource)
            return
        items = json.loads(request._body or b"{}").get("TransactItems", [])
        actions = {f"dynamodb:{TRANSACTION_ITEM_ACTIONS[op]}" for item in items for op in item} or {
            "dynamodb:GetItem"
        }
        transaction = request._action
        try:
            for action in sorted(actions):
                request._action = action
                original(request, resource)
        finally:
            request._action = transaction

    return check


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


@contextmanager
def enforced_iam() -> Iterator[None]:
    """While open, every request moto serves (in-process and through its server, one process) is
    authenticated (SigV4 against moto's IAM users and STS sessions) and authorized against the caller's
    identity policies. moto's own switch, `INITIAL_NO_AUTH_ACTION_COUNT`, set to 0 and restored."""
    with (
        mock.patch.object(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0),
        mock.patch.object(ActionAuthenticatorMixin, "request_count", 0),
        mock.patch.object(IAMRequestBase, "_create_aws_request", signed_request),
        mock.patch.object(
            IAMRequestBase, "check_action_permitted", action_check(IAMRequestBase.check_action_permitted)
        ),
        mock.patch.object(
            IAMPolicyStatement,
            "is_action_permitted",
            statement_permission(IAMPolicyStatement.is_action_permitted),
        ),
    ):
        yield
