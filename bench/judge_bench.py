"""Benchmark of the rollout judge against the classic guardrails, on seeded simulated rollouts.

    python -m bench.judge_bench            # full: 2000 replicates per scenario, 2 worker processes
    python -m bench.judge_bench --quick    # a few replicates, one process (tests)

Prints a table, writes bench/results/judge.csv and bench/results/judge.png, and checks the targets.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

from bench.judge_methods import methods
from bench.judge_sim import GUARDRAIL_SCHEDULE, SCENARIOS, SEQUENTIAL_SCHEDULE, WINDOW_S, simulate
from lambdas.rollout.judge import JudgeSettings

matplotlib.use("Agg")
from matplotlib import pyplot as plt

CSV_COLUMNS = (
    "scenario",
    "method",
    "replicates",
    "rollback_rate",
    "promote_rate",
    "inconclusive_rate",
    "mean_blast_radius",
    "median_time_to_decision_s",
)
METHOD_NAMES = ("judge", "static_threshold", "flagger", "fixed_horizon", "oracle_sprt")
DEFAULT_OUT_DIR = Path(__file__).parent / "results"
QUICK_OUT_DIR = Path(tempfile.gettempdir()) / "mlrollout-judge-bench-quick"
CHUNK = 125


@dataclass(frozen=True, slots=True)
class Run:
    decision: str
    blast_radius: float
    time_to_decision_s: float


@dataclass(frozen=True, slots=True)
class Task:
    scenario_index: int
    chunk_index: int
    replicates: int
    seed: int


def _run_task(task: Task) -> tuple[str, dict[str, list[Run]]]:
    """Simulate one chunk of one scenario and run every method on it (one worker's unit of work)."""
    scenario = SCENARIOS[task.scenario_index]
    sequence = np.random.SeedSequence([task.seed, task.scenario_index, task.chunk_index])
    data_by_schedule = {
        schedule: simulate(scenario, schedule, task.replicates, np.random.default_rng(child))
        for schedule, child in zip((GUARDRAIL_SCHEDULE, SEQUENTIAL_SCHEDULE), sequence.spawn(2), strict=True)
    }
    runs: dict[str, list[Run]] = {}
    for method in methods(JudgeSettings()):
        data = data_by_schedule[method.schedule]
        served = data.challenger.requests * data.excess_bad_per_request
        runs[method.name] = []
        for r in range(task.replicates):
            outcome = method.run(data, r)
            runs[method.name].append(
                Run(
                    decision=outcome.decision,
                    blast_radius=float(served[r, : outcome.last_window + 1].sum()),
                    time_to_decision_s=float((outcome.last_window + 1) * WINDOW_S),
                )
            )
    return scenario.name, runs


def _tasks(replicates: int, seed: int) -> list[Task]:
    tasks = []
    for s in range(len(SCENARIOS)):
        for c, start in enumerate(range(0, replicates, CHUNK)):
            tasks.append(Task(s, c, min(CHUNK, replicates - start), seed))
    return tasks


def run_bench(replicates: int, seed: int, workers: int) -> list[dict[str, str | int | float]]:
    tasks = _tasks(replicates, seed)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run_task, tasks))
    else:
        results = [_run_task(t) for t in tasks]
    merged: dict[tuple[str, str], list[Run]] = {}
    for scenario, runs in results:
        for method, method_runs in runs.items():
            merged.setdefault((scenario, method), []).extend(method_runs)
    return [
        _summarise(scenario.name, name, merged[(scenario.name, name)])
        for scenario in SCENARIOS
        for name in METHOD_NAMES
    ]


def _summarise(scenario: str, method: str, runs: Sequence[Run]) -> dict[str, str | int | float]:
    count = len(runs)

    def share(decision: str) -> float:
        return sum(r.decision == decision for r in runs) / count

    return {
        "scenario": scenario,
        "method": method,
        "replicates": count,
        "rollback_rate": round(share("rollback"), 4),
        "promote_rate": round(share("promote"), 4),
        "inconclusive_rate": round(share("inconclusive"), 4),
        "mean_blast_radius": round(statistics.fmean(r.blast_radius for r in runs), 2) + 0.0,  # no "-0.0"
        "median_time_to_decision_s": statistics.median(r.time_to_decision_s for r in runs),
    }


