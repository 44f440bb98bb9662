"""Benchmark of the router Lambda: per-request overhead without the model, and cold import times.

    python -m bench.router_bench            # 20 000 timed requests per case, 5 cold imports per handler
    python -m bench.router_bench --quick    # 2 000 requests, 2 imports (smoke run, written to a temp dir)

(a) The router handler end to end in-process (event parse, flags from the Powertools cache, weights
from the adapter's cache, choice, InvokeEndpoint request and response JSON, store, EMF metrics) with
instant fakes for SageMaker, AppConfigData and DynamoDB, so only the router's own work is timed.
Also the choice alone (`Predictor.route`). Target: p99 <= 1 ms.

(b) Each handler module imported in a fresh interpreter (interpreter start-up excluded): from source
only (this checkout writes no bytecode), with bytecode cached (as the Lambda runtime's packages are),
and with the X-Ray SDK preloaded (it imports botocore too) to show the share of Powertools Tracer.
Target: <= 0.3 s.

Writes bench/results/router.csv.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lambdas.flags import EndpointVariants, FlagSet
from lambdas.serving.aws.flags import AppConfigFlagSource
from lambdas.serving.aws.invoker import SageMakerInvoker
from lambdas.serving.aws.weights import EndpointWeightSource
from lambdas.serving.inference import PredictionRequest, Predictor
from lambdas.serving.ports import InferenceNotFound, InferenceRecord, Outcome
from lambdas.serving.settings import EndpointSettings

DEFAULT_OUT = Path(__file__).parent / "results" / "router.csv"
# Quick runs never overwrite the committed results of a full run.
QUICK_OUT = Path(tempfile.gettempdir()) / "mlrollout-router-bench-quick" / "router.csv"
HANDLERS = ("lambdas.handlers.router", "lambdas.handlers.feedback", "lambdas.handlers.flag_validator")
REQUEST_TARGET_MS = 1.0
IMPORT_TARGET_MS = 300.0
CSV_COLUMNS = ("measure", "case", "samples", "p50_ms", "p99_ms", "mean_ms", "target_ms", "meets_target")
ENDPOINT_NAME = "mlrollout-bench-churn"
ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "router",
    "POWERTOOLS_METRICS_NAMESPACE": "mlrollout",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True, slots=True)
class Row:
    measure: str
    case: str
    samples: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    target_ms: float

    @property
    def meets_target(self) -> bool:
        return self.p99_ms <= self.target_ms


# --- instant fakes of the AWS side ---------------------------------------------------------------


class InstantRuntime:
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        records = len(json.loads(request["Body"])["instances"])
        body = json.dumps({"predictions": [1] * records}).encode()
        return {
            "Body": io.BytesIO(body),
            "InvokedProductionVariant": request.get("TargetVariant", "champion"),
        }


class InstantAppConfigData:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self._payload = json.dumps(values).encode()

    def start_configuration_session(self, **_: Any) -> dict[str, Any]:
        return {"InitialConfigurationToken": "token"}

    def get_latest_configuration(self, **_: Any) -> dict[str, Any]:
        return {"Configuration": io.BytesIO(self._payload), "NextPollConfigurationToken": "token"}


class InstantSageMaker:
    def describe_endpoint(self, *, EndpointName: str) -> Mapping[str, Any]:
        return {
            "EndpointName": EndpointName,
            "EndpointConfigName": "bench-deploy-0123456789",
            "ProductionVariants": [
                {"VariantName": "champion", "CurrentWeight": 75.0},
                {"VariantName": "challenger", "CurrentWeight": 25.0},
            ],
        }


class MemoryStore:
    def __init__(self) -> None:
        self.records: dict[str, InferenceRecord] = {}

    def save(self, record: InferenceRecord) -> None:
        self.records[record.inference_id] = record

    def load(self, inference_id: str, *, now: int) -> InferenceRecord:
        if inference_id not in self.records:
            raise InferenceNotFound(inference_id)
        return self.records[inference_id]

    def record_outcome(self, inference_id: str, outcome: Outcome, *, now: int) -> None:
        self.load(inference_id, now=now)


def bench_predictor(*, kill_switch: bool = False) -> Predictor:
    variants = EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")
    values = FlagSet.initial([variants]).values()
    values["churn-kill-switch"] = {"enabled": kill_switch}
    endpoint = EndpointSettings.model_validate(
        {
            "endpoint_name": ENDPOINT_NAME,
            "champion": "champion",
            "challenger": "challenger",
            "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
        }
    )
    flags = AppConfigFlagSource(
        application="mlrollout-bench",
        environment="bench",
        profile="flags",
        ttl_seconds=3600,
        catalog=[variants],
        client=cast("Any", InstantAppConfigData(values)),
    )
    return Predictor(
        endpoints={"churn": endpoint},
        flags=flags,
        weights=EndpointWeightSource(client=InstantSageMaker(), ttl_seconds=3600),
        invoker=SageMakerInvoker(cast("Any", InstantRuntime())),
        store=MemoryStore(),
        ttl_days=30,
    )


# --- (a) per-request overhead --------------------------------------------------------------------


def _event(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /endpoints/{endpoint}/invocations",
        "rawPath": "/endpoints/churn/invocations",
        "requestContext": {
            "requestId": "bench",
            "http": {"method": "POST"},
            "authorizer": {"iam": {"accountId": "123456789012", "userId": "AROABENCHCLIENT:bench"}},
        },
        "pathParameters": {"endpoint": "churn"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


@dataclass
class _Context:
    function_name: str = "mlrollout-bench-router"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mlrollout-bench-router"
    aws_request_id: str = "bench"


def _time(call: Callable[[int], object], samples: int, warmup: int) -> list[float]:
    for number in range(warmup):
        call(number)
    timings = []
    for number in range(samples):
        start = time.perf_counter_ns()
        call(number)
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return timings


def _row(measure: str, case: str, timings: Sequence[float], target_ms: float) -> Row:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Row(
        measure, case, len(ordered), statistics.median(ordered), p99, statistics.fmean(ordered), target_ms
    )


def request_overhead(samples: int) -> list[Row]:
    os.environ.update(ENVIRONMENT)
    from lambdas.handlers import router  # noqa: PLC0415 - imported after its environment is set

    features = {"tenure": 12, "plan": "pro", "monthly_spend": 42.5, "support_calls": 3}
    cases: dict[str, tuple[Predictor, Callable[[int], dict[str, Any]]]] = {
        "handler_sticky_user": (bench_predictor(), lambda n: {"features": features, "user_id": f"user-{n}"}),
        "handler_no_user": (bench_predictor(), lambda n: {"features": features}),
        "handler_kill_switch": (
            bench_predictor(kill_switch=True),
            lambda n: {"features": features, "user_id": f"user-{n}"},
        ),
        "handler_batch_of_50": (
            bench_predictor(),
            lambda n: {"features": [features] * 50, "user_id": f"u{n}"},
        ),
    }
    rows = []
    context = _Context()
    sink = io.StringIO()
    for case, (predictor, body) in cases.items():
        router.use(predictor)
        events = [_event(body(number)) for number in range(samples + samples // 10)]

        def serve(number: int, events: list[dict[str, Any]] = events) -> None:
            response = router.handler(events[number], context)
            if response["statusCode"] != 200:  # a refused request would time the wrong path
                raise RuntimeError(f"bench request refused: {response['body']}")

        with contextlib.redirect_stdout(sink):  # the EMF lines; their formatting is part of the time
            timings = _time(serve, samples, samples // 10)
        sink.seek(0)
        sink.truncate()
        rows.append(_row("request", case, timings, REQUEST_TARGET_MS))
    router.use(None)
    predictor = bench_predictor()
    requests = [
        PredictionRequest(features=features, user_id=f"user-{n}") for n in range(samples + samples // 10)
    ]
    timings = _time(lambda n: predictor.route("churn", requests[n]), samples, samples // 10)
    rows.append(_row("request", "route_choice_only", timings, REQUEST_TARGET_MS))
    return rows


# --- (b) cold imports ----------------------------------------------------------------------------

_IMPORT_PROBE = """
import importlib, sys, time
{preload}
start = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - start)
"""


@dataclass(frozen=True, slots=True)
class ImportSetting:
    label: str
    bytecode: bool
    preload_xray: bool


IMPORT_SETTINGS = (
    ImportSetting("source only, as in this checkout", bytecode=False, preload_xray=False),
    ImportSetting("bytecode cached, as a deployed runtime", bytecode=True, preload_xray=False),
    ImportSetting("bytecode cached, X-Ray SDK + botocore preloaded", bytecode=True, preload_xray=True),
)


def _import_seconds(module: str, setting: ImportSetting, pycache: Path) -> float:
    preload = "import aws_xray_sdk.core" if setting.preload_xray else ""
    environment = {**os.environ, **ENVIRONMENT}
    if setting.bytecode:
        # Bytecode goes to a scratch prefix, never into the checkout's folders.
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        environment["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment.pop("PYTHONPYCACHEPREFIX", None)
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE.format(preload=preload), module],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def cold_imports(repeats: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="router-bench-pycache-") as scratch:
        pycache = Path(scratch)
        for module in HANDLERS:
            for setting in IMPORT_SETTINGS:
                if setting.bytecode:
                    _import_seconds(module, setting, pycache)  # compiles once, untimed
                timings = [_import_seconds(module, setting, pycache) * 1000 for _ in range(repeats)]
                rows.append(_row("cold_import", f"{module} ({setting.label})", timings, IMPORT_TARGET_MS))
    return rows


def write_csv(rows: Sequence[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    row.measure,
                    row.case,
                    row.samples,
                    f"{row.p50_ms:.4f}",
                    f"{row.p99_ms:.4f}",
                    f"{row.mean_ms:.4f}",
                    f"{row.target_ms:g}",
                    row.meets_target,
                ]
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"the CSV (default {DEFAULT_OUT}; quick runs {QUICK_OUT})"
    )
    args = parser.parse_args(argv)
    samples, repeats = (2_000, 2) if args.quick else (20_000, 5)
    rows = request_overhead(samples) + cold_imports(repeats)
    out: Path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    write_csv(rows, out)
    print(f"{'measure':<12} {'case':<90} {'p50 ms':>9} {'p99 ms':>9} {'target':>7}  ok")
    for row in rows:
        print(
            f"{row.measure:<12} {row.case:<90} {row.p50_ms:>9.3f} {row.p99_ms:>9.3f} "
            f"{row.target_ms:>7g}  {'yes' if row.meets_target else 'NO'}"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
