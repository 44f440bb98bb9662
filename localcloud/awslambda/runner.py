"""Runs the Lambda functions of a synthesized template: the real handler from its asset, with its
environment, in warm worker processes.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from localcloud.account import AwsEnvironment
from localcloud.awslambda.forked_workers import start_worker

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
UNHANDLED = "Unhandled"
# Lambda bounds the init phase at 10 s; a busy two-core test machine gets some slack on top.
INIT_TIMEOUT_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128
# Never leave Lambda's sandbox in the local runtime either: credentials only the emulator accepts.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class UnknownFunctionError(LookupError):
    """No registered function has that logical id, name or ARN."""


# A role ARN to the credential variables of a session of that role (`localcloud.iam.enforcement`).
CredentialSource = Callable[[str], Mapping[str, str]]


class InvalidRequestContentError(ValueError):
    """The payload is not JSON: Lambda refuses it before running anything."""


@dataclass(frozen=True)
class FunctionSpec:
    """What running one function needs: the template's handler, code directory, environment and limits."""

    function_name: str
    handler: str
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    runtime: str = "python3.11"
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB
    logical_id: str | None = None
    region: str = "us-east-1"
    account_id: str = AwsEnvironment().account_id
    role_arn: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    def worker_key(self) -> tuple[object, ...]:
        """Workers are reused only for an identical configuration, as Lambda replaces its environments
        after a configuration change."""
        environment = tuple(sorted(self.environment.items()))
        return (
            self.function_name,
            self.handler,
            str(self.code_dir),
            environment,
            self.memory_mb,
            self.runtime,
        )


@dataclass(frozen=True)
class InvocationResult:
    """What the Invoke API answers: the payload, `FunctionError` when the function failed, and its log."""

    payload: bytes
    function_error: str | None = None
    log: str = ""

    def json(self) -> Any:
        return json.loads(self.payload)


class _WorkerTimedOutError(Exception):
    pass


class _WorkerExitedError(Exception):
    pass


class _Worker:
    """One worker process and its line protocol."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], key: tuple[object, ...]) -> None:
        self.key = key  # the idle pool it returns to
        self._process = start_worker(WORKER_SCRIPT, environment, spec.code_dir.resolve())
        self._buffer = bytearray()

    def start(self) -> dict[str, Any] | None:
        """Waits for the init phase; the init error payload if the handler could not be loaded."""
        message = self._receive(time.monotonic() + INIT_TIMEOUT_SECONDS)
        error: dict[str, Any] | None = message.get("init_error")
        return error

    def invoke(self, request: Mapping[str, Any], timeout_seconds: float) -> dict[str, Any]:
        stdin = self._process.stdin
        assert stdin is not None  # always a pipe here: Popen(stdin=PIPE)
        try:
            stdin.write((json.dumps(request) + "\n").encode())
            stdin.flush()
        except BrokenPipeError:
            raise _WorkerExitedError from None
        return self._receive(time.monotonic() + timeout_seconds)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    @property
    def exit_code(self) -> int | None:
        return self._process.poll()

    def _receive(self, deadline: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None  # always a pipe here: Popen(stdout=PIPE)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerTimedOutError
            readable, _, _ = select.select([stdout], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                self._process.wait()
                raise _WorkerExitedError
            self._buffer += chunk
        line, _, rest = self._buffer.partition(b"\n")
        self._buffer = bytearray(rest)
        message: dict[str, Any] = json.loads(line)
        return message


def runtime_environment(
    spec: FunctionSpec, aws_endpoint_url: str | None, credentials: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The worker's whole environment: the function's variables, then the ones Lambda reserves, the
    credentials of its execution role's session among them (the emulator's when none is given)."""
    environment = dict(spec.environment)
    environment.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(spec.code_dir.resolve()),
            "_HANDLER": spec.handler,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            **(credentials if credentials is not None else LOCAL_CREDENTIALS),
        }
    )
    if aws_endpoint_url:
        environment["AWS_ENDPOINT_URL"] = aws_endpoint_url
    return environment


