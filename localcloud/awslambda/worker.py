"""One Lambda execution environment, run as its own process by `localcloud.awslambda.runner`.

The line protocol and the runtime it imitates: README.md. Imports nothing from the project.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Any

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The context object the Python runtime passes to a handler, from the runtime's environment."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def error_payload(
    error_type: str, message: str, trace: TracebackType | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The body Lambda returns for an unhandled error (with `X-Amz-Function-Error: Unhandled`)."""
    payload: dict[str, Any] = {
        "errorMessage": message,
        "errorType": error_type,
        "stackTrace": traceback.format_list(traceback.extract_tb(trace)) if trace else [],
    }
    if request_id is not None:
        payload["requestId"] = request_id
    return payload


def load_handler(handler_name: str) -> Handler | dict[str, Any]:
    """The handler function, or the init error the runtime would report for it."""
    module_name, _, function_name = handler_name.rpartition(".")
    if not module_name:
        return error_payload("Runtime.MalformedHandlerName", f"Bad handler '{handler_name}': no module name")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        return error_payload("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}")
    except SyntaxError as error:
        return error_payload(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}"
        )
    except Exception as error:
        return error_payload(type(error).__name__, str(error), error.__traceback__)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return error_payload("Runtime.HandlerNotFound", message)
    return handler  # type: ignore[no-any-return]  # callable() narrows to a bare Callable


@contextmanager
def captured_output() -> Iterator[Callable[[], str]]:
    """Sends file descriptors 1 and 2 to a temporary file; yields a reader of what was written."""
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as capture:
        for fd in saved:
            os.dup2(capture.fileno(), fd)

        def read() -> str:
            sys.stdout.flush()
            sys.stderr.flush()
            capture.seek(0)
            return capture.read().decode("utf-8", errors="replace")

        try:
            yield read
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def invoke(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """Runs one invocation; the response carries the JSON result or the error payload, and the log."""
    request_id = request["request_id"]
    # Set per request by the runtime; X-Ray's SDK reads it (not sampled: nothing is sent to a daemon).
    os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
    context = LambdaContext(request_id, request["invoked_function_arn"], request["deadline_ms"])
    with captured_output() as read_log:
        try:
            result = handler(json.loads(request["event"]), context)
        except Exception as error:
            return {"error": unhandled(error, request_id), "log": read_log()}
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            return {
                "error": error_payload("Runtime.MarshalError", message, None, request_id),
                "log": read_log(),
            }
        return {"payload": payload, "log": read_log()}


def unhandled(error: Exception, request_id: str) -> dict[str, Any]:
    """Logs the error as the runtime does and builds its payload."""
    # The first frame is this worker's call, which the runtime leaves out of the trace too.
    trace = error.__traceback__.tb_next if error.__traceback__ else None
    payload = error_payload(type(error).__name__, str(error), trace, request_id)
    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr)
    trace_text = "".join(payload["stackTrace"])
    print(f"Traceback (most recent call last):\n{trace_text}", end="", file=sys.stderr)
    return payload


def forget_editable_installs() -> None:
    """Drops the import hooks of editable installs (this repository's own, in a development venv): on
    AWS a module missing from the asset fails to import, so it must fail here too."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not _is_editable(finder)]
    sys.path[:] = [entry for entry in sys.path if not entry.startswith("__editable__")]


def _is_editable(finder: object) -> bool:
    return str(getattr(finder, "__module__", "")).startswith("__editable__")


def send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main() -> int:
    # The response channel is the original stdout; from here on fd 1 is the log stream, as in Lambda.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    forget_editable_installs()
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    handler = load_handler(os.environ["_HANDLER"])
    if isinstance(handler, dict):
        send(channel, {"init_error": handler})
        return 1
    send(channel, {"ready": True})
    for line in sys.stdin:
        send(channel, invoke(handler, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
