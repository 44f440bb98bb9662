"""New Lambda workers forked from a process that has imported the libraries every function imports
(`preloaded_runtime.py`), instead of a fresh interpreter each time.

A cold start of a rollout handler costs about 0.8 CPU-seconds here, half of it importing boto3, pydantic
and Powertools again; a test run starts hundreds. The fork is what a fresh `python -I <script>` would be
as long as the variables those imports read hold the same values in the worker's environment: the
preloaded runtime reports which it read, and a worker whose environment differs in one gets a runtime
of its own (or, past `MAX_RUNTIMES`, a fresh process). Two things differ from a fresh process, neither
observable by a handler here: the preloaded modules are in `sys.modules` before the handler imports
them, and the workers of one runtime share its string hash seed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Protocol

from localcloud.awslambda.preloaded_runtime import MAX_PACKET

PRELOADED_RUNTIME_SCRIPT = Path(__file__).with_name("preloaded_runtime.py")
# Bytecode goes where this interpreter keeps it when it has a prefix apart from the sources (-I ignores
# PYTHONPYCACHEPREFIX, so it is passed on); nothing is ever written into the asset.
BYTECODE = ["-X", f"pycache_prefix={sys.pycache_prefix}"] if sys.pycache_prefix else ["-B"]
# What the interpreter reads from the environment as it starts, before any import (-I ignores PYTHON*).
STARTUP_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
# One per distinct value of the variables the preloaded imports read (a runtime's AWS_EXECUTION_ENV, ...).
MAX_RUNTIMES = 4
# LOCALCLOUD_FORK_WORKERS=0 starts every worker as a fresh interpreter.
FORK_WORKERS = (
    hasattr(socket, "send_fds") and hasattr(os, "fork") and os.environ.get("LOCALCLOUD_FORK_WORKERS") != "0"
)
# The preloaded imports take about a second; a busy machine gets slack, as the workers' init phase does.
READY_TIMEOUT_SECONDS = 30.0
SPAWN_TIMEOUT_SECONDS = 10.0
# The exit code reported for a worker whose runtime ended before it (its status is lost with it).
LOST = -9


class WorkerProcess(Protocol):
    """What the runner uses of a worker's process: `subprocess.Popen`'s."""

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def kill(self) -> None: ...


def interpreter(script: Path) -> list[str]:
    """The command line of a worker started fresh (-I: no user site, no PYTHON* variables, no script or
    working directory on sys.path)."""
    return [sys.executable, "-I", *BYTECODE, str(script)]


def start_worker(script: Path, environment: Mapping[str, str], cwd: Path) -> WorkerProcess:
    """The worker's process: forked from a preloaded runtime that serves its environment, else fresh."""
    if FORK_WORKERS:
        runtime = _runtime_for(environment)
        if runtime is not None:
            try:
                return runtime.spawn(script, environment, cwd)
            except RuntimeUnavailableError:
                pass
    return subprocess.Popen(
        interpreter(script), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(environment), cwd=cwd
    )


class RuntimeUnavailableError(Exception):
    """The preloaded runtime did not start, or has ended."""


