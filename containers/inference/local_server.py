"""Run the inference server as a local process on loopback: for the functional tests, the bench and
the local cloud, which all need the real thing (gunicorn, several workers) rather than a test client.

    with LocalServer(model_dir, workers=2) as server:
        status, body = server.request("GET", "/ping")
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

SERVE_SCRIPT = Path(__file__).with_name("serve")
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (the kernel's pick for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class ServerNotReadyError(RuntimeError):
    """The server process did not answer in time, or exited."""


class LocalServer:
    """The ``serve`` entrypoint as a child process bound to 127.0.0.1 on a free port.

    The child gets its own session, so that stopping it can reach gunicorn's workers too.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        workers: int = 2,
        extra_env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.workers = workers
        self.extra_env = extra_env or {}
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The gunicorn master's process id (also its session and process group id)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Started and not exited (nor stopped)."""
        return self._process is not None and self._process.poll() is None

    def start(self, ready_timeout_s: float = 30.0, expect_healthy: bool = True) -> LocalServer:
        self.port = free_port()
        env = {
            **os.environ,
            "SM_MODEL_DIR": str(self.model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(self.workers),
            "INFERENCE_BIND_HOST": LOOPBACK,
            **self.extra_env,
        }
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(SERVE_SCRIPT)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if self.log_path and not isinstance(log, int):
                log.close()
        try:
            self.wait_until_answering(ready_timeout_s, expect_healthy)
        except BaseException:
            self.stop()  # a server that never became ready must not outlive the caller
            raise
        return self

    def wait_until_answering(self, timeout_s: float, expect_healthy: bool) -> int:
        """Poll /ping until it answers (200 when ``expect_healthy``, any status otherwise)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise ServerNotReadyError(f"the server exited early (see {self.log_path or 'its log'})")
            status = self._ping_status()
            if status is not None and (status == 200 or not expect_healthy):
                return status
            time.sleep(0.05)
        raise ServerNotReadyError(
            f"no {'healthy ' if expect_healthy else ''}answer on /ping in {timeout_s} s"
        )

    def _ping_status(self) -> int | None:
        try:
            return self.request("GET", "/ping", timeout_s=1.0)[0]
        except OSError:
            return None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
    ) -> tuple[int, bytes]:
        """One request on a fresh connection: the status and the body."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout_s)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL to the whole session if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
