"""A caller of an HTTP API with IAM authorization: the request signed with SigV4 (service
`execute-api`), sent over HTTP with the standard library."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "execute-api"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class SignedClient:
    """Sends requests to one API's base URL, signed with `credentials` (unsigned when None). One
    keep-alive connection per client: give each thread its own."""

    def __init__(self, base_url: str, credentials: Credentials | None, region: str = "us-east-1") -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.region = region
        parts = urlsplit(self.base_url)
        self._connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None) -> Response:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        request = AWSRequest(method=method, url=f"{self.base_url}{path}", data=data, headers=headers)
        if self.credentials is not None:
            SigV4Auth(self.credentials, SERVICE, self.region).add_auth(request)
        prepared = request.prepare()
        # The request target is the URL's whole path (a base URL may have a path of its own: the API's id).
        url = urlsplit(prepared.url)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        try:
            self._connection.request(method, target, body=data, headers=dict(prepared.headers.items()))
            answer = self._connection.getresponse()
        except (http.client.HTTPException, OSError):
            self._connection.close()  # a dropped keep-alive connection: once more on a new one
            self._connection.request(method, target, body=data, headers=dict(prepared.headers.items()))
            answer = self._connection.getresponse()
        return Response(answer.status, dict(answer.getheaders()), answer.read())

    def close(self) -> None:
        self._connection.close()
