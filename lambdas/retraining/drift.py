"""Drift of the champion's live inputs: the measurement behind the drift alarm that starts a retraining.

The rollout's drift gate checks a candidate once, before it takes traffic. Afterwards the inputs the
champion serves can move away from the data it was trained on; the drift monitor
(``lambdas/retraining/aws/drift_monitor.py``) measures that on a schedule with the same statistics
(``lambdas.gates.drift_gate``: per-feature PSI on the baseline's quantile bins, and KS) and
publishes the largest per-feature PSI as ``mlrollout/drift`` ``InputDriftPsiMax`` (dimension
``EndpointName``). A CloudWatch alarm on it (``infra/drift_monitor.py``) is the retraining trigger.

"No data" must never look like "no drift": when the champion has no training baseline, or too few
requests were captured to judge, nothing is published (not a 0) and the reason is logged. The alarm
treats the missing datapoint as not breaching, so it neither fires nor claims the inputs were checked.

Pure domain code: pydantic and the standard library only (no boto3, no clock).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from annotated_types import MinLen
from pydantic import BaseModel, ConfigDict, Field, WrapValidator

from lambdas.flags import Name
from lambdas.gates import CapturedFeatures, GateSettings, GateStatus, TrainingBaseline, drift_gate
from lambdas.shared.endpoint_store import (
    ENDPOINT_SETTINGS_PATH_VARIABLE,
    SettingsCatalog,
    endpoints_variable,
    keep_catalog,
)
from lambdas.shared.settings import read_environment, validate_settings

__all__ = [
    "DRIFT_NAMESPACE",
    "ENDPOINT_DIMENSION",
    "PSI_MAX_METRIC",
    "BaselineUnreadable",
    "ChampionArtifact",
    "ChampionNotFound",
    "DriftMonitorFailed",
    "DriftMonitorSettings",
    "DriftObservation",
    "MonitoredEndpoint",
    "ObservationStatus",
    "champion_artifact",
    "champion_model_name",
    "load_drift_settings",
    "not_measured",
    "observe_drift",
    "psi_max_datum",
]

DRIFT_NAMESPACE = "mlrollout/drift"
PSI_MAX_METRIC = "InputDriftPsiMax"
ENDPOINT_DIMENSION = "EndpointName"
CAPTURE_FILES_MAX = 20

ENV_VARIABLES = {
    "endpoints": "DRIFT_ENDPOINTS",
    "gates": "DRIFT_GATES",
    "capture_files_max": "DRIFT_CAPTURE_FILES_MAX",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- settings ----------------------------------------------------------------------------------------


class MonitoredEndpoint(_Frozen):
    endpoint_name: str = Field(min_length=1, max_length=63, description="the physical SageMaker name")
    champion: Name = Field(description="the production variant whose inputs are watched")


class DriftMonitorSettings(_Frozen):
    """The drift monitor's environment.

    ``gates.psi_max`` is the alarm's threshold, so the features the log names as drifted are the ones
    that push the metric over it; bins, smoothing and the minimum sample are the rollout gate's.
    """

    # Deployed: the catalog of every endpoint's stored settings (lambdas/shared/endpoint_store.py).
    endpoints: Annotated[tuple[MonitoredEndpoint, ...], MinLen(1), WrapValidator(keep_catalog)]
    gates: GateSettings = GateSettings()
    capture_files_max: int = Field(
        default=CAPTURE_FILES_MAX,
        ge=1,
        le=1000,
        description="Newest capture files read per endpoint and run.",
    )


def load_drift_settings(environ: Mapping[str, str]) -> DriftMonitorSettings:
    """Validate the environment (every variable is JSON), naming the variable of each problem."""
    variables = {field: name for field, name in ENV_VARIABLES.items() if field != "endpoints"}
    raw = read_environment(environ, variables, json_fields=tuple(variables))
    if ENDPOINT_SETTINGS_PATH_VARIABLE in environ:
        raw["endpoints"] = SettingsCatalog(MonitoredEndpoint, environ[ENDPOINT_SETTINGS_PATH_VARIABLE])
    elif ENV_VARIABLES["endpoints"] in environ:
        raw |= read_environment(
            environ, {"endpoints": ENV_VARIABLES["endpoints"]}, json_fields=("endpoints",)
        )
    source = endpoints_variable(environ, inline=ENV_VARIABLES["endpoints"])
    return validate_settings(DriftMonitorSettings, raw, ENV_VARIABLES | {"endpoints": source})


# -- which model is the champion ---------------------------------------------------------------------


class BaselineUnreadable(ValueError):
    """The champion's baseline.json is there but is not a training baseline: a fault to fix, not "no data"."""


class DriftMonitorFailed(Exception):
    """Some endpoints could not be observed; the others were, and their metrics are published."""


class ChampionNotFound(ValueError):
    """The endpoint's running config or model does not say which artifact the champion serves."""


class ChampionArtifact(_Frozen):
    """Where the champion's model came from: a registered package, or a model data URL."""

    model_name: str
    model_package_arn: str | None = Field(
        default=None,
        description="Set when the model was created from a package: its artifact is the package's.",
    )
    model_data_url: str | None = None

    @property
    def described(self) -> str:
        return f"model {self.model_name}" + (
            f" (package {self.model_package_arn})" if self.model_package_arn else ""
        )


