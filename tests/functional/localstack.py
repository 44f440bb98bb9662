"""LocalStack as the second backend of the functional tier: found, started once per test session (per
pytest-xdist worker) on a free 127.0.0.1 port, and stopped after.

Where it comes from, in order: `LOCALSTACK_ENDPOINT` (one already running); `LOCALSTACK_PYTHON` (the
Python of a venv with `localstack-core`); `.venv-localstack/bin/python`, which `make setup` installs from
`requirements-localstack.lock` where a Python >= 3.13 exists. The tests that use it skip, saying why,
only where no such Python exists; where one exists and LocalStack is not installed, they fail with the
command that installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO_ROOT / ".venv-localstack" / "bin" / "python"
# What the cross-checks use, each of which LocalStack's free edition runs in its own process, without
# Docker (Lambda, and therefore custom resources, would need Docker).
# DynamoDB is not among them: LocalStack runs DynamoDB Local on a Java it downloads at first use.
SERVICES = "cloudwatch,cloudformation,stepfunctions,s3,sqs,sns,iam,sts,events,ssm,kms,logs"
START_TIMEOUT_SECONDS = 120
REGION = "us-east-1"
ACCOUNT = "000000000000"  # LocalStack's default account for the "test" access key
# localstack-core 2026.3 imports `warnings.deprecated`, new in Python 3.13.
MINIMUM_PYTHON = (3, 13)


class LocalStackMissing(RuntimeError):
    """LocalStack cannot run here; the message says why and, where it could, how to install it."""


def python_for_localstack() -> str | None:
    """A Python >= 3.13 that runs on this machine (as the Makefile looks for one: on the PATH, then among
    pyenv's versions; a pyenv shim of a version not selected does not run), or None."""
    candidates = [shutil.which(name) for name in ("python3.13", "python3.14")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.1[3-9]*/bin/python3"))
    check = f"import sys; sys.exit(sys.version_info < {MINIMUM_PYTHON})"
    for candidate in filter(None, candidates):
        try:
            ran = subprocess.run([candidate, "-c", check], check=False, capture_output=True, timeout=30)
            runs = ran.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            runs = False
        if runs:
            return candidate
    return None


def localstack_python() -> Path:
    """The Python that runs LocalStack; `LocalStackMissing` when there is none."""
    if configured := os.environ.get("LOCALSTACK_PYTHON"):
        if not Path(configured).exists():
            raise LocalStackMissing(f"LOCALSTACK_PYTHON={configured} does not exist")
        return Path(configured)
    if VENV_PYTHON.exists():
        return VENV_PYTHON
    if python_for_localstack() is None:
        raise LocalStackMissing(
            "no Python >= 3.13 on this machine (LocalStack needs one; `make setup` installs it into "
            ".venv-localstack where a Python >= 3.13 is on the PATH or among pyenv's versions)"
        )
    raise LocalStackMissing(
        f"LocalStack is not installed, though {python_for_localstack()} could run it: `make setup`"
    )


def healthy(endpoint: str, services: str = SERVICES) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as response:
            states = json.loads(response.read())["services"]
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False
    return all(states.get(name) in ("available", "running") for name in services.split(","))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_localstack(python: Path, volume: Path) -> Iterator[str]:
    """LocalStack on a free loopback port while open (its log in `volume`); its endpoint URL."""
    port = free_port()
    log_path = volume / "localstack.log"
    # Its own temporary folder: LocalStack keeps CloudWatch's metrics database in $TMPDIR/localstack and
    # clears that folder on start and stop, so beside another worker's LocalStack the metrics failed with
    # "unable to open database file".
    own_tmp = volume / "tmp"
    own_tmp.mkdir(parents=True, exist_ok=True)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(volume),
        "TMPDIR": str(own_tmp),
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": SERVICES,
        "EAGER_SERVICE_LOADING": "1",
        "DNS_ADDRESS": "0",  # no DNS server on port 53
        "LOCALSTACK_VOLUME_DIR": str(volume / "volume"),
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",  # no analytics calls home
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not healthy(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                late = f"did not start on {endpoint} within {START_TIMEOUT_SECONDS} s"
                raise RuntimeError(f"LocalStack ({python}) {late}:\n{tail}")
            time.sleep(0.5)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
