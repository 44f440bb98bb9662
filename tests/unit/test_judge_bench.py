"""The benchmark in quick mode: it runs, writes the agreed CSV and a plot, and uses the real judge."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import bench.judge_methods
from bench import judge_bench, judge_sim
from infra.config import load_config
from lambdas.handlers import rollout_judge
from lambdas.rollout import decision as decision_module
from lambdas.rollout.decision import Look, LookDecision
from lambdas.rollout.judge import JudgeSettings, RolloutWindows
from lambdas.rollout.payloads import RolloutRequest
from lambdas.rollout.tasks import judge as judge_task

REQUIRED_SCENARIOS = {
    "equal",
    "equal_lowrate",
    "equal_highrate",
    "equal_low_traffic",
    "errors_1.3x",
    "errors_1.5x",
    "errors_2x",
    "errors_2x_lowrate",
    "errors_2x_low_traffic",
    "errors_5x",
    "challenger_burst",
    "common_outage",
    "overdispersed_equal",
    "latency_+20pct",
    "latency_tail_+30pct",
    "latency_heavy_tail_equal",
    "conversion_-2pt",
    "noisy_champion",
    "diurnal_equal",
}
METHODS = {"judge", "static_threshold", "flagger", "fixed_horizon", "oracle_sprt"}
COLUMNS = [
    "scenario",
    "method",
    "replicates",
    "rollback_rate",
    "promote_rate",
    "inconclusive_rate",
    "mean_blast_radius",
    "median_time_to_decision_s",
    "mean_excess_errors",
    "p95_time_to_decision_s",
]


@dataclass
class Calls:
    looks: int = 0
    plans: set[tuple[str, str]] = field(default_factory=set)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Calls]:
    """One quick run for all the assertions below, watching the calls into the shipped decision."""
    out_dir = tmp_path_factory.mktemp("bench")
    calls = Calls()
    real = decision_module.decide_look

    def watching(
        request: RolloutRequest, settings: JudgeSettings, look: Look, windows: RolloutWindows
    ) -> LookDecision:
        calls.looks += 1
        calls.plans.add(
            (
                request.model_dump_json(include={"strategy", "traffic_steps", "bake_minutes"}),
                settings.model_dump_json(),
            )
        )
        return real(request, settings, look, windows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.judge_methods, "decide_look", watching)
        judge_bench.main(["--quick", "--replicates", "2", "--out-dir", str(out_dir)])
    return out_dir, calls


def read_rows(out_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (out_dir / "judge.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_quick_bench_writes_exactly_the_agreed_columns(quick_run: tuple[Path, int]) -> None:
    columns, _ = read_rows(quick_run[0])
    assert columns == COLUMNS


def test_quick_bench_has_one_row_per_scenario_and_method(quick_run: tuple[Path, int]) -> None:
    _, rows = read_rows(quick_run[0])
    pairs = [(row["scenario"], row["method"]) for row in rows]
    simulated = {s.name for s in judge_sim.SCENARIOS}
    assert simulated >= REQUIRED_SCENARIOS
    assert sorted(pairs) == sorted((s, m) for s in simulated for m in METHODS)
    assert all(int(row["replicates"]) == 2 for row in rows)


def test_quick_bench_decision_rates_add_up(quick_run: tuple[Path, int]) -> None:
    _, rows = read_rows(quick_run[0])
    for row in rows:
        rates = [float(row[c]) for c in ("rollback_rate", "promote_rate", "inconclusive_rate")]
        assert all(0.0 <= r <= 1.0 for r in rates)
        assert sum(rates) == pytest.approx(1.0)
        assert float(row["median_time_to_decision_s"]) > 0
        assert float(row["p95_time_to_decision_s"]) >= float(row["median_time_to_decision_s"])
        assert float(row["mean_excess_errors"]) >= 0.0 or "burst" not in row["scenario"]


def test_guardrail_baselines_never_end_inconclusive(quick_run: tuple[Path, int]) -> None:
    _, rows = read_rows(quick_run[0])
    for row in rows:
        if row["method"] in {"static_threshold", "flagger", "fixed_horizon"}:
            assert float(row["inconclusive_rate"]) == 0.0


def test_quick_bench_writes_a_png_plot(quick_run: tuple[Path, int]) -> None:
    assert (quick_run[0] / "judge.png").read_bytes().startswith(b"\x89PNG")


def test_the_bench_and_the_judge_handler_call_the_same_decision(quick_run: tuple[Path, Calls]) -> None:
    assert vars(bench.judge_methods)["decide_look"] is decision_module.decide_look
    assert vars(rollout_judge)["judge_step"] is judge_task.judge_step
    assert vars(judge_task)["decide_look"] is decision_module.decide_look
    # Looks every minute after the first bake: many looks per scenario and replicate.
    assert quick_run[1].looks >= len(REQUIRED_SCENARIOS) * 2 * 5


def test_the_bench_decides_with_the_plan_and_settings_dev_ships(quick_run: tuple[Path, Calls]) -> None:
    rollout = load_config("dev").rollout
    ((plan, settings),) = quick_run[1].plans
    assert JudgeSettings.model_validate_json(settings) == rollout.judge
    assert f'"bake_minutes":{rollout.bake_minutes}' in plan
    assert [step for step in RolloutRequest.model_fields] and '"strategy":"canary"' in plan


def test_the_times_to_decision_are_rounded_like_the_other_columns() -> None:
    # Interpolating the 95th percentile of whole minutes leaves float noise (here 1310.9999999999998).
    times = [60.0 * minute for minute in range(24)]
    runs = [judge_bench.Run("promote", False, 0.0, 0.0, t) for t in times]
    row = judge_bench._summarise("equal", "judge", runs)
    for column in ("median_time_to_decision_s", "p95_time_to_decision_s"):
        value = row[column]
        assert isinstance(value, float) and value == round(value, 2), (column, value)


def test_a_run_of_some_scenarios_leaves_the_committed_results_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed, scratch = tmp_path / "results", tmp_path / "scratch"
    monkeypatch.setattr(judge_bench, "DEFAULT_OUT_DIR", committed)
    monkeypatch.setattr(judge_bench, "QUICK_OUT_DIR", scratch)
    # overdispersed_equal: no method has a blast radius, so its log-scaled panels have nothing to draw.
    judge_bench.main(["--replicates", "2", "--workers", "1", "--scenarios", "overdispersed_equal"])
    assert not committed.exists()
    assert (scratch / "judge.csv").exists() and (scratch / "judge.png").exists()
