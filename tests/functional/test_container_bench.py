"""The container bench in quick mode: it serves real requests without errors and writes its CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from bench import container_bench


def test_quick_bench_measures_every_scenario_without_errors(tmp_path: Path) -> None:
    container_bench.main(["--quick", "--out-dir", str(tmp_path)])
    with (tmp_path / "container.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["scenario"] for row in rows] == [s.name for s in container_bench.SCENARIOS]
    for row in rows:
        assert (row["requests"], row["errors"]) == ("300", "0")
        assert float(row["requests_per_s"]) > 0
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"])
