"""`make demo`: the rollout's story in staging, and the release chain that carries it to production.

    python -m localcloud.demo.chain --cdk-out cdk.out.chain [--report demo-report.html]

The assembly of `cdk synth -c env=localstaging,local`: `localstaging` (staging) releases into `local`
(production, docs/release-chain.md). The acts are `localcloud.demo.rollout`'s, told in staging, with
simulated users in both environments; what staging promotes is offered to production, which registers
it with staging's evidence and rolls it out on its own; what staging rolls back never gets there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambdas.release.offer import SOURCE_ENVIRONMENT_KEY, SOURCE_PACKAGE_KEY
from localcloud.awslambda.clock import AcceleratedClock
from localcloud.cloud import LocalCloud
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.demo.rollout import ROLLOUT_DEADLINE_SECONDS, Demo
from localcloud.demo.story import (
    DEFAULT_RATE,
    POLL_SECONDS,
    WARM_UP_DEADLINE_SECONDS,
    WARM_UP_REQUESTS,
    DemoError,
    Story,
    Version,
    command_line,
    tell,
)

STAGING, PRODUCTION = "localstaging", "local"
STAGING_STACK, PRODUCTION_STACK = f"MlRollout-{STAGING}", f"MlRollout-{PRODUCTION}"
# The offer reaches production through the bus within seconds; registering copies the artifact.
RELEASE_DEADLINE_SECONDS = 120.0


def run(cdk_out: Path, report: Path, *, rate: float = DEFAULT_RATE) -> Story:
    """The story in staging and the chain to production on a fresh local cloud; the report to `report`."""
    return tell(
        ChainDemo,
        cdk_out,
        report,
        rate=rate,
        title="mlrollout on the local cloud: staging, then production",
        stacks=(STAGING_STACK, PRODUCTION_STACK),
        synth_hint=f"cdk synth -c env={STAGING},{PRODUCTION} -o {{cdk_out}}",
    )


def in_production(version: str) -> str:
    """A version's name in production's records (the story's and the report's)."""
    return f"{version} in production"


class ChainDemo(Demo):
    """The acts in staging; production, its users and its own rollouts beside them."""

    def __init__(
        self, cloud: LocalCloud, clock: AcceleratedClock, story: Story, versions: dict[str, Version]
    ):
        super().__init__(cloud, clock, story, versions, stack=cloud.stack_of(STAGING_STACK))
        self.production = Demo(cloud, clock, story, versions, stack=cloud.stack_of(PRODUCTION_STACK))

    def run(self) -> None:
        production = self.production
        bootstrap = production.upload_bootstrap()
        self.story.say(f"production ({PRODUCTION}): v1 serves from {bootstrap}; its registry is empty")
        production.traffic = production.users().start()
        try:
            super().run()
        finally:
            production.traffic.stop()

    def _acts(self, evaluator: AlarmEvaluator) -> None:
        story, staging_users, production_users = self.story, self.traffic, self.production.traffic
        with evaluator.running(interval_seconds=1.0), self._sampler():
            story.say(f"staging ({STAGING}) and production ({PRODUCTION}) each serve their own users")
            self.v1_serves_users()
            self.production_warmed_up()
            # One laptop serves one environment's users at a time: each pauses while the other rolls out.
            with production_users.paused():
                story.say("act 2: v2 is approved in staging (production's users pause)")
                self.rollout("v2", expect="promoted")
            with staging_users.paused():
                story.say(
                    "act 3: staging promoted v2, so it is offered to production, which rolls it out itself "
                    "(staging's users pause)"
                )
                self.released_to_production("v2")
            with production_users.paused():
                story.say("act 4: v3 (deliberately slow) is approved in staging")
                self.rollout("v3", expect="rolled_back")
                story.say(
                    "act 5: v4 is approved in staging, and the kill switch is pulled during its first step"
                )
                self.kill_switch_during("v4")
                story.say("act 6: what production took from staging")
                self.production_took_only(["v2"])

    # --- the chain ------------------------------------------------------------------------------------

    def production_warmed_up(self) -> None:
        """Production's champion has served as many requests as staging's before its first rollout (its
        drift gate judges the champion's captured requests)."""
        users = self.production.traffic
        self._until(
            "warm-up of production's users",
            lambda: len(users.since(0)) >= WARM_UP_REQUESTS,
            WARM_UP_DEADLINE_SECONDS,
        )
        served = users.since(0)
        self.story.say(
            f"  production: {len(served)} requests served, {sum(s.status == 200 for s in served)} OK"
        )
        self.say_failures(served)

    def released_to_production(self, name: str) -> None:
        """Follow the offer of staging's package through production's release workflow, then production's
        own rollout of the package it registered, to its end (promoted, as in staging)."""
        production = self.production
        source = self.packages[name]
        release = self._until(
            f"production's release of {name}",
            lambda: self._runs(production.stack.state_machine_of("Release"), source),
            RELEASE_DEADLINE_SECONDS,
        )[0]
        self.story.say(f"  {name}: offered to production; release {release['name']} started by the offer")
        ended = production.follow(str(release["executionArn"]), in_production(name))
        if ended["status"] != "SUCCEEDED":
            raise DemoError(f"production's release of {name} ended {ended['status']}: {ended.get('cause')}")
        [package] = [p for p in self._production_packages() if p["source"] == source]
        evidence = package["metadata"]
        self.story.decide(
            in_production(name),
            "release",
            f"registered {package['arn'].rsplit('/', 2)[-2]}/{package['arn'].rsplit('/', 1)[-1]} "
            f"({package['approval']}) with staging's evidence: outcome "
            f"{evidence.get(f'{STAGING}.rollout.outcome')}, "
            f"{len([k for k in evidence if k.startswith(f'{STAGING}.rollout.')])} entries",
        )
        # The approval starts production's rollout; the promote approves again, and that second start is
        # refused at once (already rolled out): the first one is the rollout.
        began = self.story.at()
        first = self._until(
            f"production's rollout of {name}",
            lambda: sorted(
                self._runs(production.stack.state_machine_arn, package["arn"]), key=lambda e: e["startDate"]
            ),
            RELEASE_DEADLINE_SECONDS,
        )[0]
        self.story.say(f"  {in_production(name)}: rollout {first['name']} started by the release's approval")
        ended = production.follow(str(first["executionArn"]), in_production(name))
        production._record(in_production(name), str(first["executionArn"]), began, ended, "promoted")

    def production_took_only(self, names: Sequence[str]) -> None:
        """Production's registry and release runs hold the named versions and nothing else of staging's."""
        production = self.production
        taken = self._production_packages()
        releases = production.states.list_executions(
            stateMachineArn=production.stack.state_machine_of("Release")
        )["executions"]
        by_source = {arn: name for name, arn in self.packages.items()}
        took = sorted(by_source.get(p["source"], p["source"]) for p in taken)
        self.story.say(
            f"  production's registry: {len(taken)} package(s), from staging's {', '.join(took) or 'none'}; "
            f"{len(releases)} release run(s)"
        )
        for name in self.packages:
            if name not in names:
                offered = self._runs(production.stack.state_machine_of("Release"), self.packages[name])
                self.story.say(
                    f"  {name}: {self._outcome_of(name)} in staging, "
                    f"{'OFFERED' if offered else 'never offered'} to production"
                )
        self.story.released = {by_source.get(p["source"], p["source"]): p["arn"] for p in taken}
        if took != sorted(names) or len(releases) != len(names):
            raise DemoError(
                f"production took {took} in {len(releases)} release run(s), expected {list(names)}"
            )

    def summary(self) -> None:
        super().summary()
        served = self.production.traffic.since(0)
        self.story.say(
            f"  production: {len(served)} requests from {len({s.user for s in served})} users, "
            f"{sum(s.status != 200 for s in served)} not OK"
        )
        self.story.requests += len(served)
        self.story.failed_requests += sum(s.status != 200 for s in served)

    # --- reading the environments ----------------------------------------------------------------------

    def _production_packages(self) -> list[dict[str, Any]]:
        sagemaker = self.production.sagemaker
        group = str(self.production.settings["model_package_group"])
        packages = []
        for summary in sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]:
            described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metadata = dict(described.get("CustomerMetadataProperties", {}))
            if metadata.get(SOURCE_ENVIRONMENT_KEY) != STAGING:
                continue
            packages.append(
                {
                    "arn": str(described["ModelPackageArn"]),
                    "source": metadata.get(SOURCE_PACKAGE_KEY, ""),
                    "approval": described.get("ModelApprovalStatus"),
                    "metadata": metadata,
                }
            )
        return packages

    def _runs(self, machine: str, package: str) -> list[dict[str, Any]]:
        """The machine's executions whose input names the package."""
        listed = self.states.list_executions(stateMachineArn=machine)["executions"]
        return [
            dict(e)
            for e in listed
            if package in str(self.states.describe_execution(executionArn=e["executionArn"])["input"])
        ]

    def _outcome_of(self, name: str) -> str:
        records = [r for r in self.story.rollouts if r["version"] == name]
        return str(records[-1]["outcome"]) if records else "not rolled out"

    @staticmethod
    def _until(what: str, found: Any, deadline_seconds: float = ROLLOUT_DEADLINE_SECONDS) -> Any:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(POLL_SECONDS)
        raise DemoError(f"no {what} after {deadline_seconds:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    return command_line(argv, story=run, description=__doc__, cdk_out=Path("cdk.out.chain"))


if __name__ == "__main__":
    sys.exit(main())
