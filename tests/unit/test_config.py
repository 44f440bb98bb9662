"""A bad environment file fails with the file, the field and the problem named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    ENVIRONMENTS_DIR,
    ConfigError,
    EnvironmentConfig,
    ReleaseSource,
    ReleaseTarget,
    load_config,
    release_chain,
)
from lambdas.rollout.payloads import Strategy

Mutation = Callable[[dict[str, Any]], None]


def dev_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ENVIRONMENTS_DIR / "dev.yaml").read_text())
    return document


def write_env(directory: Path, document: dict[str, Any], env: str = "dev") -> Path:
    path = directory / f"{env}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def load_mutated(tmp_path: Path, mutate: Mutation) -> EnvironmentConfig:
    document = dev_document()
    mutate(document)
    write_env(tmp_path, document)
    return load_config("dev", tmp_path)


@pytest.mark.parametrize("env", ["dev", "prod", "local", "localstaging"])
def test_shipped_environment_files_are_valid(env: str) -> None:
    config = load_config(env)
    assert config.name == env
    assert config.rollout.traffic_steps[-1] == 100


def test_dev_file_sets_every_described_setting() -> None:
    config = load_config("dev")
    endpoint = config.endpoints[0]
    assert endpoint.initial_model.image_uri.endswith(":0.1.0")
    assert endpoint.autoscaling.max_capacity >= endpoint.autoscaling.min_capacity
    assert endpoint.data_capture.enabled
    assert config.rollout.strategy is Strategy.CANARY
    assert config.notifications.emails
    assert config.retraining.schedule.startswith("rate(")


def _set(path: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[leaf]

    return mutate


def _duplicate_endpoint(document: dict[str, Any]) -> None:
    document["endpoints"].append(dict(document["endpoints"][0]))


BAD_FILES: dict[str, tuple[Mutation, str, str]] = {
    "unknown key": (_set("rollout.bake_minuts", 5), "rollout.bake_minuts", "unknown key"),
    "unknown nested key": (_set("endpoints.0.autoscalling", {}), "endpoints.0.autoscalling", "unknown key"),
    "steps not increasing": (
        _set("rollout.traffic_steps", [5, 50, 25, 100]),
        "rollout.traffic_steps",
        "strictly increase",
    ),
    "steps repeated": (
        _set("rollout.traffic_steps", [5, 5, 100]),
        "rollout.traffic_steps",
        "strictly increase",
    ),
    "steps not ending at 100": (
        _set("rollout.traffic_steps", [5, 25, 50]),
        "rollout.traffic_steps",
        "end at 100",
    ),
    "weight above 100": (_set("rollout.traffic_steps", [5, 150]), "rollout.traffic_steps", "within 1-100"),
    "weight below 0": (_set("rollout.traffic_steps", [-5, 100]), "rollout.traffic_steps", "within 1-100"),
    "unknown strategy": (_set("rollout.strategy", "yolo"), "rollout.strategy", "canary"),
    "duplicate endpoint names": (_duplicate_endpoint, "endpoints", "duplicate endpoint names: ['churn']"),
    "missing initial model": (
        _delete("endpoints.0.initial_model"),
        "endpoints.0.initial_model",
        "Field required",
    ),
    "image not in ECR": (
        _set("endpoints.0.initial_model.image_uri", "docker.io/library/python:3.13"),
        "endpoints.0.initial_model.image_uri",
        "should match pattern",
    ),
    "autoscaling bounds reversed": (
        _set("endpoints.0.autoscaling", {"min_capacity": 5, "max_capacity": 2}),
        "endpoints.0.autoscaling",
        "min_capacity 5 exceeds max_capacity 2",
    ),
    "bad e-mail": (_set("notifications.emails", ["oncall"]), "notifications.emails", "not e-mail addresses"),
    "bad schedule": (_set("retraining.schedule", "daily"), "retraining.schedule", "rate(N unit) or cron"),
    "datapoints above periods": (
        _set("alarms.datapoints_to_alarm", 9),
        "alarms",
        "datapoints_to_alarm 9 exceeds evaluation_periods 5",
    ),
    "metric threshold not a fraction": (
        _set("rollout.gates.minimum_metrics", {"accuracy": 70}),
        "rollout.gates.minimum_metrics",
        "within 0-1",
    ),
    "judge alpha out of range": (
        _set("rollout.judge.rollback_alpha", 0.7),
        "rollout.judge.rollback_alpha",
        "0.5",
    ),
    "judge unknown key": (_set("rollout.judge.alfa", 0.05), "rollout.judge.alfa", "unknown key"),
    "drift gate without captured data": (
        _set("endpoints.0.data_capture.enabled", False),
        "(top level)",
        "captures no requests, which the drift gate needs",
    ),
    "upper-case endpoint name": (
        _set("endpoints.0.name", "Churn"),
        "endpoints.0.name",
        "should match pattern",
    ),
    "release into itself": (
        _set("release", {"next_environment": "dev"}),
        "(top level)",
        "'dev' cannot release into itself",
    ),
    "release approval misspelt": (
        _set("release", {"next_environment": "prod", "approval": "auto"}),
        "release.approval",
        "'none' or 'manual'",
    ),
    "release timeout without a manual approval": (
        _set("release", {"next_environment": "prod", "approval": "none", "approval_timeout_hours": 4}),
        "release",
        "approval_timeout_hours applies to a manual approval only",
    ),
    "release timeout past a year": (
        _set("release", {"next_environment": "prod", "approval_timeout_hours": 9000}),
        "release.approval_timeout_hours",
        "less than or equal to 8760",
    ),
    "cross-account release without its own account": (
        _set("release", {"next_environment": "prod", "next_account": "210987654321"}),
        "(top level)",
        "needs this environment's own account (aws.account)",
    ),
    "policy response misspelt": (
        _set("rollout.policy", {"harm": "pause"}),
        "rollout.policy.harm",
        "should be one of ['rollback', 'hold', 'warn'] or one per metric, got 'pause'",
    ),
    "policy for an unknown metric": (
        _set("rollout.policy", {"harm": {"latncy": "hold"}}),
        "rollout.policy.harm",
        "unknown metric 'latncy'",
    ),
    "policy unknown situation": (
        _set("rollout.policy", {"too_much_data": "hold"}),
        "rollout.policy.too_much_data",
        "unknown key",
    ),
    "hold timeout of zero": (
        _set("rollout.policy", {"hold_timeout_minutes": 0}),
        "rollout.policy.hold_timeout_minutes",
        "greater than or equal to 1",
    ),
    "gate before a step the plan lacks": (
        _set("rollout.approval_before", [30, "promote"]),
        "(top level)",
        "approval_before: 30 is not a step after the first and before the promotion",
    ),
    "gate before the first step": (
        _set("rollout.approval_before", [5]),
        "(top level)",
        "approval_before: 5 is not a step after the first",
    ),
    "release unknown key": (
        _set("release", {"next_environment": "prod", "next_acount": "210987654321"}),
        "release.next_acount",
        "unknown key",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_rejected_naming_file_field_and_problem(tmp_path: Path, case: str) -> None:
    mutate, field, problem = BAD_FILES[case]
    with pytest.raises(ConfigError) as raised:
        load_mutated(tmp_path, mutate)
    message = str(raised.value)
    assert str(tmp_path / "dev.yaml") in message
    assert f"  {field}: " in message
    assert problem in message


def test_env_name_with_no_file_names_the_missing_file_and_the_known_ones(tmp_path: Path) -> None:
    write_env(tmp_path, dev_document(), env="dev")
    with pytest.raises(
        ConfigError, match=r"staging\.yaml: no configuration for environment 'staging' \(known: dev\)"
    ):
        load_config("staging", tmp_path)


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dev.yaml").write_text("endpoints: [\n")
    with pytest.raises(ConfigError, match=r"dev\.yaml: not valid YAML"):
        load_config("dev", tmp_path)


def test_file_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "dev.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_config("dev", tmp_path)


def test_name_inside_the_file_must_match_the_environment(tmp_path: Path) -> None:
    document = dev_document() | {"name": "prod"}
    write_env(tmp_path, document)
    with pytest.raises(ConfigError, match="does not match the file's environment 'dev'"):
        load_config("dev", tmp_path)


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    def two_problems(document: dict[str, Any]) -> None:
        document["rollout"]["strategy"] = "yolo"
        document["alarms"]["period_seconds"] = 7

    with pytest.raises(ConfigError) as raised:
        load_mutated(tmp_path, two_problems)
    assert "2 problem(s)" in str(raised.value)


def test_drift_gate_may_be_made_optional_for_endpoints_without_capture(tmp_path: Path) -> None:
    def no_capture_no_drift_gate(document: dict[str, Any]) -> None:
        document["endpoints"][0]["data_capture"]["enabled"] = False
        document["rollout"]["gates"]["require_drift_data"] = False

    config = load_mutated(tmp_path, no_capture_no_drift_gate)
    assert not config.rollout.gates.require_drift_data


def test_shadow_endpoint_keeps_distinct_variant_names(tmp_path: Path) -> None:
    mutate = _set("endpoints.0.variants", {"champion": "blue", "challenger": "blue"})
    with pytest.raises(ConfigError, match="variant names must be distinct"):
        load_mutated(tmp_path, mutate)


def chain_files(directory: Path, **release: Any) -> None:
    """dev releasing into prod (the shipped files), with `release` over dev's own release section."""
    dev = dev_document()
    dev["release"] = {**dev["release"], **release}
    write_env(directory, dev)
    write_env(directory, yaml.safe_load((ENVIRONMENTS_DIR / "prod.yaml").read_text()), "prod")