def champion_model_name(endpoint_config: Mapping[str, Any], champion: str) -> str:
    """The model of the champion production variant in a DescribeEndpointConfig answer."""
    variants = endpoint_config.get("ProductionVariants") or []
    for variant in variants:
        if variant.get("VariantName") == champion:
            return str(variant["ModelName"])
    known = [variant.get("VariantName") for variant in variants]
    raise ChampionNotFound(
        f"endpoint config {endpoint_config.get('EndpointConfigName')} has no production variant "
        f"{champion!r} (it has {known})"
    )


def champion_artifact(model: Mapping[str, Any]) -> ChampionArtifact:
    """Where a DescribeModel answer's artifact is: its package when it was created from one, else its URL.

    A model the rollout created from a package names only the package (the rollout's models do); the
    bootstrap model from the config names its model data URL.
    """
    name = str(model.get("ModelName") or "")
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    for container in containers:
        if container.get("ModelPackageName"):
            return ChampionArtifact(model_name=name, model_package_arn=str(container["ModelPackageName"]))
    for container in containers:
        if container.get("ModelDataUrl"):
            return ChampionArtifact(model_name=name, model_data_url=str(container["ModelDataUrl"]))
    raise ChampionNotFound(
        f"model {name} names neither a model package nor a model data URL, so its training baseline "
        "cannot be found"
    )


# -- the measurement ---------------------------------------------------------------------------------


class ObservationStatus(StrEnum):
    MEASURED = "measured"
    """Enough data on both sides: the largest PSI is published."""
    NO_BASELINE = "no_baseline"
    """The champion has no training baseline beside its artifact: nothing to compare with."""
    INSUFFICIENT_DATA = "insufficient_data"
    """Too few captured requests (or baseline values) to judge: nothing is published."""


class DriftObservation(_Frozen):
    """One endpoint's drift at one run, as logged; only a MEASURED one becomes a datapoint."""

    endpoint_name: str
    status: ObservationStatus
    reason: str = Field(description="Why this status, for people reading the log.")
    champion: str = Field(description="The champion's model (and package) the baseline belongs to.")
    captured_rows: int = Field(ge=0)
    psi_threshold: float
    psi_max: float | None = Field(description="The largest per-feature PSI; None unless measured.")
    feature_psi: dict[str, float] = Field(description="Every feature's PSI; empty unless measured.")
    drifted_features: tuple[str, ...] = Field(
        description="Features whose PSI exceeds the threshold or whose KS test rejects (as the gate judges)."
    )

    @property
    def over_threshold(self) -> bool:
        return self.psi_max is not None and self.psi_max > self.psi_threshold


def observe_drift(
    *,
    endpoint_name: str,
    champion: str,
    baseline: TrainingBaseline,
    captured: CapturedFeatures,
    settings: GateSettings,
) -> DriftObservation:
    """The champion's captured inputs against its training baseline, with the rollout gate's statistics."""
    result = drift_gate(baseline, captured, settings)
    if result.status is GateStatus.INSUFFICIENT_DATA:
        return DriftObservation(
            endpoint_name=endpoint_name,
            status=ObservationStatus.INSUFFICIENT_DATA,
            # The gate's reason ends with whether the shortage blocks a rollout, which means nothing here.
            reason=f"not measured, nothing published: {result.reason.rsplit(' (', 1)[0]}",
            champion=champion,
            captured_rows=captured.rows,
            psi_threshold=settings.psi_max,
            psi_max=None,
            feature_psi={},
            drifted_features=(),
        )
    feature_psi = {drift.feature: drift.psi for drift in result.features}
    psi_max = max(feature_psi.values())
    if not math.isfinite(psi_max):  # smoothing > 0 keeps PSI finite; CloudWatch refuses infinity
        raise ValueError(f"PSI of {endpoint_name} is not finite ({psi_max}): check psi_smoothing")
    worst = max(feature_psi, key=lambda feature: (feature_psi[feature], feature))
    return DriftObservation(
        endpoint_name=endpoint_name,
        status=ObservationStatus.MEASURED,
        reason=(
            f"largest PSI {psi_max:.3g} ({worst}) over {captured.rows} captured requests, threshold "
            f"{settings.psi_max:g}; {result.reason}"
        ),
        champion=champion,
        captured_rows=captured.rows,
        psi_threshold=settings.psi_max,
        psi_max=psi_max,
        feature_psi=feature_psi,
        drifted_features=result.drifted_features,
    )


def not_measured(
    *,
    endpoint_name: str,
    champion: str,
    status: ObservationStatus,
    reason: str,
    settings: GateSettings,
) -> DriftObservation:
    """No measurement (no baseline, no capture): nothing will be published, and ``reason`` says why."""
    if status is ObservationStatus.MEASURED:
        raise ValueError("a measured observation comes from observe_drift, with its PSI")
    return DriftObservation(
        endpoint_name=endpoint_name,
        status=status,
        reason=f"not measured, nothing published: {reason}",
        champion=champion,
        captured_rows=0,
        psi_threshold=settings.psi_max,
        psi_max=None,
        feature_psi={},
        drifted_features=(),
    )


def psi_max_datum(observation: DriftObservation) -> dict[str, Any] | None:
    """The PutMetricData datum of a measured observation; None for every other status (never a 0).

    No timestamp: CloudWatch stamps it on receipt, which is when the captured data was read.
    """
    if observation.status is not ObservationStatus.MEASURED or observation.psi_max is None:
        return None
    return {
        "MetricName": PSI_MAX_METRIC,
        "Dimensions": [{"Name": ENDPOINT_DIMENSION, "Value": observation.endpoint_name}],
        "Value": observation.psi_max,
        "Unit": "None",
    }
