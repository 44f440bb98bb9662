"""Simulated users of the serving API, for the local cloud's demo."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.credentials import Credentials

from localcloud.account import LOCAL_ACCOUNT_ID
from localcloud.apigateway.client import SignedClient
from localcloud.apigateway.routes import local_api_id
from pipelines.churn_data import CHURN_SCHEMA, synthetic_churn

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

ROUTE = "/endpoints/{endpoint}/invocations"
FEEDBACK_ROUTE = "/feedback"
CLIENT_ROLE = "mlrollout-demo-client"
CLIENT_SESSION = "demo-traffic"
# The identity the local cloud's own calls run as (localcloud.iam): it assumes the client role.
EMULATOR_SESSION = f"arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/localcloud-emulator/localcloud-emulator"
DEMO_CLIENT = {
    "accountId": LOCAL_ACCOUNT_ID,
    "userId": "AROADEMOCLIENTROLE0001:demo-traffic",
    "callerId": "AROADEMOCLIENTROLE0001:demo-traffic",
    "userArn": f"arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/mlrollout-demo-client/demo-traffic",
}


@dataclass(frozen=True, slots=True)
class Served:
    """One request as the client saw it."""

    at: float
    """Real seconds since the traffic started."""
    user: str
    status: int
    variant: str | None
    reason: str | None
    seconds: float


def http_event(
    path: str, body: dict[str, Any], path_parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """The HTTP API's payload 2.0 event for a POST with a JSON body."""
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "requestId": f"local-{random.getrandbits(48):012x}",
            "http": {"method": "POST", "path": path},
            # What the API's IAM authorization adds: the simulated users call through one client role,
            # as an application backend would, so their feedback matches the inferences it was served.
            "authorizer": {"iam": DEMO_CLIENT},
        },
        "pathParameters": path_parameters,
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def client_role_credentials(iam: Any, sts: Any, api_id: str, region: str = "us-east-1") -> Credentials:
    """A session of the demo's client role, allowed to call the serving APIs' routes and nothing else:
    the identity an application backend would call the API with (one role; a policy per API)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": EMULATOR_SESSION}, "Action": "sts:AssumeRole"}
        ],
    }
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:{region}:{LOCAL_ACCOUNT_ID}:{api_id}/*",
            }
        ],
    }
    try:
        role = iam.create_role(RoleName=CLIENT_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    except iam.exceptions.EntityAlreadyExistsException:  # one client role for every environment's API
        role = iam.get_role(RoleName=CLIENT_ROLE)["Role"]
    iam.put_role_policy(
        RoleName=CLIENT_ROLE, PolicyName=f"invoke-{api_id}", PolicyDocument=json.dumps(invoke)
    )
    answer = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=CLIENT_SESSION)["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


@dataclass
class Traffic:
    """`threads` clients sending requests from `users` simulated users until stopped: through the HTTP
    API, SigV4-signed, when `api_client` is given (each thread its own client); else by invoking the
    router and feedback functions with the events the API would deliver. At most `requests_per_second`
    predictions (shared by the threads) when given; else as fast as they are answered."""

    lambda_client: Callable[[], Any]
    router: str
    feedback: str
    endpoint: str
    users: int = 300
    threads: int = 4
    feedback_share: float = 0.2
    requests_per_second: float | None = None
    seed: int = 20261125
    api_client: Callable[[], SignedClient] | None = None
    served: list[Served] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    # Cleared while paused: the users wait before their next request.
    _sending: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: float = 0.0

    def start(self) -> Traffic:
        data = synthetic_churn(4000, self.seed + 1)
        records = [dict(zip(CHURN_SCHEMA.names, row.tolist(), strict=True)) for row in data.features]
        labels = data.labels.tolist()
        self._started = time.monotonic()
        self._sending.set()
        for index in range(self.threads):
            worker = threading.Thread(
                target=self._run, args=(index, records, labels), name=f"user-traffic-{index}", daemon=True
            )
            self._workers.append(worker)
            worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._sending.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No new requests while open (those in flight finish): one laptop serves one environment's users
        at a time."""
        self._sending.clear()
        try:
            yield
        finally:
            self._sending.set()

    def since(self, seconds: float) -> list[Served]:
        with self._lock:
            return [s for s in self.served if s.at >= seconds]

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @property
    def started(self) -> float:
        """When the users started (`time.monotonic()`): a request's `at` counts from here."""
        return self._started

    def _run(self, index: int, records: list[dict[str, float]], labels: list[int]) -> None:
        rng = random.Random(self.seed * 100 + index)
        client = self.lambda_client() if self.api_client is None else self.api_client()
        path = ROUTE.format(endpoint=self.endpoint)
        interval = self.threads / self.requests_per_second if self.requests_per_second else 0.0
        next_at = time.monotonic() + interval * index / self.threads  # the threads' turns interleave
        while not self._stop.is_set():
            self._sending.wait()
            if interval:  # this thread's next turn; one that came late is not made up for
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    break
                next_at = max(next_at, time.monotonic()) + interval
            if self._stop.is_set():
                break
            user = f"user-{rng.randrange(self.users):04d}"
            row = rng.randrange(len(records))
            body = {"features": records[row], "user_id": user}
            began = time.monotonic()
            if isinstance(client, SignedClient):
                status, answer = self._call(client, path, body)
            else:
                status, answer = self._invoke(
                    client, self.router, http_event(path, body, {"endpoint": self.endpoint})
                )
            served = Served(
                at=began - self._started,
                user=user,
                status=status,
                variant=answer.get("variant"),
                reason=(answer.get("routing") or {}).get("reason"),
                seconds=time.monotonic() - began,
            )
            with self._lock:
                self.served.append(served)
            if status == 200 and rng.random() < self.feedback_share:
                predicted = (answer.get("prediction") or {}).get("predictions", [None])[0]
                # The customer stayed (converted) when the model's retention call was right.
                converted = predicted == labels[row]
                feedback = {"inference_id": answer["inference_id"], "converted": bool(converted)}
                if isinstance(client, SignedClient):
                    self._call(client, FEEDBACK_ROUTE, feedback)
                else:
                    self._invoke(client, self.feedback, http_event(FEEDBACK_ROUTE, feedback))

    @staticmethod
    def _call(client: SignedClient, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The API's status and JSON body; a request that gets no answer counts as a 502."""
        try:
            response = client.request("POST", path, body)
            parsed = response.json()
        except Exception as error:
            return 502, {"error": f"{type(error).__name__}: {error}"}
        return response.status, parsed if isinstance(parsed, dict) else {}

    @staticmethod
    def _invoke(client: Any, function: str, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The API's status and JSON body; a failed invocation is the 502 API Gateway would answer."""
        try:
            response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
            payload = json.loads(response["Payload"].read() or b"{}")
        except Exception as error:
            return 502, {"error": f"{type(error).__name__}: {error}"}
        if response.get("FunctionError"):
            return 502, {"error": payload.get("errorMessage")}
        body = payload.get("body") or "{}"
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            parsed = {"error": body}
        return int(payload.get("statusCode", 502)), parsed if isinstance(parsed, dict) else {}


def api_clients(cloud: LocalCloud, stack: str | None = None) -> Callable[[], SignedClient]:
    """Clients of a stack's serving API (one of the HTTP APIs the "http api" gap filler serves; the
    cloud's only one when `stack` is None), each signing as the demo client role's session."""
    server = cloud.gap_filler("http api")
    apis = server.apis()
    if stack is None:
        [api] = apis
    else:
        [api] = [a for a in apis if a.api_id == local_api_id(stack, a.logical_id)]
    credentials = client_role_credentials(cloud.client("iam"), cloud.client("sts"), api.api_id, cloud.region)
    # With several APIs on one port, the first path segment names the API (as a stage URL's host would).
    base = server.url if len(apis) == 1 else f"{server.url}/{api.api_id}"
    return lambda: SignedClient(base, credentials, cloud.region)
