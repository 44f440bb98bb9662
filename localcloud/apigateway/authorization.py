"""IAM authorization of an HTTP API route, as API Gateway does it: the request's SigV4 signature
recomputed with the caller's secret as moto's IAM and STS know it, then the caller's identity policies
asked for `execute-api:Invoke` on the route's ARN."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

SERVICE = "execute-api"
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)
# API Gateway's messages, in the `{"message": ...}` body of its 403s.
MISSING = "Forbidden"
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY = "The security token included in the request is invalid."


class Refused(Exception):
    """API Gateway refuses the request (403): `message` is the body's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Caller:
    """The signer as API Gateway puts it in `requestContext.authorizer.iam`, with its policies."""

    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str
    policies: tuple[Any, ...]

    def event_identity(self) -> dict[str, Any]:
        return {
            "accessKey": self.access_key,
            "accountId": self.account_id,
            "callerId": self.caller_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": self.user_arn,
            "userId": self.user_id,
        }


def authorize(
    method: str,
    *,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    account_id: str,
    route_arn: str,
) -> Caller:
    """The caller of a correctly signed request allowed `execute-api:Invoke` on `route_arn`, or `Refused`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed = AUTHORIZATION.match(lowered.get("authorization", ""))
    if parsed is None or parsed["service"] != SERVICE or "x-amz-date" not in lowered:
        raise Refused(MISSING)
    caller, secret, token = _caller(parsed["key"], account_id)
    if token is not None and lowered.get("x-amz-security-token") != token:
        raise Refused(UNKNOWN_KEY)
    signed = parsed["signed"].split(";")
    request = AWSRequest(
        method=method,
        url=path + (f"?{query}" if query else ""),
        data=body,
        headers={name: lowered[name] for name in signed if name in lowered},
    )
    request.context["timestamp"] = lowered["x-amz-date"]
    signer = SigV4Auth(Credentials(parsed["key"], secret, token), SERVICE, parsed["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, parsed["signature"]):
        raise Refused(BAD_SIGNATURE)
    if not allowed(caller.policies, route_arn):
        raise Refused(
            f"User: {caller.user_arn} is not authorized to perform: {SERVICE}:Invoke on resource: {route_arn}"
        )
    return caller


def allowed(policies: tuple[Any, ...], route_arn: str) -> bool:
    """moto's evaluation of identity policies: an explicit Deny wins, else any Allow."""
    permitted = False
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(f"{SERVICE}:Invoke", route_arn)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def _caller(access_key: str, account_id: str) -> tuple[Caller, str, str | None]:
    """The identity holding `access_key`, its secret and its session token (None for a user's key)."""
    for session in sts_backends[account_id]["aws"].assumed_roles:
        if session.access_key_id == access_key:
            role = session.role_arn.split("/")[-1]
            iam = iam_backends[account_id]["aws"]
            policies: list[Any] = [
                iam.get_role_policy(role, name)[1] for name in iam.list_role_policies(role)
            ]
            policies += iam.list_attached_role_policies(role)[0]
            caller = Caller(
                access_key=access_key,
                account_id=account_id,
                caller_id=session.user_id,
                user_arn=session.arn,
                user_id=session.user_id,
                policies=tuple(policies),
            )
            return caller, session.secret_access_key, session.session_token
    iam = iam_backends[account_id]["aws"]
    for user in iam.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key and key.status == "Active":
                policies = [
                    iam.get_user_policy(user.name, name) for name in iam.list_user_policies(user.name)
                ]
                policies += iam.list_attached_user_policies(user.name)[0]
                caller = Caller(
                    access_key=access_key,
                    account_id=account_id,
                    caller_id=user.id,
                    user_arn=user.arn,
                    user_id=user.id,
                    policies=tuple(policies),
                )
                return caller, key.secret_access_key, None
    raise Refused(UNKNOWN_KEY)