class ForkedProcess:
    """A worker forked by a `PreloadedRuntime`, seen through the part of `Popen` the runner uses."""

    def __init__(self, runtime: PreloadedRuntime, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._runtime = runtime
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout

    def poll(self) -> int | None:
        return self._runtime.exit_code(self.pid)

    def wait(self) -> int:
        return self._runtime.wait_for_exit(self.pid)

    def kill(self) -> None:
        self._runtime.kill(self.pid)


class PreloadedRuntime:
    """One `preloaded_runtime.py` process and its control socket. Thread-safe."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            interpreter(PRELOADED_RUNTIME_SCRIPT),
            stdin=theirs.fileno(),
            stdout=subprocess.DEVNULL,
            env=dict(environment),
        )
        theirs.close()
        self._control = ours
        self._control.settimeout(READY_TIMEOUT_SECONDS)
        try:
            ready = json.loads(self._control.recv(MAX_PACKET) or b"{}")
        except (OSError, ValueError):
            ready = {}
        if not ready.get("ready"):
            self.close()
            raise RuntimeUnavailableError("the preloaded runtime did not start")
        self._control.settimeout(None)
        variables: list[str] | None = ready["variables"]
        # None: the imports read the whole environment, so no other worker's would be the same.
        self.started_with = (
            None
            if variables is None
            else {name: environment.get(name) for name in (*STARTUP_VARIABLES, *variables)}
        )
        # What the interpreter added to its environment as it started, which a fresh worker's gets too.
        self._added_at_startup = {
            name: value for name, value in ready["environment"].items() if environment.get(name) != value
        }
        self._spawning = threading.Lock()
        self._pids: queue.Queue[int] = queue.Queue()
        self._exited = threading.Condition()
        self._exit_codes: dict[int, int] = {}
        self._alive = True
        self._broken = False  # a spawn went unanswered: a late answer would be taken for the next one's
        threading.Thread(target=self._read, name="preloaded-runtime", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self._alive and not self._broken

    def serves(self, environment: Mapping[str, str]) -> bool:
        """Whether a worker forked here is what a fresh process with `environment` would be."""
        if not self.alive or self.started_with is None:
            return False
        return all(environment.get(name) == value for name, value in self.started_with.items())

    def spawn(self, script: Path, environment: Mapping[str, str], cwd: Path) -> ForkedProcess:
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        environment = {**environment, **self._added_at_startup}
        request = {"spawn": {"script": str(script), "cwd": str(cwd), "environment": environment}}
        try:
            with self._spawning:
                # The worker's stderr is this process's file descriptor 2, as a Popen child inherits it.
                fds = [stdin_read, stdout_write, 2]
                try:
                    socket.send_fds(self._control, [json.dumps(request).encode()], fds)
                    pid = self._pids.get(timeout=SPAWN_TIMEOUT_SECONDS)
                except (OSError, queue.Empty) as error:
                    self._broken = True
                    raise RuntimeUnavailableError(str(error)) from error
        except RuntimeUnavailableError:
            for fd in (stdin_write, stdout_read):
                os.close(fd)
            raise
        finally:
            for fd in (stdin_read, stdout_write):
                os.close(fd)
        return ForkedProcess(self, pid, os.fdopen(stdin_write, "wb"), os.fdopen(stdout_read, "rb"))

    def exit_code(self, pid: int) -> int | None:
        with self._exited:
            return self._exit_codes.get(pid, None if self._alive else LOST)

    def wait_for_exit(self, pid: int) -> int:
        with self._exited:
            self._exited.wait_for(lambda: pid in self._exit_codes or not self._alive)
            return self._exit_codes.get(pid, LOST)

    def kill(self, pid: int) -> None:
        # The runtime kills it only while it has not reaped it: a reaped pid may already be another's.
        with self._spawning:
            if self.exit_code(pid) is None:
                with contextlib.suppress(OSError):
                    self._control.send(json.dumps({"kill": pid}).encode())

    def close(self) -> None:
        self._control.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _read(self) -> None:
        while True:
            try:
                packet = self._control.recv(MAX_PACKET)
            except OSError:
                packet = b""
            if not packet:
                with self._exited:
                    self._alive = False
                    self._exited.notify_all()
                return
            message = json.loads(packet)
            if "pid" in message:
                self._pids.put(int(message["pid"]))
            elif "exited" in message:
                with self._exited:
                    self._exit_codes[int(message["exited"])] = int(message["code"])
                    self._exited.notify_all()


_runtimes: list[PreloadedRuntime] = []
_runtimes_lock = threading.Lock()


def _runtime_for(environment: Mapping[str, str]) -> PreloadedRuntime | None:
    with _runtimes_lock:
        for runtime in [runtime for runtime in _runtimes if not runtime.alive]:
            _runtimes.remove(runtime)
            runtime.close()
        for runtime in _runtimes:
            if runtime.serves(environment):
                return runtime
        if len(_runtimes) >= MAX_RUNTIMES:
            return None
        try:
            runtime = PreloadedRuntime(environment)
        except RuntimeUnavailableError:
            return None
        _runtimes.append(runtime)
        return runtime if runtime.serves(environment) else None


def _close_runtimes() -> None:
    with _runtimes_lock:
        for runtime in _runtimes:
            runtime.close()
        _runtimes.clear()


atexit.register(_close_runtimes)
