"""What every story on the local cloud shares: the command line, the versions, the cloud, the report."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from localcloud.awslambda.clock import AcceleratedClock, shortened_waits
from localcloud.cloud import LocalCloud
from localcloud.cloudformation.template import Resolver, StackTemplate, parameter_values
from localcloud.events.delivery import deliver_events
from localcloud.sagemaker.control import emit_registry_events
from pipelines.train import TrainConfig, package_model, train

STACK = "MlRollout-local"


ACCOUNT = "123456789012"


REGION = "us-east-1"


POWERTOOLS_LAYER = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:1"


DEFAULT_RATE = 15.0


WARM_UP_SECONDS = 10.0
# Act 1 lasts until the champion has served this many requests too (up to WARM_UP_DEADLINE_SECONDS): the
# drift gate judges the first candidate on the champion's captured requests (200 at least by default), and
# a busy machine serves fewer in the warm-up's seconds.
WARM_UP_REQUESTS = 300
WARM_UP_DEADLINE_SECONDS = 120.0


POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Version:
    name: str
    recipe: str
    seed: int
    model_dir: Path
    tarball: Path
    metrics: dict[str, float]


@dataclass
class Story:
    """What happened, for the summary and the report."""

    started: float = field(default_factory=time.monotonic)
    wall_started: float = field(default_factory=time.time)
    decisions: list[tuple[float, str, str, str]] = field(default_factory=list)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    # Real seconds from the kill switch's deployment completing to the last request the challenger served.
    kill_switch_seconds: float | None = None
    # Every simulated request: how many, how many answered other than 200.
    requests: int = 0
    failed_requests: int = 0
    # The release chain (`localcloud.demo.chain`): each version the next environment took, its package there.
    released: dict[str, str] = field(default_factory=dict)
    # Retraining runs (`localcloud.demo.retraining`): execution, status, the package's metadata or the reason.
    retrainings: list[dict[str, Any]] = field(default_factory=list)
    # Version -> its rollout's own report, as the rollout's function wrote it to the registry's bucket.
    rollout_reports: dict[str, str] = field(default_factory=dict)
    # What `mlrollout status --watch` printed during v2's rollout, run as an operator would.
    operator_status: str = ""
    operator_status_exit: int | None = None

    def at(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        print(f"[{self.at():6.1f}s] {text}", flush=True)

    def decide(self, version: str, kind: str, text: str, at: float | None = None) -> None:
        """A decision at `at` (seconds since the start; now if None), listed in time order."""
        when = self.at() if at is None else max(0.0, at)
        self.decisions.append((when, version, kind, text))
        self.decisions.sort(key=lambda decision: decision[0])
        self.say(f"  {version} {kind} (at {when:.1f}s): {text}")

    def since_start(self, clock: AcceleratedClock, emulated_epoch: float) -> float:
        """Seconds since the start of the story for a time on the accelerated clock."""
        real = clock.real_origin + (emulated_epoch - clock.real_origin) / clock.rate
        return real - self.wall_started


def command_line(
    argv: Sequence[str] | None,
    *,
    story: Callable[..., Story],
    description: str | None,
    report: Path = Path("demo-report.html"),
    cdk_out: Path = Path("cdk.out"),
) -> int:
    """The command line of a story: its cdk.out, report and clock rate."""
    args = _parse_args(argv, report=report, cdk_out=cdk_out, description=description)
    try:
        story(args.cdk_out, args.report, rate=args.rate)
    except DemoError as error:
        print(f"demo failed: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


class Acts(Protocol):
    """A story's acts on an open cloud (`rollout.Demo` and the stories built on it)."""

    def run(self) -> None: ...


class DemoError(RuntimeError):
    """The story did not go as told: what happened instead."""


