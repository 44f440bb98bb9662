"""The HTTP APIs of a local cloud served on loopback: route -> IAM authorization -> payload 2.0 event ->
Lambda Invoke through moto -> the proxy response mapped back, as API Gateway's HTTP APIs do."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import boto3

from localcloud.account import LOCAL_ACCOUNT_ID
from localcloud.apigateway.authorization import Caller, Refused, authorize
from localcloud.apigateway.routes import HttpApi, Route, http_apis

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

LOOPBACK = "127.0.0.1"
NOT_FOUND = {"message": "Not Found"}
INTERNAL_ERROR = {"message": "Internal Server Error"}
JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def json_answer(status: int, body: Any) -> Answer:
    return Answer(status, {"content-type": JSON}, json.dumps(body).encode())


class HttpApiServer:
    """Serves `apis` on one loopback port; the API is chosen by the request's first path segment when
    there are several (`/<api id>/...`), else every path is the one API's. `invoke(function ARN, event
    bytes)` is Lambda's Invoke (payload and `FunctionError`)."""

    def __init__(
        self,
        apis: Callable[[], list[HttpApi]],
        invoke: Callable[[str, bytes], tuple[bytes, str | None]],
        *,
        account_id: str,
        region: str,
    ) -> None:
        self._apis = apis
        self._invoke = invoke
        self.account_id = account_id
        self.region = region
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)

    def apis(self) -> list[HttpApi]:
        """The APIs served (read from the deployed stacks on first use)."""
        return self._apis()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> HttpApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """What API Gateway answers the request."""
        parts = urlsplit(target)
        apis = self._apis()
        api, path = (apis[0], parts.path) if len(apis) == 1 else _api_of(apis, parts.path)
        if api is None:
            return json_answer(404, NOT_FOUND)
        found = api.route_for(method, path)
        if found is None:
            return json_answer(404, NOT_FOUND)
        route, parameters = found
        caller = None
        if route.authorization_type == "AWS_IAM":
            route_arn = (
                f"arn:aws:execute-api:{self.region}:{self.account_id}:{api.api_id}/{api.stage}/{method}{path}"
            )
            try:
                caller = authorize(
                    method,
                    path=parts.path,
                    query=parts.query,
                    headers=headers,
                    body=body,
                    account_id=self.account_id,
                    route_arn=route_arn,
                )
            except Refused as refused:
                return json_answer(403, {"message": refused.message})
        elif route.authorization_type != "NONE":
            return json_answer(500, {"message": f"authorization {route.authorization_type} is not emulated"})
        event = payload_event(
            api,
            route,
            method=method,
            path=path,
            query=parts.query,
            headers=headers,
            body=body,
            parameters=parameters,
            caller=caller,
        )
        payload, error = self._invoke(route.function_arn, json.dumps(event).encode())
        if error:
            return json_answer(500, INTERNAL_ERROR)
        return proxy_answer(payload)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in separate writes: without TCP_NODELAY each answer on a
            # kept-alive connection waits for the client's delayed ACK (tens of milliseconds).
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = server.answer(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("apigw-requestid", uuid.uuid4().hex[:16])
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # API Gateway's access log is not emulated; the functions log their own

        return Handler


def payload_event(
    api: HttpApi,
    route: Route,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    parameters: Mapping[str, str],
    caller: Caller | None,
) -> dict[str, Any]:
    """The event of payload format 2.0: headers lowercased (repeated ones comma-joined), the body as text
    unless it is not UTF-8 (then base64), the IAM caller under `requestContext.authorizer.iam`."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query_parameters: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        query_parameters[name] = f"{query_parameters[name]},{value}" if name in query_parameters else value
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    context: dict[str, Any] = {
        "accountId": api_account(route),
        "apiId": api.api_id,
        "domainName": lowered.get("host", ""),
        "domainPrefix": lowered.get("host", "").split(".")[0],
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": LOOPBACK,
            "userAgent": lowered.get("user-agent", ""),
        },
        "requestId": uuid.uuid4().hex[:16],
        "routeKey": route.route_key,
        "stage": api.stage,
        "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    if caller is not None:
        context["authorizer"] = {"iam": caller.event_identity()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": context,
        "isBase64Encoded": encoded,
    }
    if "cookie" in lowered:
        event["cookies"] = [c.strip() for c in lowered["cookie"].split(";")]
    if query_parameters:
        event["queryStringParameters"] = query_parameters
    if parameters:
        event["pathParameters"] = dict(parameters)
    if body:
        event["body"] = text
    return event


def api_account(route: Route) -> str:
    return route.function_arn.split(":")[4]


def proxy_answer(payload: bytes) -> Answer:
    """The function's result as payload format 2.0 maps it: an object with `statusCode` gives the status,
    headers and body (base64-decoded when `isBase64Encoded`); any other JSON is a 200 with that JSON."""
    try:
        result = json.loads(payload or b"null")
    except ValueError:
        return json_answer(500, INTERNAL_ERROR)
    if not isinstance(result, dict) or "statusCode" not in result:
        return Answer(200, {"content-type": JSON}, json.dumps(result).encode())
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ",".join(str(v) for v in values)
    body = result.get("body")
    if body is None:
        raw = b""
    elif result.get("isBase64Encoded"):
        raw = base64.b64decode(str(body))
    else:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
    headers.setdefault("content-type", JSON)
    return Answer(int(result["statusCode"]), headers, raw)


def _api_of(apis: list[HttpApi], path: str) -> tuple[HttpApi | None, str]:
    first, _, rest = path.lstrip("/").partition("/")
    for api in apis:
        if first in (api.api_id, api.logical_id):
            return api, f"/{rest}"
    return None, path


@contextmanager
def serve_http_apis(cloud: LocalCloud) -> Iterator[HttpApiServer]:
    """A `LocalCloud` gap filler: the deployed stacks' HTTP APIs on a free loopback port (routes read
    when the first request comes, the stacks being deployed after the gap fillers open). Functions are
    invoked through moto's Lambda Invoke with the emulator's credentials, as API Gateway's service."""
    lambda_client: Any = None
    routes: list[HttpApi] = []
    lock = threading.Lock()

    def apis() -> list[HttpApi]:
        with lock:
            if not routes:
                routes.extend(http_apis(cloud.stacks.values()))
            return routes

    def invoke(function_arn: str, event: bytes) -> tuple[bytes, str | None]:
        nonlocal lambda_client
        if lambda_client is None:
            session: Any = boto3.Session(region_name=cloud.region)
            lambda_client = session.client("lambda", endpoint_url=cloud.endpoint_url)
        response = lambda_client.invoke(FunctionName=function_arn, Payload=event)
        return response["Payload"].read(), response.get("FunctionError")

    server = HttpApiServer(apis, invoke, account_id=LOCAL_ACCOUNT_ID, region=cloud.region).start()
    try:
        yield server
    finally:
        server.close()