def test_the_shipped_chain_offers_dev_packages_to_prod_after_a_person_approves() -> None:
    dev, prod = load_config("dev"), load_config("prod")
    to_prod = release_chain(dev)
    assert to_prod.next == ReleaseTarget(environment="prod", region="eu-west-1", account=None)
    assert to_prod.previous is None
    from_dev = release_chain(prod).previous
    assert from_dev == ReleaseSource(
        environment="dev", region="us-east-1", approval="manual", approval_timeout_hours=72, account=None
    )
    assert release_chain(prod).next is None


def test_a_cross_account_chain_names_both_accounts(tmp_path: Path) -> None:
    chain_files(tmp_path, next_account="210987654321")
    dev = dev_document() | {"aws": {"region": "us-east-1", "account": "123456789012"}}
    dev["release"] = {**dev["release"], "next_account": "210987654321"}
    write_env(tmp_path, dev)
    assert release_chain(load_config("dev", tmp_path), tmp_path).next == ReleaseTarget(
        environment="prod", region="eu-west-1", account="210987654321"
    )
    source = release_chain(load_config("prod", tmp_path), tmp_path).previous
    assert source is not None and source.account == "123456789012"


def test_a_release_to_an_environment_without_a_file_names_the_field(tmp_path: Path) -> None:
    dev = dev_document()
    dev["release"] = {"next_environment": "prd"}
    write_env(tmp_path, dev)
    with pytest.raises(
        ConfigError, match=r"dev.yaml: release.next_environment: .*no configuration for .*'prd'"
    ):
        release_chain(load_config("dev", tmp_path), tmp_path)


