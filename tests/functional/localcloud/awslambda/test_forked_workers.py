"""Workers forked from the preloaded runtime are what a fresh `python -I worker.py` would be."""

from __future__ import annotations

import dataclasses
import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from localcloud.awslambda import forked_workers
from localcloud.awslambda.preloaded_runtime import PRELOADED, recorded_reads
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner

# What a handler can see of its process, and whether the preloaded libraries were imported before it.
PROBE = """
import logging
import os
import signal
import sys

PRELOADED_BEFORE_ME = "pydantic" in sys.modules

import aws_lambda_powertools  # noqa: E402  (after the check above)


def handler(event, context):
    return {
        "preloaded_before_me": PRELOADED_BEFORE_ME,
        "parent": os.getppid(),
        "environment": dict(os.environ),
        "path": sys.path,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "flags": list(sys.flags),
        "main": sys.modules["__main__"].__file__,
        "stdin_encoding": sys.stdin.encoding,
        "stdout_encoding": sys.stdout.encoding,
        "powertools_log_level": logging.getLogger("aws_lambda_powertools").level,
        "signals": {
            name: repr(signal.getsignal(getattr(signal, name)))
            for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE")
        },
    }
"""


@pytest.fixture
def probe(tmp_path: Path) -> FunctionSpec:
    asset = tmp_path / "asset"
    asset.mkdir()
    (asset / "probe.py").write_text(textwrap.dedent(PROBE))
    return FunctionSpec(
        function_name="probe", handler="probe.handler", code_dir=asset, environment={"A": "1"}
    )


def seen(spec: FunctionSpec, *, fork: bool) -> dict[str, Any]:
    with mock.patch.object(forked_workers, "FORK_WORKERS", fork), LambdaRunner([spec]) as runner:
        result = runner.invoke(spec)
        assert result.function_error is None, result.payload
        answer: dict[str, Any] = result.json()
    # Made per worker (the log stream) and per request (the trace).
    for variable in ("AWS_LAMBDA_LOG_STREAM_NAME", "_X_AMZN_TRACE_ID"):
        answer["environment"].pop(variable)
    return answer


@pytest.fixture(autouse=True)
def own_runtimes() -> Iterator[None]:
    """Runtimes started here end here; the process's others are left as they are."""
    with mock.patch.object(forked_workers, "_runtimes", []):
        yield
        forked_workers._close_runtimes()


def test_a_forked_worker_sees_what_a_fresh_one_sees(probe: FunctionSpec) -> None:
    forked, fresh = seen(probe, fork=True), seen(probe, fork=False)
    assert forked.pop("preloaded_before_me") is True
    assert fresh.pop("preloaded_before_me") is False
    assert forked.pop("parent") != os.getpid() == fresh.pop("parent")
    assert forked == fresh
    assert forked["environment"]["A"] == "1"


@pytest.mark.filterwarnings("ignore:POWERTOOLS_DEBUG environment variable is enabled:UserWarning")
def test_a_worker_whose_environment_changes_what_the_preload_read_gets_a_runtime_of_its_own(
    probe: FunctionSpec,
) -> None:
    debugging = dataclasses.replace(probe, environment={**probe.environment, "POWERTOOLS_DEBUG": "true"})
    plain = seen(probe, fork=True)
    forked, fresh = seen(debugging, fork=True), seen(debugging, fork=False)
    # Powertools reads POWERTOOLS_DEBUG as it is imported: with it, its own logger logs at DEBUG.
    assert (plain["powertools_log_level"], fresh["powertools_log_level"]) == (logging.NOTSET, logging.DEBUG)
    assert forked["powertools_log_level"] == logging.DEBUG
    assert forked["parent"] != plain["parent"]
    assert len(forked_workers._runtimes) == 2


def test_the_preload_reports_each_variable_its_imports_read() -> None:
    with recorded_reads() as read:
        os.environ.get("SOME_VARIABLE")
        _ = "OTHER_VARIABLE" in os.environ
    assert read == {"SOME_VARIABLE", "OTHER_VARIABLE"}
    with recorded_reads() as read:
        dict(os.environ)
    assert None in read
    assert "boto3" in PRELOADED