def write_csv(rows: Sequence[dict[str, str | int | float]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows: Sequence[dict[str, str | int | float]]) -> str:
    header = "| " + " | ".join(CSV_COLUMNS) + " |"
    rule = "|" + "|".join(" --- " for _ in CSV_COLUMNS) + "|"
    body = ["| " + " | ".join(str(row[c]) for c in CSV_COLUMNS) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def plot(rows: Sequence[dict[str, str | int | float]], path: Path) -> None:
    scenarios = [s.name for s in SCENARIOS]
    figure, axes = plt.subplots(2, 2, figsize=(15, 9))
    width = 0.8 / len(METHOD_NAMES)
    panels = (
        ("rollback_rate", "rollback rate", 1.0, False),
        ("promote_rate", "promote rate", 1.0, False),
        ("mean_blast_radius", "mean blast radius: excess bad outcomes (log; none drawn = 0)", 1.0, True),
        ("median_time_to_decision_s", "median time to decision (minutes)", 1 / 60, False),
    )
    for axis, (column, title, scale, log_scale) in zip(axes.flat, panels, strict=True):
        for i, method in enumerate(METHOD_NAMES):
            values = [float(_row(rows, s, method)[column]) * scale for s in scenarios]
            if log_scale:
                values = [v if v > 0 else float("nan") for v in values]
            positions = [x + (i - len(METHOD_NAMES) / 2 + 0.5) * width for x in range(len(scenarios))]
            axis.bar(positions, values, width, label=method)
        axis.set_title(title)
        axis.set_xticks(range(len(scenarios)), scenarios, rotation=20, ha="right")
        if log_scale:
            axis.set_yscale("log")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(METHOD_NAMES))
    figure.suptitle("Rollout decisions through canary steps 5-25-50-100 % (bench/judge_bench.py)")
    figure.tight_layout(rect=(0.0, 0.04, 1.0, 1.0))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _row(
    rows: Sequence[dict[str, str | int | float]], scenario: str, method: str
) -> dict[str, str | int | float]:
    return next(r for r in rows if r["scenario"] == scenario and r["method"] == method)


def target_report(rows: Sequence[dict[str, str | int | float]]) -> list[str]:
    """The issue's targets, each with the measured numbers and whether it is met."""
    equal = float(_row(rows, "equal", "judge")["rollback_rate"])
    worst_promote = max(float(_row(rows, s, "judge")["promote_rate"]) for s in ("errors_2x", "errors_5x"))
    judge_blast = float(_row(rows, "errors_2x", "judge")["mean_blast_radius"])
    oracle_blast = float(_row(rows, "errors_2x", "oracle_sprt")["mean_blast_radius"])
    static_blast = float(_row(rows, "errors_2x", "static_threshold")["mean_blast_radius"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return [
        f"false rollback on equal: {equal:.2%} (target <= 1%): {verdict(equal <= 0.01)}",
        f"promotion of a 2x-or-worse regression: {worst_promote:.2%} (target <= 1%): "
        f"{verdict(worst_promote <= 0.01)}",
        f"errors_2x blast radius: judge {judge_blast:.1f}, oracle {oracle_blast:.1f} "
        f"(ratio {judge_blast / max(oracle_blast, 1e-9):.2f}, target <= 2): "
        f"{verdict(judge_blast <= 2 * oracle_blast)}",
        f"errors_2x blast radius: judge {judge_blast:.1f}, static threshold {static_blast:.1f} "
        f"(ratio {judge_blast / max(static_blast, 1e-9):.3f}, target <= 0.2): "
        f"{verdict(judge_blast <= static_blast / 5)}",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few replicates in one process (for tests)")
    parser.add_argument("--replicates", type=int, default=None, help="replicates per scenario")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help=f"where to write judge.csv and judge.png (default {DEFAULT_OUT_DIR}; quick runs default to "
        f"{QUICK_OUT_DIR}, so that they never overwrite the committed results)",
    )
    args = parser.parse_args(argv)
    replicates = args.replicates or (20 if args.quick else 2000)
    workers = args.workers or (1 if args.quick else 2)
    started = time.perf_counter()
    rows = run_bench(replicates, args.seed, workers)
    elapsed = time.perf_counter() - started
    out_dir: Path = args.out_dir or (QUICK_OUT_DIR if args.quick else DEFAULT_OUT_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out_dir / "judge.csv")
    plot(rows, out_dir / "judge.png")
    print(format_table(rows))
    print()
    if replicates < 1000:
        print(f"targets (indicative only: {replicates} replicates cannot resolve 1 % rates):")
    print("\n".join(target_report(rows)))
    print(f"\n{replicates} replicates per scenario, seed {args.seed}, {workers} worker(s), {elapsed:.0f} s")
    print(f"wrote {out_dir / 'judge.csv'} and {out_dir / 'judge.png'}")


if __name__ == "__main__":
    main()
