"""The drift monitor's pure parts: settings, finding the champion's artifact, the measurement, the datum,
and the shared capture reading (gate folders, capture lines, the newest capture files)."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas.gates import CapturedFeatures, GateSettings, TrainingBaseline
from lambdas.gates.aws.inputs import (
    GateInputMissing,
    captured_features,
    gates_folder_of_artifact,
    gates_folder_of_package,
    newest_objects,
    records_of_capture_line,
)
from lambdas.retraining.drift import (
    DRIFT_NAMESPACE,
    PSI_MAX_METRIC,
    ChampionNotFound,
    DriftMonitorSettings,
    ObservationStatus,
    champion_artifact,
    champion_model_name,
    load_drift_settings,
    not_measured,
    observe_drift,
    psi_max_datum,
)
from lambdas.shared.settings import SettingsError

ENDPOINT = "mlrollout-dev-churn"
FEATURES = ("monthly_charges", "support_calls_90d", "tenure_months")
SETTINGS = GateSettings(psi_max=0.2)


def columns(rows: int, seed: int, shift: dict[str, float] | None = None) -> dict[str, list[float]]:
    """Normal features (unit variance); `shift` moves a feature's mean by that many standard deviations."""
    rng = random.Random(seed)
    shift = shift or {}
    return {name: [rng.gauss(shift.get(name, 0.0), 1.0) for _ in range(rows)] for name in FEATURES}


BASELINE = TrainingBaseline.from_columns(columns(5000, seed=1))


def captured(rows: int, seed: int = 2, shift: dict[str, float] | None = None) -> CapturedFeatures:
    return CapturedFeatures(features={k: tuple(v) for k, v in columns(rows, seed, shift).items()})


def observe(data: CapturedFeatures, settings: GateSettings = SETTINGS) -> Any:
    return observe_drift(
        endpoint_name=ENDPOINT, champion="model m1", baseline=BASELINE, captured=data, settings=settings
    )


# --- settings -----------------------------------------------------------------------------------------


