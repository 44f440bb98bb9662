"""The evaluation step's gate files: the gates read them back and pass a sound model, the default golden
cases hold for every recipe (a worse model included) and catch a broken one, and bad input is refused
before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

from containers.inference.server import create_app
from lambdas.gates import (
    BASELINE_MAX_VALUES,
    CapturedFeatures,
    GateSettings,
    GateStatus,
    GoldenCase,
    GoldenSet,
    Prediction,
    TrainingBaseline,
    drift_gate,
    evaluate_gates,
    golden_gate,
    metric_gate,
)
from pipelines import gate_files
from pipelines.churn_data import CHURN_SCHEMA, Dataset, synthetic_churn
from pipelines.gate_files import (
    DEFAULT_GOLDEN_SET,
    GATE_FILES,
    GateDocuments,
    GateFilesError,
    evaluate_model,
    training_split_features,
    write_gate_files,
)
from pipelines.train import Recipe, TrainConfig, package_model, train

SEED = 1
RECIPES: tuple[Recipe, ...] = ("logistic", "boosted", "degraded", "heavy")
CLEAR_CUT = 0.6  # the expected class's probability every recipe gives each default golden case


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One model directory per recipe, trained as the demo trains them (default size, one seed)."""
    dirs: dict[str, Path] = {}
    # One OpenMP thread: on a busy machine the boosted trees' spinning threads cost seconds.
    with threadpool_limits(limits=1):
        for recipe in RECIPES:
            dirs[recipe] = tmp_path_factory.mktemp(recipe)
            train(TrainConfig(recipe, seed=SEED), dirs[recipe])
    return dirs


