"""Simulated users of the serving API, for the local cloud's demo."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from localcloud.account import LOCAL_ACCOUNT_ID
from pipelines.train import CHURN_SCHEMA, synthetic_churn

ROUTE = "/endpoints/{endpoint}/invocations"
FEEDBACK_ROUTE = "/feedback"
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


@dataclass
class Traffic:
    """`threads` clients sending requests from `users` simulated users until stopped."""

    lambda_client: Callable[[], Any]
    router: str
    feedback: str
    endpoint: str
    users: int = 300
    threads: int = 4
    feedback_share: float = 0.2
    seed: int = 20261125
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
        client = self.lambda_client()
        path = ROUTE.format(endpoint=self.endpoint)
        while not self._stop.is_set():
            self._sending.wait()
            if self._stop.is_set():
                break
            user = f"user-{rng.randrange(self.users):04d}"
            row = rng.randrange(len(records))
            body = {"features": records[row], "user_id": user}
            began = time.monotonic()
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
                self._invoke(client, self.feedback, http_event(FEEDBACK_ROUTE, feedback))

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
