"""What grows with the endpoints: measured on synthesized apps (bench/scale_bench.py has the numbers).

Each function's environment names where the endpoints' and families' settings are, never the settings
themselves, so it stays the same size however many endpoints an environment has (Lambda refuses more than
4 KB, which three endpoints used to pass); each endpoint's settings fit a standard SSM parameter; the flag
environment keeps within AppConfig's five monitors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.scale_bench import ScaleRow, synthesize

ENDPOINT_COUNTS = (1, 6)
LAMBDA_ENVIRONMENT_LIMIT = 4096
STANDARD_PARAMETER_LIMIT = 4096
APPCONFIG_MONITORS_LIMIT = 5


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[ScaleRow, list[dict[str, Any]]]]:
    apps = {}
    for count in ENDPOINT_COUNTS:
        workdir = tmp_path_factory.mktemp(f"scale-{count}")
        row = synthesize(count, workdir)
        assert not row.error, row.error
        templates = [
            json.loads(path.read_text()) for path in sorted(Path(workdir, "cdk.out").glob("*.template.json"))
        ]
        apps[count] = (row, templates)
    return apps


def _resources(templates: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for t in templates for r in t["Resources"].values() if r["Type"] == resource_type]


def test_every_functions_environment_is_the_same_size_however_many_endpoints(
    synthesized: dict[int, tuple[ScaleRow, list[dict[str, Any]]]],
) -> None:
    (one, _), (many, templates) = synthesized[1], synthesized[max(ENDPOINT_COUNTS)]
    assert many.max_lambda_env_bytes == one.max_lambda_env_bytes < LAMBDA_ENVIRONMENT_LIMIT / 2
    for function in _resources(templates, "AWS::Lambda::Function"):
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "ENDPOINTS" not in variables and "FAMILIES" not in variables


def test_each_endpoint_and_family_has_its_settings_parameter_within_the_standard_tier(
    synthesized: dict[int, tuple[ScaleRow, list[dict[str, Any]]]],
) -> None:
    count = max(ENDPOINT_COUNTS)
    _, templates = synthesized[count]
    names = [p["Properties"]["Name"] for p in _resources(templates, "AWS::SSM::Parameter")]
    assert len([n for n in names if n.startswith("/mlrollout-prod/endpoints/")]) == count
    assert len([n for n in names if n.startswith("/mlrollout-prod/families/")]) == count
    for parameter in _resources(templates, "AWS::SSM::Parameter"):
        assert parameter["Properties"]["Tier"] == "Standard"
        # Tokens (an ARN) are written as Fn::Join parts; their resolved length is well under the margin.
        assert len(json.dumps(parameter["Properties"]["Value"])) < STANDARD_PARAMETER_LIMIT - 512


def test_the_flag_environment_keeps_within_appconfigs_monitors(
    synthesized: dict[int, tuple[ScaleRow, list[dict[str, Any]]]],
) -> None:
    _, templates = synthesized[max(ENDPOINT_COUNTS)]
    [environment] = _resources(templates, "AWS::AppConfig::Environment")
    assert 1 <= len(environment["Properties"]["Monitors"]) <= APPCONFIG_MONITORS_LIMIT
