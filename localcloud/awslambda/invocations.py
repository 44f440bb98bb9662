"""Lambda on moto with the real handler code: functions created from the template, and moto's
invocations routed to the runner.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import inspect
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import moto
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction

from localcloud.awslambda.runner import FunctionSpec, InvalidRequestContentError, LambdaRunner
from localcloud.cloudwatch.emf import publish_log_metrics

# The moto version whose `LambdaFunction.invoke` this module replaces (signature below, checked on use).
MOTO_VERSION = "5.2.5"
REPLACED_INVOKE_PARAMETERS = ("self", "body", "request_headers", "response_headers")
# The Invoke API returns the last 4 KB of the log when asked for `LogType=Tail`.
LOG_TAIL_BYTES = 4096


class MotoChangedError(RuntimeError):
    """moto's `LambdaFunction.invoke` is no longer the method this module knows how to replace."""


def check_moto_invoke() -> None:
    """Fails loudly when moto's replaced method changed shape, instead of routing nothing silently."""
    parameters = tuple(inspect.signature(LambdaFunction.invoke).parameters)
    if parameters != REPLACED_INVOKE_PARAMETERS:
        raise MotoChangedError(
            f"moto {moto.__version__}: LambdaFunction.invoke{parameters} is not the "
            f"LambdaFunction.invoke{REPLACED_INVOKE_PARAMETERS} of moto {MOTO_VERSION} that "
            "localcloud.awslambda.invocations replaces; re-read moto/awslambda/models.py"
        )


@contextmanager
def route_lambda_invocations(runner: LambdaRunner) -> Iterator[LambdaRunner]:
    """While open, every Lambda invocation moto serves (in this process) runs on `runner`.

    The function's configuration is moto's (handler, environment, timeout, memory: an update through
    the API applies to the next invocation); its code is the asset the runner registered under the
    function's name. moto's `lambda.use_docker=False` setting bypasses this method: leave it unset.
    """
    check_moto_invoke()

    def invoke(
        function: LambdaFunction,
        body: str | bytes | None,
        request_headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        if invocation_type(request_headers) == "DryRun":
            return b""  # Lambda only checks the request: nothing runs
        return invoke_on_runner(runner, function, body, response_headers)

    with mock.patch.object(LambdaFunction, "invoke", invoke):
        yield runner


def invocation_type(request_headers: Any) -> str:
    """`X-Amz-Invocation-Type`, whatever the header's case (moto passes HTTP headers or a plain dict)."""
    for name, value in dict(request_headers or {}).items():
        if str(name).lower() == "x-amz-invocation-type":
            return str(value)
    return "RequestResponse"


def invoke_on_runner(
    runner: LambdaRunner, function: LambdaFunction, body: str | bytes | None, response_headers: dict[str, str]
) -> bytes:
    """moto's invoke, run on the runner: the payload, and the headers the Invoke API answers with."""
    spec = configured_spec(runner.function(function.function_name), function)
    try:
        result = runner.invoke(spec, body or "{}")
    except InvalidRequestContentError as error:
        raise LambdaClientError("InvalidRequestContentException", str(error)) from None
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    tail = result.log.encode()[-LOG_TAIL_BYTES:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
    response_headers["x-amz-executed-version"] = "$LATEST"
    if result.log:
        # Into moto's CloudWatch Logs, under the function's log group, as Lambda writes them.
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs(result.log)
        # CloudWatch extracts the metrics of the lines in embedded metric format; moto does not.
        publish_log_metrics(result.log, account_id=function.account_id, region=function.region)
    return result.payload


def configured_spec(registered: FunctionSpec, function: LambdaFunction) -> FunctionSpec:
    """The registered code with the configuration moto holds for the function now."""
    return dataclasses.replace(
        registered,
        handler=str(function.handler),
        environment={key: str(value) for key, value in function.environment_vars.items()},
        runtime=str(function.run_time),
        timeout_seconds=int(function.timeout),
        memory_mb=int(function.memory_size),
        region=function.region,
        account_id=function.account_id,
        role_arn=str(function.role) if function.role else None,
    )


def create_functions(client: Any, functions: Iterable[FunctionSpec], *, role_arn: str) -> Mapping[str, str]:
    """Creates the functions in the emulator as the template declares them; their ARNs by function name.

    The code uploaded is the asset itself (zipped), so that the emulator's CodeSha256 and CodeSize are
    the asset's; the runner still runs the unzipped asset directory.
    """
    # `client` is a boto3 Lambda client, typed Any: the project has no mypy-boto3-lambda stubs.
    arns = {}
    for spec in functions:
        response = client.create_function(
            FunctionName=spec.function_name,
            Runtime=spec.runtime,
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": zipped(spec.code_dir)},
            Environment={"Variables": dict(spec.environment)},
            Timeout=spec.timeout_seconds,
            MemorySize=spec.memory_mb,
        )
        arns[spec.function_name] = response["FunctionArn"]
    return arns


def zipped(directory: Path) -> bytes:
    """The directory's files as a zip archive. Functions of one template share an asset and tests deploy
    a template again and again: zipping it was a tenth of a rollout test's main process. An archive is
    kept for as long as no file of the directory is added, removed or changed (size or mtime)."""
    files = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            stat = path.stat()
            files.append((path.relative_to(directory).as_posix(), stat.st_size, stat.st_mtime_ns))
    return _zipped(directory, tuple(files))


@functools.lru_cache(maxsize=32)
def _zipped(directory: Path, files: tuple[tuple[str, int, int], ...]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, _size, _modified in files:
            archive.write(directory / relative, relative)
    return buffer.getvalue()
