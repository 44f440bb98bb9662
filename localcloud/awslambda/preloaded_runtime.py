"""The libraries every function imports, imported once; each new worker is forked from this process.

Run by `localcloud.awslambda.forked_workers` as `python -I preloaded_runtime.py` with a Unix socket
(SOCK_SEQPACKET: one message per packet) as its stdin. Like `worker.py`, this file imports nothing from
the project. The protocol, one JSON object per packet:

* to the runner, once preloaded: `{"ready": true, "variables": [...], "environment": {...}}`: the
  environment variables the imports read (`null`: they read the whole environment), and the environment
  as the interpreter left it at startup (it sets LC_CTYPE when it coerces the C locale). A worker
  forked from here is what a fresh process would be only if its environment holds the same values for
  those variables and for the ones the interpreter reads as it starts;
* from the runner: `{"spawn": {"script", "cwd", "environment"}}` with the worker's stdin, stdout and
  stderr as three file descriptors (SCM_RIGHTS); answered `{"pid": n}`;
* from the runner: `{"kill": pid}` (only a child not yet reaped is killed: its pid cannot be reused);
* to the runner: `{"exited": pid, "code": c}` once a child ended (`c` as `Popen.returncode`).

The child replaces its environment, working directory, standard streams and `sys.argv` with the
worker's, then runs the worker script as `__main__`, as `python -I <script>` would.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The runtime's boto3 and the Powertools layer's libraries, and pydantic: ~0.45 of the ~0.8 CPU-seconds a
# rollout handler takes to import. Not X-Ray's SDK: its recorder reads the Lambda environment as it is
# imported. None binds the clock at import (only botocore's client-side monitoring has a `time.time`
# default argument, and it is off unless AWS_CSM_ENABLED), so a worker on the accelerated clock
# (`clock_worker.py`) sees the same time through them as when it imported them itself.
PRELOADED = (
    "boto3",
    "boto3.session",
    "botocore.client",
    "botocore.session",
    "pydantic",
    "pydantic.main",
    "pydantic.fields",
    "aws_lambda_powertools",
    "aws_lambda_powertools.utilities.parameters",
)
MAX_PACKET = 1 << 20


@contextmanager
def recorded_reads() -> Iterator[set[str | None]]:
    """The names of the environment variables read meanwhile; `None` in it if the whole was read."""
    read: set[str | None] = set()
    environ_type = type(os.environ)
    originals = {name: getattr(environ_type, name) for name in ("__getitem__", "__contains__", "__iter__")}

    def getitem(self: Any, key: str) -> str:
        read.add(key)
        return originals["__getitem__"](self, key)  # type: ignore[no-any-return]

    def contains(self: Any, key: object) -> bool:
        read.add(str(key))
        return originals["__contains__"](self, key)  # type: ignore[no-any-return]

    def iterate(self: Any) -> Iterator[str]:
        read.add(None)
        return originals["__iter__"](self)  # type: ignore[no-any-return]

    for name, replacement in (("__getitem__", getitem), ("__contains__", contains), ("__iter__", iterate)):
        setattr(environ_type, name, replacement)
    try:
        yield read
    finally:
        for name, original in originals.items():
            setattr(environ_type, name, original)


def preload() -> list[str] | None:
    with recorded_reads() as read:
        for module in PRELOADED:
            importlib.import_module(module)
    return None if None in read else sorted(name for name in read if name is not None)


class RunnerGoneError(Exception):
    """The runner closed its end of the socket."""


def send(control: socket.socket, message: dict[str, Any]) -> None:
    try:
        control.send(json.dumps(message).encode())
    except OSError as error:  # EPIPE, ECONNRESET: the runner ended first
        raise RunnerGoneError from error


def main() -> int:
    try:
        return serve()
    except RunnerGoneError:  # the runner's workers end as their stdin closes
        return 0


def serve() -> int:
    environment = dict(os.environ)
    # The control socket is moved off fd 0: a child's stdin is dup'ed there.
    control = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    variables = preload()
    # Ctrl-C in a terminal reaches the whole process group: the workers end as a fresh process would, and
    # this one quietly when the runner closes the socket (no traceback of its own on the terminal).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD reaches the wakeup fd
    children: set[int] = set()
    send(control, {"ready": True, "variables": variables, "environment": environment})
    while True:
        readable, _, _ = select.select([control.fileno(), wakeup_read], [], [])
        if wakeup_read in readable:
            os.read(wakeup_read, 4096)
            _report_exits(control, children)
        if control.fileno() not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(control, MAX_PACKET, 3)
        except OSError as error:
            raise RunnerGoneError from error
        if not data:
            raise RunnerGoneError
        request = json.loads(data)
        if "kill" in request:
            if request["kill"] in children:
                os.kill(request["kill"], signal.SIGKILL)
            continue
        pid = os.fork()
        if pid == 0:
            control.close()
            os.close(wakeup_read)
            os.close(wakeup_write)
            return _become_worker(request["spawn"], fds)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        send(control, {"pid": pid})


def _report_exits(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        send(control, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become_worker(spawn: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: the worker's process, as `python -I <script>` starts it (never returns: the
    script's end raises SystemExit out of `main`, so the interpreter ends as it ends a script)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(spawn["cwd"])
    os.environ.clear()
    os.environ.update(spawn["environment"])
    sys.argv = [spawn["script"]]
    runpy.run_path(spawn["script"], run_name="__main__")
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