def test_settings_come_from_the_environment_with_the_alarm_threshold_as_psi_max() -> None:
    settings = load_drift_settings(
        {
            "DRIFT_ENDPOINTS": json.dumps([{"endpoint_name": ENDPOINT, "champion": "champion"}]),
            "DRIFT_GATES": json.dumps({"psi_max": 0.25, "drift_min_samples": 100}),
            "DRIFT_CAPTURE_FILES_MAX": "5",
        }
    )
    assert settings.endpoints[0].endpoint_name == ENDPOINT
    assert (settings.gates.psi_max, settings.gates.drift_min_samples) == (0.25, 100)
    assert settings.capture_files_max == 5
    defaults = load_drift_settings({"DRIFT_ENDPOINTS": '[{"endpoint_name": "e", "champion": "c"}]'})
    assert defaults.gates == GateSettings()
    assert defaults.capture_files_max == 20


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, r"ENDPOINT_SETTINGS_PATH: Field required"),
        ({"DRIFT_ENDPOINTS": "[{"}, r"DRIFT_ENDPOINTS is not valid JSON"),
        ({"DRIFT_ENDPOINTS": "[]"}, r"DRIFT_ENDPOINTS: .*at least 1"),
        (
            {"DRIFT_ENDPOINTS": '[{"endpoint_name": "e", "champion": "c"}]', "DRIFT_GATES": '{"psi_max": 0}'},
            r"DRIFT_GATES\.psi_max",
        ),
        ({"DRIFT_ENDPOINTS": '[{"endpoint_name": "e"}]'}, r"DRIFT_ENDPOINTS\.0\.champion"),
    ],
)
def test_a_bad_environment_names_the_variable_and_the_problem(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_drift_settings(environ)


def test_settings_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        DriftMonitorSettings.model_validate(
            {"endpoints": [{"endpoint_name": "e", "champion": "c", "variant": "x"}]}
        )


# --- the champion's artifact --------------------------------------------------------------------------


def test_the_champion_variant_names_its_model_and_a_missing_one_names_the_variants() -> None:
    config = {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [
            {"VariantName": "champion", "ModelName": "m-champion"},
            {"VariantName": "challenger", "ModelName": "m-challenger"},
        ],
    }
    assert champion_model_name(config, "champion") == "m-champion"
    with pytest.raises(
        ChampionNotFound, match=r"cfg has no production variant 'blue'.*'champion', 'challenger'"
    ):
        champion_model_name(config, "blue")


def test_a_model_from_a_package_uses_the_package_even_when_it_also_has_a_url() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3"
    from_package = champion_artifact(
        {
            "ModelName": "m",
            "PrimaryContainer": {},
            "Containers": [{"ModelPackageName": arn, "ModelDataUrl": "s3://x/y"}],
        }
    )
    assert (from_package.model_package_arn, from_package.model_data_url) == (arn, None)
    assert from_package.described == f"model m (package {arn})"
    bootstrap = champion_artifact(
        {"ModelName": "b", "PrimaryContainer": {"ModelDataUrl": "s3://b/m/model.tar.gz"}}
    )
    assert (bootstrap.model_package_arn, bootstrap.model_data_url) == (None, "s3://b/m/model.tar.gz")
    with pytest.raises(ChampionNotFound, match="model n names neither a model package nor a model data URL"):
        champion_artifact({"ModelName": "n", "PrimaryContainer": {"Image": "i"}})


# --- the measurement ----------------------------------------------------------------------------------


def test_shifted_inputs_measure_above_the_threshold_and_name_the_feature() -> None:
    observation = observe(captured(600, shift={"tenure_months": 1.0}))
    assert observation.status is ObservationStatus.MEASURED
    assert observation.psi_max is not None
    assert observation.psi_max > SETTINGS.psi_max
    assert observation.psi_max == max(observation.feature_psi.values())
    assert observation.over_threshold
    assert observation.drifted_features == ("tenure_months",)
    assert "largest PSI" in observation.reason
    assert "(tenure_months)" in observation.reason
    assert observation.captured_rows == 600


def test_inputs_from_the_training_distribution_measure_below_the_threshold() -> None:
    observation = observe(captured(600))
    assert observation.status is ObservationStatus.MEASURED
    assert observation.psi_max is not None
    assert 0 <= observation.psi_max < SETTINGS.psi_max
    assert not observation.over_threshold
    assert observation.drifted_features == ()
    assert set(observation.feature_psi) == set(FEATURES)


def test_too_few_captured_rows_are_not_measured_and_say_how_many_were_needed() -> None:
    observation = observe(captured(199, shift={"tenure_months": 3.0}))
    assert observation.status is ObservationStatus.INSUFFICIENT_DATA
    assert (observation.psi_max, observation.feature_psi, observation.drifted_features) == (None, {}, ())
    assert observation.captured_rows == 199
    assert observation.reason == (
        "not measured, nothing published: 199 captured requests, at least 200 needed to judge drift"
    )
    assert not observation.over_threshold


def test_a_higher_minimum_sample_setting_is_obeyed() -> None:
    observation = observe(captured(600), GateSettings(psi_max=0.2, drift_min_samples=601))
    assert observation.status is ObservationStatus.INSUFFICIENT_DATA


def test_only_a_measured_observation_becomes_a_datum_never_a_zero() -> None:
    measured = observe(captured(600, shift={"monthly_charges": 1.0}))
    assert psi_max_datum(measured) == {
        "MetricName": PSI_MAX_METRIC,
        "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}],
        "Value": measured.psi_max,
        "Unit": "None",
    }
    assert DRIFT_NAMESPACE == "mlrollout/drift"
    assert psi_max_datum(observe(captured(10))) is None
    no_baseline = not_measured(
        endpoint_name=ENDPOINT,
        champion="model m1",
        status=ObservationStatus.NO_BASELINE,
        reason="the champion has no training baseline",
        settings=SETTINGS,
    )
    assert no_baseline.reason == "not measured, nothing published: the champion has no training baseline"
    assert psi_max_datum(no_baseline) is None


def test_not_measured_refuses_to_make_a_measured_observation() -> None:
    with pytest.raises(ValueError, match="observe_drift"):
        not_measured(
            endpoint_name=ENDPOINT,
            champion="m",
            status=ObservationStatus.MEASURED,
            reason="x",
            settings=SETTINGS,
        )


# --- shared capture reading ---------------------------------------------------------------------------


def test_gate_files_are_beside_the_artifact_and_a_non_s3_artifact_is_named() -> None:
    assert gates_folder_of_artifact("s3://b/retraining/churn/r1/model/job/output/model.tar.gz", "m") == (
        "b",
        "retraining/churn/r1/model/job/output/gates/",
    )
    assert gates_folder_of_artifact("s3://b/model.tar.gz", "m") == ("b", "gates/")
    with pytest.raises(
        GateInputMissing, match=r"model m names no S3 model artifact \('https://x/m.tar.gz'\)"
    ):
        gates_folder_of_artifact("https://x/m.tar.gz", "model m")
    package = {
        "ModelPackageArn": "arn:p",
        "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://b/models/g/model.tar.gz"}]},
    }
    assert gates_folder_of_package(package) == ("b", "models/g/gates/")
    with pytest.raises(GateInputMissing, match="model package arn:p names no S3 model artifact"):
        gates_folder_of_package({"ModelPackageArn": "arn:p"})


