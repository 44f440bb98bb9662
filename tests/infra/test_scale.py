"""What grows with the endpoints: measured on synthesized apps (bench/scale_bench.py has the numbers).

Fifty generated endpoints (each its own family, as the bench generates them) synthesize within the scale
targets, cdk-nag and cfn-lint clean. Each function's environment names where the endpoints' and
families' settings are, never the settings themselves, so it stays the same size however many endpoints
an environment has (Lambda refuses more than 4 KB); each endpoint's settings fit a standard SSM parameter;
the flag environment keeps within AppConfig's five monitors; a change to one endpoint's settings changes
its family's template and no other. Three syntheses per run (1, 50, and 50 with one endpoint changed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.scale_bench import (
    MAX_ENV_BYTES,
    MAX_RESOURCES,
    MAX_TEMPLATE_BYTES,
    TARGET_ENDPOINTS,
    ScaleRow,
    generated_config,
    synthesize,
)
from infra.nag import render
from infra.workflow_task import ALARMS_PER_RULE, PACKAGE_GROUPS_PER_RULE
from tests.infra.test_compliance import ACCEPTED_CFN_LINT_WARNINGS, _lint, _nag_report

LAMBDA_ENVIRONMENT_LIMIT = 4096
STANDARD_PARAMETER_LIMIT = 4096
APPCONFIG_MONITORS_LIMIT = 5
# EventBridge's default quota on an event pattern, in characters.
EVENT_PATTERN_LIMIT = 2048
# The endpoint whose settings the change test edits, and what it edits: its own rollout and scaling.
CHANGED_ENDPOINT = "model007"
CHANGED_FAMILY = "family007"
PLATFORM_STACK = "MlRollout-prod"


@dataclass(frozen=True)
class App:
    row: ScaleRow
    outdir: Path
    # Stack name -> template.
    templates: dict[str, dict[str, Any]]

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        return [
            r for t in self.templates.values() for r in t["Resources"].values() if r["Type"] == resource_type
        ]


def _synthesized(workdir: Path, count: int, config: dict[str, Any] | None = None) -> App:
    row = synthesize(count, workdir, config)
    assert not row.error, row.error
    outdir = workdir / "cdk.out"
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }
    return App(row, outdir, templates)


def _with_one_endpoint_changed(count: int) -> dict[str, Any]:
    config = generated_config(count)
    [endpoint] = [e for e in config["endpoints"] if e["name"] == CHANGED_ENDPOINT]
    endpoint["rollout"] = {"traffic_steps": [10, 50, 100], "bake_minutes": 45}
    endpoint["autoscaling"] = {
        **endpoint["autoscaling"],
        "max_capacity": endpoint["autoscaling"]["max_capacity"] + 1,
    }
    return config


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> App:
    return _synthesized(tmp_path_factory.mktemp("scale-1"), 1)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> App:
    return _synthesized(tmp_path_factory.mktemp(f"scale-{TARGET_ENDPOINTS}"), TARGET_ENDPOINTS)


@pytest.fixture(scope="module")
def many_changed(tmp_path_factory: pytest.TempPathFactory) -> App:
    workdir = tmp_path_factory.mktemp(f"scale-{TARGET_ENDPOINTS}-changed")
    return _synthesized(workdir, TARGET_ENDPOINTS, _with_one_endpoint_changed(TARGET_ENDPOINTS))


def test_fifty_endpoints_synthesize_within_the_scale_targets(many: App) -> None:
    assert len(many.templates) == TARGET_ENDPOINTS + 1, "the environment's stack and one per family"
    for name, template in many.templates.items():
        assert len(template["Resources"]) <= MAX_RESOURCES, name
    assert many.row.max_template_bytes <= MAX_TEMPLATE_BYTES
    assert many.row.max_lambda_env_bytes <= MAX_ENV_BYTES


def test_the_environments_stack_grows_by_split_rules_alone(one: App, many: App) -> None:
    """Per endpoint the environment's stack adds its flags (one document) and a share of the rules that
    list every endpoint's alarm or family's package group (a rule per ALARMS_PER_RULE or
    PACKAGE_GROUPS_PER_RULE of them, with its invoke permission): nothing per family (its retraining
    triggers, policies) any more."""
    added = set(many.templates[PLATFORM_STACK]["Resources"]) - set(one.templates[PLATFORM_STACK]["Resources"])
    assert added, "fifty endpoints split the abort and approval rules"
    assert all(key.startswith(("RolloutAlarmAborts", "RolloutPackageApproved")) for key in added), added
    assert len(added) <= 2 * -(-TARGET_ENDPOINTS // ALARMS_PER_RULE) + -(
        -TARGET_ENDPOINTS // PACKAGE_GROUPS_PER_RULE
    )


def test_fifty_endpoints_are_cdk_nag_clean(many: App) -> None:
    nag = _nag_report(many.outdir)
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_fifty_endpoints_are_cfn_lint_clean(many: App) -> None:
    """The environment's template and the first and last family's: the generated families are copies of
    one endpoint under other names (checked here), so two of them stand for all fifty (linting each
    family's template takes seconds)."""
    families = [name for name in many.templates if name != PLATFORM_STACK]

    def shape(name: str) -> list[str]:
        return sorted(resource["Type"] for resource in many.templates[name]["Resources"].values())

    assert all(shape(name) == shape(families[0]) for name in families)
    for name in (PLATFORM_STACK, families[0], families[-1]):
        for match in _lint(many.outdir / f"{name}.template.json"):
            rule = match.rule.id
            assert not rule.startswith("E"), f"{name}: {match}"
            assert rule in ACCEPTED_CFN_LINT_WARNINGS, f"{name}: unlisted warning {match}"


def test_changing_one_endpoints_settings_changes_its_familys_template_alone(
    many: App, many_changed: App
) -> None:
    assert many.templates.keys() == many_changed.templates.keys()
    changed = {name for name in many.templates if many.templates[name] != many_changed.templates[name]}
    assert changed == {f"{PLATFORM_STACK}-{CHANGED_FAMILY}"}


def _as_deployed(value: Any) -> Any:
    """A template value as a deployment passes it on: references rendered (<LogicalId>, longer than most
    names they stand for), the account id in place."""
    if isinstance(value, list):
        return [_as_deployed(item) for item in value]
    if isinstance(value, dict) and value.keys() & {"Fn::Join", "Ref", "Fn::GetAtt"}:
        return render(value).replace("<AWS::AccountId>", "123456789012")
    if isinstance(value, dict):
        return {key: _as_deployed(item) for key, item in value.items()}
    return value


def test_every_event_pattern_keeps_within_eventbridges_size(many: App) -> None:
    """Rules that list every endpoint's alarm or every family's package group are split (one rule used to
    list fifty composite alarms: 4 KB, which EventBridge refuses)."""
    patterns = [
        r["Properties"]["EventPattern"]
        for r in many.resources("AWS::Events::Rule")
        if "EventPattern" in r["Properties"]
    ]
    assert patterns
    for pattern in patterns:
        assert len(json.dumps(_as_deployed(pattern))) <= EVENT_PATTERN_LIMIT, pattern


def test_every_functions_environment_is_the_same_size_however_many_endpoints(one: App, many: App) -> None:
    assert many.row.max_lambda_env_bytes == one.row.max_lambda_env_bytes < LAMBDA_ENVIRONMENT_LIMIT / 2
    for function in many.resources("AWS::Lambda::Function"):
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "ENDPOINTS" not in variables and "FAMILIES" not in variables


def test_each_endpoint_and_family_has_its_settings_parameter_within_the_standard_tier(many: App) -> None:
    names = [p["Properties"]["Name"] for p in many.resources("AWS::SSM::Parameter")]
    assert len([n for n in names if n.startswith("/mlrollout-prod/endpoints/")]) == TARGET_ENDPOINTS
    assert len([n for n in names if n.startswith("/mlrollout-prod/families/")]) == TARGET_ENDPOINTS
    for parameter in many.resources("AWS::SSM::Parameter"):
        assert parameter["Properties"]["Tier"] == "Standard"
        # Tokens (an ARN) are written as Fn::Join parts; their resolved length is well under the margin.
        assert len(json.dumps(parameter["Properties"]["Value"])) < STANDARD_PARAMETER_LIMIT - 512


def test_the_flag_environment_keeps_within_appconfigs_monitors(many: App) -> None:
    [environment] = many.resources("AWS::AppConfig::Environment")
    assert 1 <= len(environment["Properties"]["Monitors"]) <= APPCONFIG_MONITORS_LIMIT
