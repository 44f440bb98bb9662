"""The retraining Lambdas' environment, read once into pydantic models.

Every function of the retraining workflow gets the same variables::

    LOCK_TABLE          the rollout's lock table (retraining takes "retraining#<family>" in it)
    DATA_BUCKET         the training-data bucket: one prefix "<family>/" per model family
    ARTIFACTS_BUCKET    the registry's artifact bucket: jobs write under "retraining/<family>/<run>/"
    SAGEMAKER_ROLE_ARN  the execution role the jobs run as
    AUTO_APPROVE        "true": a model that passes the gate is registered Approved (the rollout starts)
    JOBS                {"name_prefix": "mlrollout-dev", "image_uri": ..., "recipe": "logistic", "seed": 1,
                         "processing_instance_type": ..., "training_instance_type": ...,
                         "volume_size_gb": 30, "max_runtime_minutes": 60}
    FAMILY_SETTINGS_PATH  "/mlrollout-dev/families/": one SSM parameter per family
                          (lambdas/shared/endpoint_store.py), or inline as FAMILIES:
    FAMILIES            {"churn-classifier": {"model_package_group": "mlrollout-dev-churn-classifier",
                         "inference_image": "<the endpoint's inference image>", "gates": {...}}}

``gates`` is the rollout gates of the family's first endpoint (only its metric minimums apply to a
retrained model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, get_args

from annotated_types import MinLen
from pydantic import BaseModel, ConfigDict, Field, WrapValidator

from lambdas.gates import GateSettings
from lambdas.shared.endpoint_store import FAMILY_SETTINGS_PATH_VARIABLE, SettingsCatalog, keep_catalog
from lambdas.shared.settings import SettingsError, read_environment, validate_settings

__all__ = [
    "ECR_IMAGE_PATTERN",
    "RECIPES",
    "FamilySettings",
    "JobSettings",
    "Recipe",
    "RetrainingSettings",
    "SettingsError",
    "load_retraining_settings",
]

# What pipelines.train accepts (tests/unit/test_retraining_settings.py keeps the two lists equal); the
# Lambdas cannot import the training code, which needs scikit-learn.
Recipe = Literal["logistic", "boosted", "degraded", "heavy"]
RECIPES: tuple[str, ...] = get_args(Recipe)
ECR_IMAGE_PATTERN = (
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(:[\w.-]+|@sha256:[a-f0-9]{64})$"
)
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
FAMILY_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
# SageMaker caps a training job's MaxRuntimeInSeconds at 28 days; a processing job's at 5 days.
MAX_RUNTIME_MINUTES = 5 * 24 * 60

ENV_VARIABLES = {
    "lock_table": "LOCK_TABLE",
    "data_bucket": "DATA_BUCKET",
    "artifacts_bucket": "ARTIFACTS_BUCKET",
    "sagemaker_role_arn": "SAGEMAKER_ROLE_ARN",
    "auto_approve": "AUTO_APPROVE",
    "jobs": "JOBS",
    "families": "FAMILIES",
}
_JSON_VARIABLES = ("jobs", "families")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobSettings(_Strict):
    """How the three jobs run: one image, the training recipe and seed, instances and a time limit."""

    name_prefix: str = Field(
        pattern=FAMILY_PATTERN, max_length=26, description="the environment's prefix, e.g. mlrollout-dev"
    )
    image_uri: str = Field(pattern=ECR_IMAGE_PATTERN, description="the training image (containers/training)")
    recipe: Recipe = "logistic"
    seed: int = Field(default=1, ge=0, le=2**31 - 1)
    processing_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    training_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    volume_size_gb: int = Field(default=30, ge=1, le=512)
    max_runtime_minutes: int = Field(default=60, ge=1, le=MAX_RUNTIME_MINUTES)

    @property
    def max_runtime_seconds(self) -> int:
        return self.max_runtime_minutes * 60


class FamilySettings(_Strict):
    model_package_group: str = Field(min_length=1, max_length=63)
    inference_image: str = Field(pattern=ECR_IMAGE_PATTERN, description="the endpoint's serving image")
    gates: GateSettings = GateSettings()


class RetrainingSettings(_Strict):
    lock_table: str = Field(min_length=3, max_length=255)
    data_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    artifacts_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    sagemaker_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    auto_approve: bool
    jobs: JobSettings
    # Deployed: each family's stored settings, read when asked (lambdas/shared/endpoint_store.py).
    families: Annotated[Mapping[str, FamilySettings], MinLen(1), WrapValidator(keep_catalog)]

    def family(self, name: str) -> FamilySettings:
        if name not in self.families:
            raise UnknownFamily(
                f"unknown model family {name!r}; this environment retrains {sorted(self.families)}"
            )
        return self.families[name]


class UnknownFamily(ValueError):
    """No model family of this environment has that name."""


def load_retraining_settings(environ: Mapping[str, str]) -> RetrainingSettings:
    """Validate the environment, naming the variable of each problem."""
    variables = dict(ENV_VARIABLES)
    if FAMILY_SETTINGS_PATH_VARIABLE in environ:
        variables["families"] = FAMILY_SETTINGS_PATH_VARIABLE
        raw = read_environment(environ, _without_families(), json_fields=("jobs",))
        raw["families"] = SettingsCatalog(FamilySettings, environ[FAMILY_SETTINGS_PATH_VARIABLE])
    else:
        raw = read_environment(environ, ENV_VARIABLES, json_fields=_JSON_VARIABLES)
    if "auto_approve" in raw and raw["auto_approve"] not in ("true", "false"):
        raise SettingsError(f"AUTO_APPROVE must be 'true' or 'false', got {raw['auto_approve']!r}")
    return validate_settings(RetrainingSettings, raw, variables)


def _without_families() -> dict[str, str]:
    return {field: name for field, name in ENV_VARIABLES.items() if field != "families"}