def capture_line(body: Any, encoding: str = "BASE64") -> str:
    data = json.dumps(body)
    if encoding == "BASE64":
        data = base64.b64encode(data.encode()).decode()
    return json.dumps({"captureData": {"endpointInput": {"data": data, "encoding": encoding}}})


def test_capture_lines_give_their_object_instances_and_skip_everything_else() -> None:
    records = [{"tenure_months": 1.0}, {"tenure_months": 2.0}]
    assert list(records_of_capture_line(capture_line({"instances": records}))) == records
    assert list(records_of_capture_line(capture_line({"instances": records}, encoding="JSON"))) == records
    assert list(records_of_capture_line(capture_line({"instances": [[1.0, 2.0]]}))) == []
    assert list(records_of_capture_line("not json")) == []
    assert list(records_of_capture_line(json.dumps({"captureData": {}}))) == []


def test_captured_features_keep_only_rows_with_a_finite_number_for_every_baseline_feature() -> None:
    rows: list[dict[str, Any]] = [
        {"monthly_charges": 1, "support_calls_90d": 2.0, "tenure_months": 3.0, "plan": "pro"},
        {"monthly_charges": True, "support_calls_90d": 2.0, "tenure_months": 3.0},
        {"monthly_charges": float("nan"), "support_calls_90d": 2.0, "tenure_months": 3.0},
        {"support_calls_90d": 2.0, "tenure_months": 3.0},
        {"monthly_charges": "4", "support_calls_90d": 2.0, "tenure_months": 3.0},
    ]
    features = captured_features(rows, BASELINE)
    assert features.rows == 1
    assert features.features == {
        "monthly_charges": (1.0,),
        "support_calls_90d": (2.0,),
        "tenure_months": (3.0,),
    }


class FolderedBucket:
    """ListObjectsV2 with Prefix, Delimiter and 1000-key pages, as S3 answers it; counts the calls."""

    PAGE = 1000

    def __init__(self, keys: dict[str, datetime]) -> None:
        self.keys = keys
        self.calls = 0

    def get_object(self, *, Bucket: str, Key: str) -> Any:
        raise AssertionError("not read")

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        prefix, delimiter = request.get("Prefix", ""), request.get("Delimiter")
        entries: list[tuple[str, bool]] = []
        for key in sorted(self.keys):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter, 1)[0] + delimiter
                if not entries or entries[-1] != (folder, True):
                    entries.append((folder, True))
            else:
                entries.append((key, False))
        start = int(request.get("ContinuationToken", 0))
        page = entries[start : start + self.PAGE]
        answer: dict[str, Any] = {
            "Contents": [{"Key": k, "LastModified": self.keys[k]} for k, folder in page if not folder],
            "CommonPrefixes": [{"Prefix": k} for k, folder in page if folder],
            "IsTruncated": start + self.PAGE < len(entries),
        }
        if answer["IsTruncated"]:
            answer["NextContinuationToken"] = str(start + self.PAGE)
        return answer


def test_the_newest_capture_files_are_found_without_listing_every_old_one() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prefix = "data-capture/churn/mlrollout-dev-churn/champion/"
    keys: dict[str, datetime] = {}
    # 30 days of hourly folders, 5 files an hour: 3600 files, far more than one listing page.
    for hour in range(30 * 24):
        at = start + timedelta(hours=hour)
        for index in range(5):
            stamp = at + timedelta(minutes=10 * index)
            keys[f"{prefix}{at:%Y/%m/%d/%H}/{stamp:%M-%S}-{index}.jsonl"] = stamp
    bucket = FolderedBucket(keys)
    newest = newest_objects(bucket, "b", prefix, 12)
    expected = sorted(keys, key=lambda key: keys[key], reverse=True)[:12]
    assert [item["Key"] for item in newest] == expected
    assert bucket.calls < 12  # year, month, day, and three hour folders; not 4 pages of everything


def test_newest_objects_of_a_flat_prefix_and_of_a_short_history() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    flat = {f"p/file-{i:04d}.jsonl": start + timedelta(seconds=(i * 7919) % 2500) for i in range(2500)}
    bucket = FolderedBucket(flat)
    newest = newest_objects(bucket, "b", "p/", 3)
    assert [item["Key"] for item in newest] == sorted(flat, key=lambda k: flat[k], reverse=True)[:3]
    assert bucket.calls == 3  # every page of a flat folder
    few = {"p/2026/01/01/00/a.jsonl": start, "p/2026/01/01/01/b.jsonl": start + timedelta(hours=1)}
    assert [item["Key"] for item in newest_objects(FolderedBucket(few), "b", "p/", 20)] == [
        "p/2026/01/01/01/b.jsonl",
        "p/2026/01/01/00/a.jsonl",
    ]
    assert newest_objects(FolderedBucket({}), "b", "p/", 20) == []