class LambdaRunner:
    """Invokes registered functions in warm worker processes. Thread-safe; close it (or use `with`).

    `aws_endpoint_url`, when given, is where the handlers' AWS SDK calls go (the emulator's address).
    `log_sink`: where each invocation's log is echoed as it ends (standard error when None; the log is
    also in the result, and in CloudWatch Logs when invoked through the Lambda API). `credentials`:
    where a function's credentials come from, by its `role_arn` (the emulator's own when None, or when
    the function has no role): with IAM enforced, a session of the function's execution role.
    """

    def __init__(
        self,
        functions: Iterable[FunctionSpec],
        *,
        aws_endpoint_url: str | None = None,
        log_sink: TextIO | None = None,
        credentials: CredentialSource | None = None,
    ) -> None:
        self.aws_endpoint_url = aws_endpoint_url
        self.log_sink = log_sink
        self.credentials = credentials
        self._functions: dict[str, FunctionSpec] = {}
        self._idle: dict[tuple[object, ...], list[_Worker]] = {}
        self._lock = threading.Lock()
        self._closed = False
        for spec in functions:
            self.register(spec)

    def register(self, spec: FunctionSpec) -> None:
        with self._lock:
            for key in (spec.function_name, spec.arn, spec.logical_id):
                if key:
                    self._functions[key] = spec

    def function(self, name: str) -> FunctionSpec:
        """A function by its name, ARN (a version or alias qualifier is ignored) or logical id."""
        unqualified = ":".join(name.split(":")[:7]) if name.startswith("arn:") else name
        try:
            return self._functions[unqualified]
        except KeyError:
            raise UnknownFunctionError(f"no function registered as {name!r}") from None

    @property
    def functions(self) -> list[FunctionSpec]:
        return list({spec.function_name: spec for spec in self._functions.values()}.values())

    def invoke(self, function: str | FunctionSpec, payload: bytes | str = b"{}") -> InvocationResult:
        """One synchronous invocation, as the Invoke API with `RequestResponse` answers it."""
        spec = function if isinstance(function, FunctionSpec) else self.function(function)
        event = payload.decode() if isinstance(payload, bytes) else payload
        try:
            json.loads(event or "{}")
        except ValueError as error:
            raise InvalidRequestContentError(f"Could not parse request body into json: {error}") from None
        worker = self._acquire(spec)
        if isinstance(worker, InvocationResult):
            return worker
        # The deadline starts after the init phase, which Lambda bounds separately.
        request = {
            "request_id": str(uuid.uuid4()),
            "event": event or "{}",
            "invoked_function_arn": spec.arn,
            "deadline_ms": int(time.time() * 1000) + spec.timeout_seconds * 1000,
            "trace_id": _unsampled_trace_id(),
        }
        try:
            return self._run(worker, spec, request, self.log_sink or sys.stderr)
        finally:
            self._release(spec, worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [worker for idle in self._idle.values() for worker in idle]
            self._idle.clear()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> LambdaRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _acquire(self, spec: FunctionSpec) -> _Worker | InvocationResult:
        """An idle warm worker, or a new one (a cold start), or the init error of the new one."""
        try:
            credentials = self._credentials(spec)
        except Exception as error:  # the role cannot be assumed: Lambda refuses to run the function
            failure = _failure("Runtime.InvalidRole", str(error))
            return InvocationResult(payload=json.dumps(failure).encode(), function_error=UNHANDLED)
        # A renewed session gets new workers, as its variables are set when the environment starts.
        key = (*spec.worker_key(), tuple(sorted((credentials or {}).items())))
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        worker = _Worker(spec, runtime_environment(spec, self.aws_endpoint_url, credentials), key)
        return self._start(worker, spec) or worker

    def _credentials(self, spec: FunctionSpec) -> Mapping[str, str] | None:
        if self.credentials is None or spec.role_arn is None:
            return None
        return self.credentials(spec.role_arn)

    def _release(self, spec: FunctionSpec, worker: _Worker) -> None:
        with self._lock:
            keep = worker.exit_code is None and not self._closed
            if keep:
                self._idle.setdefault(worker.key, []).append(worker)
        if not keep:
            worker.stop()

    @staticmethod
    def _start(worker: _Worker, spec: FunctionSpec) -> InvocationResult | None:
        try:
            init_error = worker.start()
        except _WorkerTimedOutError:
            init_error = _failure("Sandbox.Timedout", f"Init phase of {spec.function_name} timed out")
        except _WorkerExitedError:
            init_error = _failure(
                "Runtime.ExitError", f"Runtime exited with error: exit status {worker.exit_code}"
            )
        if init_error is None:
            return None
        worker.stop()
        return InvocationResult(payload=json.dumps(init_error).encode(), function_error=UNHANDLED)

    @staticmethod
    def _run(
        worker: _Worker, spec: FunctionSpec, request: Mapping[str, Any], log_sink: TextIO
    ) -> InvocationResult:
        request_id = request["request_id"]
        try:
            response = worker.invoke(request, spec.timeout_seconds)
        except _WorkerTimedOutError:
            worker.stop()
            message = (
                f"RequestId: {request_id} Error: Task timed out after {spec.timeout_seconds:.2f} seconds"
            )
            return _unhandled(_failure("Sandbox.Timedout", message))
        except _WorkerExitedError:
            message = (
                f"RequestId: {request_id} Error: Runtime exited with error: exit status {worker.exit_code}"
            )
            worker.stop()
            return _unhandled(_failure("Runtime.ExitError", message))
        log = str(response.get("log", ""))
        if log:
            log_sink.write(log)
        if "error" in response:
            return _unhandled(response["error"], log)
        return InvocationResult(payload=str(response["payload"]).encode(), log=log)


def _unsampled_trace_id() -> str:
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"


def _failure(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


def _unhandled(error: Mapping[str, Any], log: str = "") -> InvocationResult:
    return InvocationResult(payload=json.dumps(error).encode(), function_error=UNHANDLED, log=log)
