"""`cdk synth` through the pinned CLI and cdk.json, as a platform engineer runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.infra.conftest import REPO_ROOT

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def _synth(env: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    assert CDK.exists(), "the pinned CDK CLI is missing: run `make setup`"
    return subprocess.run(
        [str(CDK), "synth", "--quiet", "-c", f"env={env}", "-o", str(outdir)],
        cwd=REPO_ROOT,
        # A test run sends the CLI's usage telemetry nowhere (the team's own `cdk` runs keep their choice).
        env={
            **os.environ,
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_CLI_TELEMETRY": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_prod_synthesizes_through_the_cli_with_every_endpoint(tmp_path: Path) -> None:
    result = _synth("prod", tmp_path)
    assert result.returncode == 0, result.stderr
    # The environment's stack and one per model family, each endpoint in its family's.
    assert (tmp_path / "MlRollout-prod.template.json").is_file()
    churn = (tmp_path / "MlRollout-prod-churn-classifier.template.json").read_text()
    fraud = (tmp_path / "MlRollout-prod-fraud-scorer.template.json").read_text()
    assert '"EndpointName": "mlrollout-prod-churn"' in churn
    assert '"EndpointName": "mlrollout-prod-fraud"' in fraud


def test_unknown_environment_fails_synth_naming_the_missing_file(tmp_path: Path) -> None:
    result = _synth("staging", tmp_path)
    assert result.returncode != 0
    known = "dev, local, localstaging, prod"
    expected = f"staging.yaml: no configuration for environment 'staging' (known: {known})"
    assert expected in result.stderr
    assert not list(tmp_path.glob("*.template.json"))
