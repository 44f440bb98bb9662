"""Which project package may import which: the model code sits below both the training steps and the
inference server, and neither of those two imports the other; the `mlrollout` command sits on the
functions' domain code and never loads the CDK app, and nothing of the platform loads the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_MODULES = sorted(f"pipelines.{path.stem}" for path in (ROOT / "pipelines").glob("[!_]*.py"))
SERVER_MODULES = ["containers.inference.server", "containers.inference.serve"]
MODEL_MODULES = sorted(f"trained_model.{path.stem}" for path in (ROOT / "trained_model").glob("[!_]*.py"))
CLI_MODULES = sorted(f"mlrollout_cli.{path.stem}" for path in (ROOT / "mlrollout_cli").glob("[!_]*.py"))
PLATFORM_MODULES = ["app", "infra.stack", "lambdas.rollout.aws.wiring", "lambdas.rollout.aws.aborts"]


def _project_packages_loaded_by(modules: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        f"for name in {modules!r}: __import__(name)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (PIPELINE_MODULES, {"containers"}),
        (SERVER_MODULES, {"pipelines"}),
        (MODEL_MODULES, {"pipelines", "containers", "lambdas"}),
        (CLI_MODULES, {"infra", "aws_cdk", "localcloud", "containers", "pipelines", "bench"}),
        (PLATFORM_MODULES, {"mlrollout_cli"}),
    ],
    ids=["pipelines", "inference server", "trained_model", "mlrollout command", "platform"],
)
def test_a_package_does_not_import_the_ones_above_it(modules: list[str], forbidden: set[str]) -> None:
    assert modules
    assert _project_packages_loaded_by(modules) & forbidden == set()