def tell(
    demo: Callable[[LocalCloud, AcceleratedClock, Story, dict[str, Version]], Acts],
    cdk_out: Path,
    report: Path,
    *,
    rate: float,
    plan: dict[str, tuple[str, int]] | None = None,
    title: str = "mlrollout on the local cloud",
    gap_fillers: Callable[[Path], Mapping[str, Callable[[LocalCloud], Any]]] | None = None,
    stacks: Sequence[str] = (STACK,),
    synth_hint: str = "cdk synth -c env=local -o {cdk_out}",
) -> Story:
    """A story on a fresh local cloud: the plan's versions trained in a scratch folder, the stack deployed
    (with `gap_fillers(scratch)` besides the demo's own), `demo` told, the report written. `stacks`: the
    environments' stacks the story needs; one is deployed with the stacks around it, several with every
    stack of the assembly (a release chain)."""
    for name in stacks:
        if not (cdk_out / f"{name}.template.json").exists():
            hint = synth_hint.format(cdk_out=cdk_out)
            raise DemoError(f"{cdk_out} has no {name} stack: synthesize with `{hint}`")
    story = Story()
    lambda_log = lambda_log_path(report)
    with (
        tempfile.TemporaryDirectory(prefix="mlrollout-demo-") as scratch,
        lambda_log.open("w", encoding="utf-8") as functions_log,
        internal_logs_to(functions_log),
    ):
        story.say(f"the Lambda functions' and the emulator's logs go to {lambda_log}")
        versions = train_versions(Path(scratch), story, plan)
        clock = AcceleratedClock(rate=rate)
        extra = gap_fillers(Path(scratch)) if gap_fillers else None
        with open_cloud(cdk_out, clock, functions_log, extra_gap_fillers=extra, stacks=stacks) as cloud:
            demo(cloud, clock, story, versions).run()
    write_report(story, report, title=title)
    write_rollout_reports(story, report)
    return story


def write_rollout_reports(story: Story, report: Path) -> list[Path]:
    """Each rollout's own report beside the story's: `<report>-<version>.html`."""
    written = []
    for version, page in story.rollout_reports.items():
        path = report.with_name(f"{report.stem}-{version.replace(' ', '-')}.html")
        path.write_text(page, encoding="utf-8")
        print(f"rollout report of {version}: {path.resolve()}", flush=True)
        written.append(path)
    return written


@contextmanager
def internal_logs_to(log: TextIO) -> Iterator[None]:
    """While open, what moto and the emulator log (e.g. moto's Step Functions interpreter on every failed
    state) goes to `log`, beside the functions' logs, instead of between the story's lines."""
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def lambda_log_path(report: Path) -> Path:
    """The functions' logs beside the report (they would be in CloudWatch Logs on AWS)."""
    return report.with_name(f"{report.stem}-lambda.log")


def _parse_args(
    argv: Sequence[str] | None, *, report: Path, cdk_out: Path, description: str | None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description.splitlines()[0] if description else None)
    parser.add_argument("--cdk-out", type=Path, default=cdk_out)
    parser.add_argument("--report", type=Path, default=report)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="emulated seconds per real second")
    return parser.parse_args(argv)


# The story's model versions: recipe and seed.
PLAN: dict[str, tuple[str, int]] = {
    "v1": ("logistic", 1),
    "v2": ("logistic", 2),
    "v3": ("heavy", 1),
    "v4": ("logistic", 3),
}


def train_versions(
    scratch: Path, story: Story, plan: dict[str, tuple[str, int]] | None = None
) -> dict[str, Version]:
    plan = PLAN if plan is None else plan
    story.say(
        "training " + ", ".join(f"{name} ({recipe}, seed {seed})" for name, (recipe, seed) in plan.items())
    )
    versions = {}
    for name, (recipe, seed) in plan.items():
        model_dir = scratch / name
        metadata = train(TrainConfig(recipe, seed=seed, model_version=name), model_dir)  # type: ignore[arg-type]
        tarball = package_model(model_dir, scratch / f"{name}.tar.gz")
        versions[name] = Version(name, recipe, seed, model_dir, tarball, dict(metadata["metrics"]))
        story.say(f"  {name}: {recipe}, held-out accuracy {metadata['metrics']['accuracy']:.3f}")
    return versions


