"""Benchmark of the shipped rollout decisions against the classic guardrails, on seeded simulations.

The judge's rows are the product's path (bench/judge_methods.py): the dev environment's plan and judge
settings, the CloudWatch reader's windows, and lambdas.rollout.decision.decide_look.

    python -m bench.judge_bench            # full: 1000 replicates per scenario, 2 worker processes
    python -m bench.judge_bench --quick    # a few replicates, one process (tests)
    python -m bench.judge_bench --replicates 100 --scenarios equal errors_2x   # while developing

Prints a table, writes bench/results/judge.csv and bench/results/judge.png, and checks the targets.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

from bench.judge_methods import GUARDRAIL_SHARES, METHOD_NAMES, methods, plan_shares, shipped_plan
from bench.judge_sim import SCENARIO_NAMES, SCENARIOS, WINDOW_S, simulate

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
    "mean_excess_errors",
    "p95_time_to_decision_s",
)
DEFAULT_OUT_DIR = Path(__file__).parent / "results"
QUICK_OUT_DIR = Path(tempfile.gettempdir()) / "mlrollout-judge-bench-quick"
CHUNK = 50


@dataclass(frozen=True, slots=True)
class Run:
    decision: str
    for_harm: bool
    blast_radius: float
    excess_errors: float
    time_to_decision_s: float
    sample_ratio_mismatch: bool = False


@dataclass(frozen=True, slots=True)
class Task:
    scenario_index: int
    chunk_index: int
    replicates: int
    seed: int


def _run_task(task: Task) -> tuple[str, dict[str, list[Run]]]:
    """Simulate one chunk of one scenario and run every method on it (one worker's unit of work)."""
    scenario = SCENARIOS[task.scenario_index]
    request, settings = shipped_plan()
    shares = tuple(sorted(set(plan_shares(request)) | set(GUARDRAIL_SHARES)))
    sequence = np.random.SeedSequence([task.seed, task.scenario_index, task.chunk_index])
    data = simulate(scenario, shares, task.replicates, np.random.default_rng(sequence))
    runs: dict[str, list[Run]] = {}
    for method in methods(request, settings, scenario):
        runs[method.name] = []
        for r in range(task.replicates):
            outcome = method.run(data, r)
            minutes = np.arange(outcome.minutes)
            columns = np.asarray(outcome.columns, dtype=int)
            served = data.challenger.requests[r, minutes, columns]
            runs[method.name].append(
                Run(
                    decision=outcome.decision,
                    for_harm=outcome.decision == "rollback" and outcome.for_harm,
                    sample_ratio_mismatch=outcome.decision == "rollback" and outcome.sample_ratio_mismatch,
                    blast_radius=float((served * data.excess_bad_per_request[r, minutes]).sum()),
                    excess_errors=float((served * data.excess_errors_per_request[r, minutes]).sum()),
                    time_to_decision_s=float(outcome.minutes * WINDOW_S),
                )
            )
    return scenario.name, runs


def _tasks(replicates: int, seed: int, scenarios: Sequence[int]) -> list[Task]:
    tasks = []
    for s in scenarios:
        for c, start in enumerate(range(0, replicates, CHUNK)):
            tasks.append(Task(s, c, min(CHUNK, replicates - start), seed))
    return tasks


def run_bench(
    replicates: int, seed: int, workers: int, scenarios: Sequence[str] = SCENARIO_NAMES
) -> list[dict[str, str | int | float]]:
    tasks = _tasks(replicates, seed, [SCENARIO_NAMES.index(name) for name in scenarios])
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
        _summarise(scenario, name, merged[(scenario, name)])
        for scenario in scenarios
        for name in METHOD_NAMES
    ]


def _summarise(scenario: str, method: str, runs: Sequence[Run]) -> dict[str, str | int | float]:
    count = len(runs)

    def share(decision: str) -> float:
        return sum(r.decision == decision for r in runs) / count

    times = [r.time_to_decision_s for r in runs]
    return {
        "scenario": scenario,
        "method": method,
        "replicates": count,
        "rollback_rate": round(share("rollback"), 4),
        "promote_rate": round(share("promote"), 4),
        "inconclusive_rate": round(share("inconclusive"), 4),
        "mean_blast_radius": round(statistics.fmean(r.blast_radius for r in runs), 2) + 0.0,  # no "-0.0"
        "median_time_to_decision_s": round(statistics.median(times), 2) + 0.0,
        "mean_excess_errors": round(statistics.fmean(r.excess_errors for r in runs), 2) + 0.0,
        "p95_time_to_decision_s": round(float(np.percentile(times, 95)), 2) + 0.0,
        # Printed, not in the CSV: the rollbacks for shown harm (the rest: not shown non-inferior in time).
        "harm_rollback_rate": round(sum(r.for_harm for r in runs) / count, 4),
        # The rollbacks for a sample ratio mismatch (the split did not follow the weights).
        "srm_rollback_rate": round(sum(r.sample_ratio_mismatch for r in runs) / count, 4),
    }


