"""The benchmark in quick mode: it runs, writes the agreed CSV and a plot, and uses the real judge."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import bench.judge_methods
from bench import judge_bench, judge_sim
from lambdas.rollout import judge as judge_module
from lambdas.rollout.judge import JudgeResult, JudgeSettings, RolloutWindows

REQUIRED_SCENARIOS = {
    "equal",
    "errors_1.5x",
    "errors_2x",
    "errors_5x",
    "latency_+20pct",
    "conversion_-2pt",
    "noisy_champion",
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
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One quick run for all the assertions below, counting the calls into the real judge."""
    out_dir = tmp_path_factory.mktemp("bench")
    calls = 0
    real_judge = judge_module.judge

    def counting_judge(windows: RolloutWindows, settings: JudgeSettings | None = None) -> JudgeResult:
        nonlocal calls
        calls += 1
        return real_judge(windows, settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.judge_methods, "judge", counting_judge)
        judge_bench.main(["--quick", "--replicates", "3", "--out-dir", str(out_dir)])
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
    assert all(int(row["replicates"]) == 3 for row in rows)


def test_quick_bench_decision_rates_add_up(quick_run: tuple[Path, int]) -> None:
    _, rows = read_rows(quick_run[0])
    for row in rows:
        rates = [float(row[c]) for c in ("rollback_rate", "promote_rate", "inconclusive_rate")]
        assert all(0.0 <= r <= 1.0 for r in rates)
        assert sum(rates) == pytest.approx(1.0)
        assert float(row["median_time_to_decision_s"]) > 0


def test_guardrail_baselines_never_end_inconclusive(quick_run: tuple[Path, int]) -> None:
    _, rows = read_rows(quick_run[0])
    for row in rows:
        if row["method"] in {"static_threshold", "flagger", "fixed_horizon"}:
            assert float(row["inconclusive_rate"]) == 0.0


def test_quick_bench_writes_a_png_plot(quick_run: tuple[Path, int]) -> None:
    assert (quick_run[0] / "judge.png").read_bytes().startswith(b"\x89PNG")


def test_the_judge_method_calls_the_real_judge(quick_run: tuple[Path, int]) -> None:
    # At least one look per scenario and replicate.
    assert quick_run[1] >= len(REQUIRED_SCENARIOS) * 3