@contextmanager
def open_cloud(
    cdk_out: Path,
    clock: AcceleratedClock,
    lambda_log: TextIO,
    extra_gap_fillers: Mapping[str, Callable[[LocalCloud], Any]] | None = None,
    stacks: Sequence[str] = (STACK,),
) -> Iterator[LocalCloud]:
    from localcloud.apigateway.server import serve_http_apis  # noqa: PLC0415
    from localcloud.appconfig.routing import emulate_appconfig  # noqa: PLC0415 - gap fillers in the order they open
    from localcloud.sagemaker.runtime import serve_endpoints  # noqa: PLC0415

    def definition(_logical_id: str, text: str) -> str:
        # The Wait states read the bake from the execution's input: one rate for every environment's.
        bakes = {
            endpoint_settings(_Settings(cloud.template_of(name), cloud.resolver_of(name)), "churn")[
                "rollout"
            ]["bake_minutes"]
            * 60
            for name in stacks
        }
        if len(bakes) != 1:
            raise DemoError(
                f"the environments' bakes differ ({sorted(bakes)} s): one clock cannot shorten them"
            )
        return shortened_waits(text, clock, {"$.bake_seconds": bakes.pop()})

    cloud = LocalCloud(
        cdk_out,
        stacks[0] if len(stacks) == 1 else None,
        clock=clock,
        definition_transform=definition,
        parameters={_layer_parameter(cdk_out, stacks[0]): POWERTOOLS_LAYER},
        lambda_log=lambda_log,
        enforce_iam=True,
        gap_fillers={
            "events": lambda _cloud: deliver_events(),
            "registry events": lambda _cloud: emit_registry_events(),
            "appconfig": lambda _cloud: emulate_appconfig(clock=clock.now),
            "runtime": lambda _cloud: serve_endpoints(clock=clock.now),
            "http api": serve_http_apis,
            **(extra_gap_fillers or {}),
        },
    )
    with cloud:
        yield cloud


def _layer_parameter(cdk_out: Path, stack: str) -> str:
    template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    [name] = [key for key in template.get("Parameters", {}) if "powertools" in key.lower()]
    return str(name)


class Deployed(Protocol):
    """A stack, or an app's stacks seen as one: its template and how its values resolve (a `LocalCloud`
    of one environment, or a `DeployedStack`)."""

    @property
    def template(self) -> StackTemplate: ...

    @property
    def resolver(self) -> Resolver: ...


@dataclass(frozen=True)
class _Settings:
    template: StackTemplate
    resolver: Resolver


def endpoint_settings(cloud: Deployed, endpoint: str) -> dict[str, Any]:
    """The endpoint's settings document, as the stack's parameter holds it (infra/endpoint_settings.py)."""
    names = [
        str(r.get("Properties", {}).get("Name", ""))
        for r in cloud.template.resources_of_type("AWS::SSM::Parameter").values()
    ]
    wanted = [name for name in names if name.endswith(f"/endpoints/{endpoint}")]
    for name, value in parameter_values(
        cloud.template, cloud.resolver, wanted[0] if wanted else "//"
    ).items():
        if name.endswith(f"/endpoints/{endpoint}"):
            document: dict[str, Any] = json.loads(value)
            return document
    raise DemoError(f"no settings parameter of endpoint {endpoint!r} in the template")


def write_report(story: Story, path: Path, title: str = "mlrollout on the local cloud") -> Path:
    from localcloud.demo.report import (  # noqa: PLC0415 - matplotlib only when reporting
        Decision,
        RolloutSummary,
        Sample,
        Timeline,
        VariantSeries,
        render_report,
    )

    variants = []
    for variant in ("champion", "challenger"):
        samples = [
            Sample(
                time_s=sample["at"],
                weight_percent=sample["weights"].get(variant),
                requests=sample[variant]["requests"],
                error_rate_percent=sample[variant]["error_rate"],
                latency_p99_ms=sample[variant]["latency_p99_ms"],
            )
            for sample in story.samples
        ]
        variants.append(VariantSeries.from_samples(variant, samples))
    timeline = Timeline(
        title=title,
        variants=variants,
        decisions=[Decision(at, version, kind, text) for at, version, kind, text in story.decisions],
        rollouts=[
            RolloutSummary(
                version=record["version"],
                outcome=record["outcome"],
                steps_percent=record["steps_percent"],
                judged_bakes=record["steps"],
                challenger_requests=record["challenger_requests"],
                challenger_users=record["challenger_users"],
                duration_s=record["seconds"],
                started_s=record["started"],
            )
            for record in story.rollouts
        ],
    )
    written = render_report(timeline, path)
    print(f"report: {written.resolve()}", flush=True)
    return written