def write_csv(rows: Sequence[dict[str, str | int | float]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


TABLE_COLUMNS = (*CSV_COLUMNS, "harm_rollback_rate", "srm_rollback_rate")


def format_table(rows: Sequence[dict[str, str | int | float]]) -> str:
    header = "| " + " | ".join(TABLE_COLUMNS) + " |"
    rule = "|" + "|".join(" --- " for _ in TABLE_COLUMNS) + "|"
    body = ["| " + " | ".join(str(row[c]) for c in TABLE_COLUMNS) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def plot(rows: Sequence[dict[str, str | int | float]], path: Path) -> None:
    scenarios = list(dict.fromkeys(str(r["scenario"]) for r in rows))
    figure, axes = plt.subplots(3, 2, figsize=(18, 14))
    width = 0.8 / len(METHOD_NAMES)
    panels = (
        ("rollback_rate", "rollback rate", 1.0, False),
        ("promote_rate", "promote rate", 1.0, False),
        ("inconclusive_rate", "inconclusive rate (too little data; the champion stays)", 1.0, False),
        ("mean_excess_errors", "mean excess errors (log; none drawn = 0)", 1.0, True),
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
        axis.set_xticks(range(len(scenarios)), scenarios, rotation=35, ha="right", fontsize=8)
        # A subset whose column is all zeros (no blast radius anywhere) has nothing to draw on a log axis.
        if log_scale and any(float(r[column]) > 0 for r in rows):
            axis.set_yscale("log")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(METHOD_NAMES))
    figure.suptitle(
        "Rollout decisions, the shipped path (dev: canary 5-25-50-100 %, 10-min bakes, looks every minute) "
        "vs guardrails and an oracle (bench/judge_bench.py)"
    )
    figure.tight_layout(rect=(0.0, 0.03, 1.0, 0.97))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _row(
    rows: Sequence[dict[str, str | int | float]], scenario: str, method: str
) -> dict[str, str | int | float]:
    return next(r for r in rows if r["scenario"] == scenario and r["method"] == method)


EQUAL_SCENARIOS = (
    "equal",
    "equal_lowrate",
    "equal_highrate",
    "equal_low_traffic",
    "common_outage",
    "overdispersed_equal",
    "latency_heavy_tail_equal",
    "noisy_champion",
    "diurnal_equal",
)
"""No regression: a rollback of these is a false rollback."""
REGRESSIONS = (
    "errors_1.3x",
    "errors_1.5x",
    "errors_2x",
    "errors_2x_lowrate",
    "errors_2x_low_traffic",
    "errors_5x",
    "latency_tail_+30pct",
    "conversion_-2pt",
)
"""A regression of 1.3x or worse (or a lost conversion): a promotion of these is a bad promotion."""


def target_report(rows: Sequence[dict[str, str | int | float]]) -> list[str]:
    """The issue's targets, each with the measured numbers and whether it is met."""
    present = {str(r["scenario"]) for r in rows}
    lines: list[str] = []

    def value(scenario: str, column: str, method: str = "judge") -> float:
        return float(_row(rows, scenario, method)[column])

    def check(name: str, scenarios: Sequence[str], ok: Callable[[], bool], text: Callable[[], str]) -> None:
        if all(s in present for s in scenarios):
            lines.append(f"{name}: {text()}: {'met' if ok() else 'NOT met'}")

    def ratio(scenario: str, column: str, limit: float, versus: str = "oracle_sprt") -> None:
        check(
            f"{scenario} {column} vs {versus}",
            [scenario],
            lambda: value(scenario, column) <= limit * value(scenario, column, versus) + 1e-9,
            lambda: (
                f"judge {value(scenario, column):.1f}, {versus} {value(scenario, column, versus):.1f} "
                f"(ratio {value(scenario, column) / max(value(scenario, column, versus), 1e-9):.2f}, "
                f"target <= {limit:g})"
            ),
        )

    def rate(scenario: str, column: str, target: float, at_most: bool) -> None:
        sign = "<=" if at_most else ">="
        check(
            f"{scenario} {column}",
            [scenario],
            lambda: value(scenario, column) <= target if at_most else value(scenario, column) >= target,
            lambda: f"{value(scenario, column):.2%} (target {sign} {target:.0%})",
        )

    rate("equal", "promote_rate", 0.95, at_most=False)
    rate("equal_lowrate", "promote_rate", 0.90, at_most=False)
    low = "equal_low_traffic"
    check(
        f"{low}: too little data said at the first look, not a rollback",
        [low],
        lambda: (
            value(low, "inconclusive_rate") + value(low, "promote_rate") >= 0.99
            and value(low, "median_time_to_decision_s") <= 15 * 60
        ),
        lambda: (
            f"too little data {value(low, 'inconclusive_rate'):.2%}, "
            f"promoted {value(low, 'promote_rate'):.2%}, "
            f"median {value(low, 'median_time_to_decision_s') / 60:.0f} min "
            "(target: >= 99 % stopped as too little data within the first bake, or promoted)"
        ),
    )
    bad_low = "errors_2x_low_traffic"
    check(
        f"{bad_low}: the champion is restored (rolled back or stopped for too little data)",
        [bad_low],
        lambda: value(bad_low, "promote_rate") <= 0.01,
        lambda: (
            f"rolled back {value(bad_low, 'rollback_rate'):.2%}, too little data "
            f"{value(bad_low, 'inconclusive_rate'):.2%}, promoted {value(bad_low, 'promote_rate'):.2%}"
        ),
    )
    ratio("errors_2x_low_traffic", "mean_blast_radius", 2.0)
    rate("errors_1.3x", "promote_rate", 0.01, at_most=True)
    ratio("errors_1.3x", "mean_excess_errors", 2.0)
    ratio("errors_2x_lowrate", "mean_excess_errors", 2.0)
    ratio("challenger_burst", "mean_excess_errors", 1.5)
    rate("overdispersed_equal", "harm_rollback_rate", 0.01, at_most=True)
    rate("latency_tail_+30pct", "promote_rate", 0.01, at_most=True)
    rate("latency_heavy_tail_equal", "promote_rate", 0.90, at_most=False)
    rate("common_outage", "harm_rollback_rate", 0.01, at_most=True)
    equal = [s for s in EQUAL_SCENARIOS if s in present]
    if equal:
        worst = max(equal, key=lambda s: value(s, "harm_rollback_rate"))
        check(
            "false rollback (harm shown) on every equal scenario",
            [worst],
            lambda: value(worst, "harm_rollback_rate") <= 0.01,
            lambda: f"worst {worst} {value(worst, 'harm_rollback_rate'):.2%} (target <= 1%)",
        )
        fewest = min(equal, key=lambda s: value(s, "promote_rate"))
        lines.append(
            f"(not a target) fewest promotions of an equal scenario: {fewest} "
            f"{value(fewest, 'promote_rate'):.2%}; the rest stopped as not shown non-inferior or too little "
            "data"
        )
    rate("srm", "srm_rollback_rate", 0.99, at_most=False)
    if equal:
        worst = max(equal, key=lambda s: value(s, "srm_rollback_rate"))
        check(
            "no sample ratio mismatch on any equal scenario",
            [worst],
            lambda: value(worst, "srm_rollback_rate") <= 0.001,
            lambda: f"worst {worst} {value(worst, 'srm_rollback_rate'):.2%} (target <= 0.1%)",
        )
    regressions = [s for s in REGRESSIONS if s in present]
    if regressions:
        worst = max(regressions, key=lambda s: value(s, "promote_rate"))
        check(
            "bad promotion on every regression >= 1.3x",
            [worst],
            lambda: value(worst, "promote_rate") <= 0.01,
            lambda: f"worst {worst} {value(worst, 'promote_rate'):.2%} (target <= 1%)",
        )
    ratio("errors_2x", "mean_blast_radius", 2.0)
    ratio("errors_2x", "mean_blast_radius", 0.2, versus="static_threshold")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few replicates in one process (for tests)")
    parser.add_argument("--replicates", type=int, default=None, help="replicates per scenario")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIO_NAMES, default=list(SCENARIO_NAMES), help="a subset to run"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help=f"where to write judge.csv and judge.png (default {DEFAULT_OUT_DIR}; quick runs and runs of a "
        f"subset of the scenarios default to {QUICK_OUT_DIR}, so that they never overwrite the committed "
        "results)",
    )
    args = parser.parse_args(argv)
    replicates = args.replicates or (4 if args.quick else 1000)
    workers = args.workers or (1 if args.quick else 2)
    started = time.perf_counter()
    rows = run_bench(replicates, args.seed, workers, args.scenarios)
    elapsed = time.perf_counter() - started
    partial = args.quick or set(args.scenarios) != set(SCENARIO_NAMES)
    out_dir: Path = args.out_dir or (QUICK_OUT_DIR if partial else DEFAULT_OUT_DIR)
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
