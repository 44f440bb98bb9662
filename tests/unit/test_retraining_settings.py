"""The retraining functions' environment: read once, every problem named by its variable; the config's
retraining section: sensible defaults, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, Retraining, load_config
from lambdas.retraining.settings import RECIPES, SettingsError, UnknownFamily, load_retraining_settings
from pipelines.train import RECIPES as TRAINING_RECIPES
from tests.retraining_support import FAMILY, GROUP, TRAINING_IMAGE, environment, settings
from tests.unit.test_config import dev_document, write_env


def test_settings_read_the_environment_the_stack_sets() -> None:
    loaded = settings()
    assert loaded.auto_approve is True
    assert loaded.jobs.recipe == "logistic"
    assert loaded.jobs.max_runtime_seconds == 3600
    assert loaded.family(FAMILY).model_package_group == GROUP
    assert loaded.family(FAMILY).gates.minimum_metrics == {"accuracy": 0.7, "auc": 0.75}
    assert settings(AUTO_APPROVE="false").auto_approve is False


def test_the_lambdas_recipes_are_the_training_programs() -> None:
    assert RECIPES == TRAINING_RECIPES


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"JOBS": "{not json"}, "JOBS is not valid JSON"),
        ({"FAMILIES": "[]"}, "FAMILIES: Input should be a valid dictionary"),
        ({"AUTO_APPROVE": "yes"}, "AUTO_APPROVE must be 'true' or 'false', got 'yes'"),
        ({"SAGEMAKER_ROLE_ARN": "admin"}, "SAGEMAKER_ROLE_ARN: String should match pattern"),
        (
            {"JOBS": json.dumps({"name_prefix": "mlrollout-dev", "image_uri": "python:3.13"})},
            "JOBS.image_uri: String should match pattern",
        ),
        (
            {
                "JOBS": json.dumps(
                    {"name_prefix": "mlrollout-dev", "image_uri": TRAINING_IMAGE, "recipe": "magic"}
                )
            },
            "JOBS.recipe: Input should be 'logistic', 'boosted', 'degraded' or 'heavy'",
        ),
    ],
)
def test_a_bad_environment_names_the_variable(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_retraining_settings(environment(**overrides))
    assert message in str(raised.value)


def test_a_missing_variable_is_named() -> None:
    env = environment()
    del env["LOCK_TABLE"]
    with pytest.raises(SettingsError, match="LOCK_TABLE: Field required"):
        load_retraining_settings(env)


def test_an_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(UnknownFamily, match=r"unknown model family 'fraud'.*\['churn-classifier'\]"):
        settings().family("fraud")


def test_config_defaults_are_sensible_and_retraining_needs_an_image_only_when_enabled() -> None:
    defaults = Retraining()
    assert (defaults.enabled, defaults.recipe, defaults.seed) == (False, "logistic", 1)
    assert (defaults.processing_instance_type, defaults.training_instance_type) == (
        "ml.m5.large",
        "ml.m5.large",
    )
    assert (defaults.max_runtime_minutes, defaults.poll_seconds, defaults.volume_size_gb) == (60, 60, 30)
    assert defaults.data_bucket_name is None
    assert (defaults.drift.schedule, defaults.drift.psi_threshold, defaults.drift.evaluation_periods) == (
        "rate(1 hour)",
        0.2,
        1,
    )
    with pytest.raises(ValueError, match="training_image_uri is required when retraining is enabled"):
        Retraining(enabled=True)


@pytest.mark.parametrize("env", ["dev", "prod", "local"])
def test_every_environment_retrains_with_an_ecr_training_image(env: str) -> None:
    retraining = load_config(env).retraining
    assert retraining.enabled
    assert retraining.training_image_uri is not None
    assert ".dkr.ecr." in retraining.training_image_uri


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "training_image_uri",
            "docker.io/library/python:3.13",
            "retraining.training_image_uri: String should",
        ),
        ("recipe", "magic", "retraining.recipe: Input should be 'logistic'"),
        ("training_instance_type", "m5.large", "retraining.training_instance_type: String should match"),
        (
            "max_runtime_minutes",
            0,
            "retraining.max_runtime_minutes: Input should be greater than or equal to 1",
        ),
        ("poll_seconds", 1, "retraining.poll_seconds: Input should be greater than or equal to 10"),
        ("data_bucket_name", "Training_Data", "retraining.data_bucket_name: String should match pattern"),
        ("traning_image_uri", TRAINING_IMAGE, "retraining.traning_image_uri: unknown key"),
        (
            "drift",
            {"schedule": "cron(0 * * * ? *)"},
            "retraining.drift.schedule: Value error, schedule must be rate(",
        ),
        ("drift", {"schedule": "rate(1 hours)"}, "got 'rate(1 hours)'"),
        ("drift", {"psi_threshold": 0}, "retraining.drift.psi_threshold: Input should be greater than 0"),
    ],
)
def test_a_bad_retraining_section_names_the_field(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    document = dev_document()
    document["retraining"][field] = value
    write_env(tmp_path, document)
    with pytest.raises(ConfigError) as raised:
        load_config("dev", tmp_path)
    assert message in str(raised.value)


def test_enabling_retraining_without_an_image_is_refused_with_the_reason(tmp_path: Path) -> None:
    document = dev_document()
    del document["retraining"]["training_image_uri"]
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="training_image_uri is required when retraining is enabled"):
        load_config("dev", tmp_path)
