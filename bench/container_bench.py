"""Throughput and latency of the inference container, on loopback, with its own load generator.

    python -m bench.container_bench            # 5000 requests per scenario (about 10 s in all)
    python -m bench.container_bench --quick    # 300 per scenario (a few seconds)

Trains a small model (the `logistic` recipe), starts `serve` with 2 gunicorn workers on a free
127.0.0.1 port, and sends a fixed number of requests per scenario from a few client threads, each
with its own keep-alive connection (http.client), stopping early at a time cap. Prints requests
per second and latency p50/p99 and writes bench/results/container.csv.

The clients run on the same machine as the server, so the numbers are a lower bound for the
server alone; compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from containers.inference.local_server import LOOPBACK, LocalServer
from pipelines import churn_data, train
from pipelines.churn_data import CHURN_SCHEMA
from pipelines.train import TrainConfig

DEFAULT_OUT_DIR = Path(__file__).parent / "results"
CSV_COLUMNS = (
    "scenario",
    "records_per_request",
    "content_type",
    "clients",
    "server_workers",
    "requests",
    "errors",
    "duration_s",
    "requests_per_s",
    "records_per_s",
    "p50_ms",
    "p99_ms",
)
WARMUP_REQUESTS = 20
SERVER_WORKERS = 2


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    records: int
    content_type: str


SCENARIOS = (
    Scenario("single_json", 1, "application/json"),
    Scenario("batch100_json", 100, "application/json"),
    Scenario("batch100_csv", 100, "text/csv"),
)


@dataclass(slots=True)
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    duration_s: float = 0.0


def request_body(scenario: Scenario, seed: int = 11) -> bytes:
    rows = churn_data.synthetic_churn(scenario.records, seed).features
    if scenario.content_type == "text/csv":
        return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()
    records = [dict(zip(CHURN_SCHEMA.names, map(float, row), strict=True)) for row in rows]
    return json.dumps(records[0] if scenario.records == 1 else {"instances": records}).encode()


class LoadGenerator:
    """``requests`` POSTs shared by ``clients`` threads; each thread keeps one connection open."""

    def __init__(self, port: int, body: bytes, content_type: str, clients: int) -> None:
        self.port = port
        self.body = body
        self.headers = {"Content-Type": content_type, "Accept": "application/json"}
        self.clients = clients
        self._lock = threading.Lock()
        self._remaining = 0
        self._deadline = 0.0

    def run(self, requests: int, time_cap_s: float) -> LoadResult:
        result = LoadResult()
        self._remaining, self._deadline = requests, time.monotonic() + time_cap_s
        threads = [threading.Thread(target=self._client, args=(result,)) for _ in range(self.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.duration_s = time.perf_counter() - started
        return result

    def _take(self) -> bool:
        with self._lock:
            if self._remaining <= 0 or time.monotonic() > self._deadline:
                return False
            self._remaining -= 1
            return True

    def _client(self, result: LoadResult) -> None:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        try:
            while self._take():
                started = time.perf_counter()
                ok = self._send(connection)
                elapsed = time.perf_counter() - started
                with self._lock:
                    if ok:
                        result.latencies_s.append(elapsed)
                    else:
                        result.errors += 1
        finally:
            connection.close()

    def _send(self, connection: http.client.HTTPConnection) -> bool:
        try:
            connection.request("POST", "/invocations", body=self.body, headers=self.headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # the next request reconnects
            return False
        return response.status == 200


def summarize(scenario: Scenario, clients: int, result: LoadResult) -> dict[str, object]:
    done = len(result.latencies_s)
    latencies_ms = np.asarray(result.latencies_s) * 1000.0
    per_s = done / result.duration_s if result.duration_s else 0.0
    return {
        "scenario": scenario.name,
        "records_per_request": scenario.records,
        "content_type": scenario.content_type,
        "clients": clients,
        "server_workers": SERVER_WORKERS,
        "requests": done,
        "errors": result.errors,
        "duration_s": round(result.duration_s, 2),
        "requests_per_s": round(per_s, 1),
        "records_per_s": round(per_s * scenario.records, 1),
        "p50_ms": round(float(np.percentile(latencies_ms, 50)), 2) if done else float("nan"),
        "p99_ms": round(float(np.percentile(latencies_ms, 99)), 2) if done else float("nan"),
    }


def check_answer(port: int, scenario: Scenario, body: bytes) -> None:
    """One request checked in full, so that the timed ones are known to do the real work."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": scenario.content_type})
        answer = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    if len(answer.get("predictions", [])) != scenario.records:
        raise RuntimeError(f"{scenario.name}: unexpected answer {str(answer)[:200]}")


def run_bench(requests: int, clients: int, time_cap_s: float) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="container-bench-") as scratch:
        model_dir = Path(scratch) / "model"
        train.train(TrainConfig("logistic", seed=1, samples=2000, model_version="bench"), model_dir)
        with LocalServer(model_dir, workers=SERVER_WORKERS, log_path=Path(scratch) / "server.log") as server:
            for scenario in SCENARIOS:
                body = request_body(scenario)
                check_answer(server.port, scenario, body)
                load = LoadGenerator(server.port, body, scenario.content_type, clients)
                load.run(WARMUP_REQUESTS, time_cap_s)
                rows.append(summarize(scenario, clients, load.run(requests, time_cap_s)))
    return rows


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows: list[dict[str, object]]) -> str:
    header = (
        f"{'scenario':<15}{'requests':>9}{'errors':>7}{'req/s':>9}{'records/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['scenario']!s:<15}{row['requests']!s:>9}{row['errors']!s:>7}{row['requests_per_s']!s:>9}"
            f"{row['records_per_s']!s:>11}{row['p50_ms']!s:>9}{row['p99_ms']!s:>9}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests (seconds)")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--time-cap", type=float, default=None, help="seconds per scenario at most")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    requests = 300 if args.quick else 5000
    time_cap_s = args.time_cap or (10.0 if args.quick else 60.0)
    rows = run_bench(requests, args.clients, time_cap_s)
    write_csv(rows, args.out_dir / "container.csv")
    print(format_table(rows))
    print(
        f"\n{SERVER_WORKERS} gunicorn workers, {args.clients} client threads on the same machine "
        f"({os.cpu_count()} CPUs); wrote {args.out_dir / 'container.csv'}"
    )


if __name__ == "__main__":
    main()
