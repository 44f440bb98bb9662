"""Start the inference server: gunicorn with several workers over ``create_app``.

SageMaker runs the container as ``docker run <image> serve``; the ``serve`` script next to this
module calls ``main``, which replaces itself with gunicorn (so gunicorn is PID 1's child of
choice and receives SageMaker's SIGTERM directly).

Environment:
- ``SAGEMAKER_BIND_TO_PORT``: port (default 8080)
- ``SAGEMAKER_MODEL_SERVER_WORKERS``: worker processes (default: the number of CPUs)
- ``SAGEMAKER_MODEL_SERVER_TIMEOUT``: seconds a request may take before its worker is restarted (60)
- ``INFERENCE_BIND_HOST``: address to bind (default 0.0.0.0; tests use 127.0.0.1)
- ``INFERENCE_WORKER_THREADS``: threads per worker (default 2, so a ping is never queued behind a
  long batch in the same worker)
- ``SM_MODEL_DIR`` and ``INFERENCE_MAX_PAYLOAD_BYTES`` are read by the app (see server.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

APP = "containers.inference.server:create_app()"
# One BLAS/OpenMP thread per worker: the workers are the parallelism, more threads only contend.
SINGLE_THREAD_MATH = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str
    port: int
    workers: int
    timeout_s: int
    threads: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServeSettings:
        return cls(
            host=environ.get("INFERENCE_BIND_HOST", "0.0.0.0"),  # the container's only interface
            port=_positive_int(environ, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=_positive_int(environ, "SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1),
            timeout_s=_positive_int(environ, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60),
            threads=_positive_int(environ, "INFERENCE_WORKER_THREADS", 2),
        )


def gunicorn_argv(settings: ServeSettings) -> list[str]:
    """The gunicorn command line for these settings."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        f"--bind={settings.host}:{settings.port}",
        f"--workers={settings.workers}",
        "--worker-class=gthread",
        f"--threads={settings.threads}",
        f"--timeout={settings.timeout_s}",
        "--graceful-timeout=10",
        "--keep-alive=5",
        # Import and load the model once in the master, then fork: workers start in milliseconds
        # and share the model's memory pages.
        "--preload",
        "--error-logfile=-",
        APP,
    ]


def server_environment(environ: Mapping[str, str], settings: ServeSettings) -> dict[str, str]:
    """The environment for gunicorn: the caller's, with single-threaded math unless set."""
    env = dict(environ)
    for name in SINGLE_THREAD_MATH:
        env.setdefault(name, "1")
    # The app reports the worker count in /execution-parameters: give it the one gunicorn uses.
    env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(settings.workers)
    return env


def main() -> None:
    settings = ServeSettings.from_environ(os.environ)
    argv = gunicorn_argv(settings)
    os.execve(argv[0], argv, server_environment(os.environ, settings))


if __name__ == "__main__":
    main()