@pytest.fixture(scope="module")
def logistic_gates(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("logistic-gates")
    write_gate_files(model_dirs["logistic"], out_dir)
    return out_dir


def _read(out_dir: Path, name: str) -> Any:
    return json.loads((out_dir / name).read_text())


def _captured(samples: int, seed: int) -> CapturedFeatures:
    """Requests from the training population (another seed): what a healthy endpoint captures."""
    data = synthetic_churn(samples, seed)
    return CapturedFeatures(
        features={name: tuple(data.features[:, i].tolist()) for i, name in enumerate(CHURN_SCHEMA.names)}
    )


def test_the_gates_read_the_files_back_and_pass_the_model_they_describe(
    model_dirs: dict[str, Path], logistic_gates: Path
) -> None:
    assert sorted(p.name for p in logistic_gates.iterdir()) == sorted(GATE_FILES)
    # Read exactly as the gates Lambda reads them.
    outputs = _read(logistic_gates, "golden_outputs.json")
    metrics = _read(logistic_gates, "metrics.json")
    report = evaluate_gates(
        settings=GateSettings(minimum_metrics={"accuracy": 0.75, "auc": 0.8}),
        golden=GoldenSet.model_validate(_read(logistic_gates, "golden.json")),
        challenger_outputs={case: Prediction.model_validate(output) for case, output in outputs.items()},
        candidate_metrics=metrics,
        champion_metrics=metrics,
        baseline=TrainingBaseline.model_validate(_read(logistic_gates, "baseline.json")),
        captured=_captured(400, seed=99),
    )
    assert report.passed, report.reason
    assert all(result.status is GateStatus.PASSED for result in report.results())
    registered = json.loads((model_dirs["logistic"] / "metadata.json").read_text())["metrics"]
    assert metrics == registered


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_reproduces_the_default_golden_labels_clearly(
    model_dirs: dict[str, Path], tmp_path: Path, recipe: str
) -> None:
    documents = evaluate_model(model_dirs[recipe])
    assert documents.model_version == f"{recipe}-seed{SEED}"
    check = documents.check_golden()
    assert check.status is GateStatus.PASSED, check.reason
    paths = documents.write(tmp_path)
    assert paths == {name: tmp_path / name for name in GATE_FILES}
    outputs = _read(tmp_path, "golden_outputs.json")
    for case in DEFAULT_GOLDEN_SET.cases:
        output = outputs[case.case_id]
        assert output["label"] == case.expected_label
        assert output["probabilities"][case.expected_label] >= CLEAR_CUT, (recipe, case.case_id)


def test_a_worse_model_passes_the_golden_cases_and_is_stopped_by_its_metrics(
    model_dirs: dict[str, Path], logistic_gates: Path, tmp_path: Path
) -> None:
    # Golden cases are for broken models; a merely worse one is the metric gate's to catch.
    write_gate_files(model_dirs["degraded"], tmp_path)
    outputs = {
        case: Prediction.model_validate(o) for case, o in _read(tmp_path, "golden_outputs.json").items()
    }
    golden = GoldenSet.model_validate(_read(tmp_path, "golden.json"))
    assert golden_gate(golden, outputs, GateSettings()).status is GateStatus.PASSED
    champion = _read(logistic_gates, "metrics.json")
    result = metric_gate(_read(tmp_path, "metrics.json"), champion, GateSettings())
    assert result.status is GateStatus.FAILED
    assert "auc" in result.reason


def test_a_model_with_inverted_labels_fails_every_golden_case(tmp_path: Path) -> None:
    data = synthetic_churn(2000, seed=SEED)
    inverted = Dataset(data.features, 1 - data.labels, "inverted labels")
    train(TrainConfig("logistic", seed=SEED), tmp_path / "model", inverted)
    paths = write_gate_files(tmp_path / "model", tmp_path / "gates", training_data=inverted)
    # Read back as the gates Lambda reads them.
    golden = GoldenSet.model_validate_json(paths["golden.json"].read_text())
    outputs = {
        c: Prediction.model_validate(o)
        for c, o in json.loads(paths["golden_outputs.json"].read_text()).items()
    }
    check = golden_gate(golden, outputs, GateSettings())
    assert check.status is GateStatus.FAILED
    assert sorted(check.failed_cases) == sorted(c.case_id for c in DEFAULT_GOLDEN_SET.cases)


def test_golden_outputs_are_what_the_inference_server_answers(
    model_dirs: dict[str, Path], logistic_gates: Path
) -> None:
    client = create_app(model_dirs["logistic"]).test_client()
    records = [case.record for case in DEFAULT_GOLDEN_SET.cases]
    answer = client.post("/invocations", json={"instances": records}).get_json()
    outputs = _read(logistic_gates, "golden_outputs.json")
    for index, case in enumerate(DEFAULT_GOLDEN_SET.cases):
        assert outputs[case.case_id] == {
            "label": answer["predictions"][index],
            "probabilities": answer["probabilities"][index],
        }


def test_the_baseline_is_the_training_split_thinned_and_the_files_are_reproducible(
    model_dirs: dict[str, Path], logistic_gates: Path, tmp_path: Path
) -> None:
    metadata = json.loads((model_dirs["logistic"] / "metadata.json").read_text())
    split = training_split_features(metadata, None)
    assert len(split) == metadata["data"]["train_rows"]
    baseline = TrainingBaseline.model_validate(_read(logistic_gates, "baseline.json"))
    assert tuple(baseline.features) == CHURN_SCHEMA.names
    for index, name in enumerate(CHURN_SCHEMA.names):
        values = baseline.features[name]
        assert len(values) == BASELINE_MAX_VALUES
        assert (values[0], values[-1]) == (split[:, index].min(), split[:, index].max())
    write_gate_files(model_dirs["logistic"], tmp_path)
    for name in GATE_FILES:
        assert (tmp_path / name).read_bytes() == (logistic_gates / name).read_bytes(), name


def test_the_baseline_lets_the_drift_gate_see_a_shifted_population(logistic_gates: Path) -> None:
    baseline = TrainingBaseline.model_validate(_read(logistic_gates, "baseline.json"))
    captured = _captured(400, seed=99)
    newcomers = {
        **captured.features,
        "tenure_months": tuple(v / 4 for v in captured.features["tenure_months"]),
    }
    result = drift_gate(baseline, CapturedFeatures(features=newcomers), GateSettings())
    assert result.drifted_features == ("tenure_months",)


def test_a_model_archive_gives_the_same_files_as_its_directory(
    model_dirs: dict[str, Path], logistic_gates: Path, tmp_path: Path
) -> None:
    package_model(model_dirs["logistic"], tmp_path / "input" / "model.tar.gz")
    write_gate_files(tmp_path / "input", tmp_path / "out")
    for name in GATE_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (logistic_gates / name).read_bytes(), name


@pytest.mark.parametrize("missing", ["model.joblib", "features.json", "metadata.json"])
def test_a_model_directory_missing_a_file_is_named_and_nothing_is_written(
    model_dirs: dict[str, Path], tmp_path: Path, missing: str
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(model_dirs["logistic"], model_dir)
    (model_dir / missing).unlink()
    with pytest.raises(GateFilesError, match=missing):
        write_gate_files(model_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_outputs_that_do_not_cover_every_golden_case_are_refused(logistic_gates: Path) -> None:
    outputs = {
        c: Prediction.model_validate(o) for c, o in _read(logistic_gates, "golden_outputs.json").items()
    }
    del outputs["settled_annual_contract"]
    with pytest.raises(GateFilesError, match=r"golden_outputs\.json.*missing \['settled_annual_contract'\]"):
        GateDocuments(
            golden=DEFAULT_GOLDEN_SET,
            golden_outputs=outputs,
            metrics=_read(logistic_gates, "metrics.json"),
            baseline=TrainingBaseline.model_validate(_read(logistic_gates, "baseline.json")),
        )


def test_a_golden_case_the_model_cannot_read_is_named_and_nothing_is_written(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    loyal = DEFAULT_GOLDEN_SET.cases[0].record
    assert isinstance(loyal, dict)
    record = {**loyal, "shoe_size": 42.0}
    golden = GoldenSet(
        cases=(*DEFAULT_GOLDEN_SET.cases, GoldenCase(case_id="other_schema", record=record, expected_label=0))
    )
    with pytest.raises(GateFilesError, match=r"'other_schema'.*shoe_size"):
        write_gate_files(model_dirs["logistic"], tmp_path / "out", golden=golden)
    assert not (tmp_path / "out").exists()
    with pytest.raises(GateFilesError, match="no cases"):
        write_gate_files(model_dirs["logistic"], tmp_path / "out", golden=GoldenSet())


def _edit_metadata(source: Path, target: Path, **changes: Any) -> Path:
    shutil.copytree(source, target)
    metadata = json.loads((target / "metadata.json").read_text())
    metadata.update(changes)
    (target / "metadata.json").write_text(json.dumps(metadata))
    return target


def test_unusable_metrics_are_named_and_nothing_is_written(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    registered = json.loads((model_dirs["logistic"] / "metadata.json").read_text())["metrics"]
    without_auc = {name: value for name, value in registered.items() if name != "auc"}
    model_dir = _edit_metadata(model_dirs["logistic"], tmp_path / "no-auc", metrics=without_auc)
    with pytest.raises(GateFilesError, match=r"metrics\.json: missing .*\['auc'\]"):
        write_gate_files(model_dir, tmp_path / "out")
    model_dir = _edit_metadata(model_dirs["logistic"], tmp_path / "pct", metrics={**registered, "f1": 81.0})
    with pytest.raises(GateFilesError, match=r"metrics\.json: .*within 0-1"):
        write_gate_files(model_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_training_data_must_be_the_data_the_model_was_trained_on(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(GateFilesError, match="not what the model was trained on"):
        write_gate_files(
            model_dirs["logistic"], tmp_path / "out", training_data=synthetic_churn(4000, seed=2)
        )
    from_csv = _edit_metadata(
        model_dirs["logistic"], tmp_path / "csv", data={"source": "csv(part-1.csv)", "rows": 10}
    )
    with pytest.raises(GateFilesError, match=r"trained on csv\(part-1\.csv\): pass that training data"):
        write_gate_files(from_csv, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_defaults_follow_sagemaker_processing_and_arguments_override_them(
    model_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = gate_files._parse_args([])
    assert defaults.model_dir == Path("/opt/ml/processing/input/model")
    assert defaults.out_dir == Path("/opt/ml/processing/output/gates")
    golden = GoldenSet(cases=DEFAULT_GOLDEN_SET.cases[:1])
    (tmp_path / "golden.json").write_text(golden.model_dump_json())
    gate_files.main(
        [
            *("--model-dir", str(model_dirs["boosted"]), "--out-dir", str(tmp_path / "out")),
            *("--golden", str(tmp_path / "golden.json"), "--baseline-values", "300"),
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_version"] == f"boosted-seed{SEED}"
    assert summary["golden_check"]["status"] == "passed"
    assert set(summary["files"]) == set(GATE_FILES)
    assert GoldenSet.model_validate(_read(tmp_path / "out", "golden.json")) == golden
    baseline = TrainingBaseline.model_validate(_read(tmp_path / "out", "baseline.json"))
    assert baseline.smallest_sample == 300


def test_cli_failure_says_why_and_exits_non_zero(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"gate files not written: .*lacks model\.joblib"):
        gate_files.main(["--model-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")])