def test_a_next_environment_in_another_account_needs_next_account(tmp_path: Path) -> None:
    chain_files(tmp_path)
    prod = yaml.safe_load((ENVIRONMENTS_DIR / "prod.yaml").read_text())
    prod["aws"] = {"region": "eu-west-1", "account": "210987654321"}
    write_env(tmp_path, prod, "prod")
    dev = dev_document() | {"aws": {"region": "us-east-1", "account": "123456789012"}}
    write_env(tmp_path, dev)
    with pytest.raises(ConfigError, match=r"runs in account 210987654321.*set release.next_account"):
        release_chain(load_config("dev", tmp_path), tmp_path)


def test_two_environments_releasing_into_one_are_refused(tmp_path: Path) -> None:
    chain_files(tmp_path)
    other = dev_document() | {"name": "qa"}
    write_env(tmp_path, other, "qa")
    with pytest.raises(ConfigError, match=r"\['dev', 'qa'\] all release into 'prod'"):
        release_chain(load_config("prod", tmp_path), tmp_path)


def test_the_default_policy_is_todays_behaviour_and_an_endpoint_may_hold_and_gate(tmp_path: Path) -> None:
    def endpoint_policy(document: dict[str, Any]) -> None:
        document["endpoints"][0]["rollout"] = {
            "policy": {"harm": {"latency": "hold", "conversion": "warn"}, "too_little_data": "hold"},
            "approval_before": [50, "promote"],
        }

    config = load_mutated(tmp_path, endpoint_policy)
    assert config.rollout.policy.is_default and config.rollout.approval_before == []
    rollout = config.rollout_for(config.endpoints[0])
    assert rollout.approval_before == [50, "promote"]
    assert rollout.policy.too_little_data == "hold"
    assert rollout.policy.sample_ratio_mismatch == "rollback"
