"""How the synthesized app grows with its endpoints: the prod environment with N generated endpoints.

Synthesizes the real app (infra/application.py, cdk-nag included) for each count and measures what
CloudFormation and Lambda limit: resources per stack (500), template size (1 MB), each function's
environment (4 KB). Writes bench/results/scale.csv; prints the targets of bench/README.md, met or not.
A count that cannot synthesize is a row that says why.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import App

from infra.application import build_app
from infra.config import ENVIRONMENTS_DIR

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

RESULTS = Path(__file__).parent / "results" / "scale.csv"
COLUMNS = (
    "endpoints",
    "stacks",
    "max_resources_per_stack",
    "max_template_bytes",
    "max_lambda_env_bytes",
    "synth_seconds",
    "error",
)
COUNTS = (1, 10, 50, 100)
QUICK_COUNTS = (1, 10)
BASE_ENVIRONMENT = "prod"
# The targets (issue: many model families), checked at TARGET_ENDPOINTS.
TARGET_ENDPOINTS = 50
MAX_RESOURCES = 400
MAX_TEMPLATE_BYTES = 800_000
MAX_ENV_BYTES = 2048
MAX_SYNTH_SECONDS = 90.0
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ScaleRow:
    endpoints: int
    stacks: int
    max_resources_per_stack: int
    max_template_bytes: int
    max_lambda_env_bytes: int
    synth_seconds: float
    error: str = ""

    def as_csv(self) -> dict[str, str]:
        return {
            "endpoints": str(self.endpoints),
            "stacks": str(self.stacks),
            "max_resources_per_stack": str(self.max_resources_per_stack),
            "max_template_bytes": str(self.max_template_bytes),
            "max_lambda_env_bytes": str(self.max_lambda_env_bytes),
            "synth_seconds": f"{self.synth_seconds:.1f}",
            "error": self.error,
        }


def generated_config(count: int, base: str = BASE_ENVIRONMENT) -> dict[str, Any]:
    """The base environment with its first endpoint copied ``count`` times, each its own family."""
    raw: dict[str, Any] = yaml.safe_load((ENVIRONMENTS_DIR / f"{base}.yaml").read_text())
    template = next(endpoint for endpoint in raw["endpoints"] if not endpoint.get("shadow"))
    endpoints = []
    for index in range(count):
        endpoint = copy.deepcopy(template)
        endpoint["name"] = f"model{index:03d}"
        endpoint["model_family"] = f"family{index:03d}"
        endpoints.append(endpoint)
    return {**raw, "endpoints": endpoints}


def synthesize(count: int, workdir: Path, config: dict[str, Any] | None = None) -> ScaleRow:
    """The app with `count` generated endpoints, or with `config` (a generated one, changed) instead."""
    config_dir = workdir / "environments"
    config_dir.mkdir(parents=True, exist_ok=True)
    raw = generated_config(count) if config is None else config
    (config_dir / f"{BASE_ENVIRONMENT}.yaml").write_text(yaml.safe_dump(raw))
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    outdir = workdir / "cdk.out"
    started = time.perf_counter()
    try:
        app = App(outdir=str(outdir), context={**context, "env": BASE_ENVIRONMENT})
        build_app(app, config_dir=config_dir)
        app.synth()
    except Exception as error:  # jsii reports CDK's validation errors as RuntimeError
        message = str(error).splitlines()[0][:200]
        return ScaleRow(count, 0, 0, 0, 0, time.perf_counter() - started, error=message)
    seconds = time.perf_counter() - started
    return measure(count, outdir, seconds)


def measure(count: int, outdir: Path, seconds: float) -> ScaleRow:
    templates = sorted(outdir.glob("*.template.json"))
    resources, sizes, environments = [], [], [0]
    for path in templates:
        body = json.loads(path.read_text())
        sizes.append(path.stat().st_size)
        resources.append(len(body.get("Resources", {})))
        for resource in body.get("Resources", {}).values():
            if resource.get("Type") == "AWS::Lambda::Function":
                variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
                # Lambda counts the keys and values; tokens are counted as the template writes them.
                environments.append(len(json.dumps(variables, separators=(",", ":"))))
    return ScaleRow(count, len(templates), max(resources), max(sizes), max(environments), seconds)


def targets(rows: Sequence[ScaleRow]) -> list[tuple[str, bool]]:
    by_count = {row.endpoints: row for row in rows}
    checks: list[tuple[str, bool]] = []
    at_target = by_count.get(TARGET_ENDPOINTS)
    one = by_count.get(1)
    if at_target is None:
        return checks
    synthesized = not at_target.error
    checks.append((f"{TARGET_ENDPOINTS} endpoints synthesize", synthesized))
    checks.append(
        (
            f"every stack <= {MAX_RESOURCES} resources",
            synthesized and at_target.max_resources_per_stack <= MAX_RESOURCES,
        )
    )
    checks.append(
        (
            f"every template <= {MAX_TEMPLATE_BYTES} bytes",
            synthesized and at_target.max_template_bytes <= MAX_TEMPLATE_BYTES,
        )
    )
    same = one is not None and at_target.max_lambda_env_bytes == one.max_lambda_env_bytes
    checks.append(
        (
            f"every function's environment <= {MAX_ENV_BYTES} bytes and as for 1 endpoint",
            synthesized and at_target.max_lambda_env_bytes <= MAX_ENV_BYTES and same,
        )
    )
    checks.append(
        (f"synth <= {MAX_SYNTH_SECONDS:.0f} s", synthesized and at_target.synth_seconds <= MAX_SYNTH_SECONDS)
    )
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_COUNTS} endpoints, no CSV")
    parser.add_argument("--counts", type=int, nargs="*", help="endpoint counts to synthesize")
    arguments = parser.parse_args(argv)
    counts = tuple(arguments.counts or (QUICK_COUNTS if arguments.quick else COUNTS))
    rows = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix=f"scale-{count}-") as workdir:
            row = synthesize(count, Path(workdir))
        rows.append(row)
        print(
            f"{row.endpoints:>4} endpoints: {row.stacks} stack(s), "
            f"<= {row.max_resources_per_stack} resources, <= {row.max_template_bytes} bytes, "
            f"env <= {row.max_lambda_env_bytes} bytes, "
            f"{row.synth_seconds:.1f} s {('FAILED: ' + row.error) if row.error else ''}",
            flush=True,
        )
    if not arguments.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(row.as_csv() for row in rows)
        print(f"wrote {RESULTS.relative_to(REPO_ROOT)}")
    for name, met in targets(rows):
        print(f"  target {'met    ' if met else 'MISSED '} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
