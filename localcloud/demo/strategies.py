"""`make demo STRATEGY=blue_green|shadow|ab_test`: the rollout's story under another strategy.

    python -m localcloud.demo.strategies --strategy blue_green --cdk-out cdk.out.local

The same local cloud, users and versions as `make demo` (`localcloud.demo.rollout`); each rollout is
started as `mlrollout start` starts one, with the strategy's overrides, instead of by the approval:
the local environment's endpoint is configured for canary. The acts: v1 serves the users; v2 is rolled out
under the strategy and promoted; the slow v3 is rolled out under it, and what the strategy makes of it
is told (blue_green: SageMaker's guardrails watch alarms only, so v3 is promoted unless its latency
goes over the endpoint's latency alarm, which rolls it back; shadow and ab_test: the judge compares v3
with the champion and rolls it back, or the challenger's latency alarm makes the abort rule roll it back
first, whichever comes first under the machine's load). No kill switch act. A shadow rollout puts the
candidate in the endpoint's shadow slot for the rollout (the challenger slot, idle at 0 %, makes way);
the endpoint keeps the shadow slot after it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambdas.rollout.ledger import EntryKind
from localcloud.awslambda.clock import AcceleratedClock
from localcloud.cloud import LocalCloud
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.demo.rollout import Demo
from localcloud.demo.story import ACCOUNT, DEFAULT_RATE, REGION, DemoError, Story, Version, tell
from localcloud.sagemaker import blue_green

# ab_test's one fixed split and its budget: requests per variant the simulated users serve in minutes.
AB_SPLIT_PERCENT = 50
AB_SAMPLE_BUDGET = 3000
OVERRIDES: dict[str, dict[str, Any]] = {
    "blue_green": {"strategy": "blue_green"},
    "shadow": {"strategy": "shadow"},
    "ab_test": {
        "strategy": "ab_test",
        "traffic_steps": [AB_SPLIT_PERCENT],
        "sample_budget": AB_SAMPLE_BUDGET,
    },
}
POLLING_STATES = frozenset({"Is the deployment done?", "Is the endpoint in service?"})
# What each strategy may make of the slow v3 (see the module's docstring): blue_green promotes it unless
# the machine's load pushes its latency over the endpoint's alarm, which rolls it back.
SLOW_VERSION_OUTCOMES: dict[str, tuple[str, ...]] = {
    "blue_green": ("promoted", "rolled_back"),
    "shadow": ("rolled_back",),
    "ab_test": ("rolled_back",),
}


class StrategyDemo(Demo):
    started_by = "hand"

    def __init__(
        self,
        cloud: LocalCloud,
        clock: AcceleratedClock,
        story: Story,
        versions: dict[str, Version],
        *,
        strategy: str,
    ) -> None:
        super().__init__(cloud, clock, story, versions)
        self.strategy = strategy
        self._told: dict[str, str] = {}

    def approve(self, name: str) -> str:
        """Start the rollout by hand with the strategy's overrides; the execution's ARN."""
        request = {"endpoint": "churn", "model_package_arn": self.packages[name]} | OVERRIDES[self.strategy]
        started = self.states.start_execution(
            stateMachineArn=self.cloud.stack.state_machine_arn,
            name=f"{name}-{self.strategy.replace('_', '-')}",
            input=json.dumps(request),
        )
        self.story.say(f"  started by hand: {json.dumps(OVERRIDES[self.strategy])}")
        return str(started["executionArn"])

    def rollout(self, name: str, expect: str | tuple[str, ...]) -> dict[str, Any]:
        """As `Demo.rollout`, ending in one of the `expect`ed outcomes; a rollout the abort rule stops (an
        alarm of the endpoint) is followed to the end of its rollback."""
        began = self.story.at()
        execution = self.approve(name)
        self.story.say(f"  rollout {execution.rsplit(':', 1)[1]} started by {self.started_by}")
        ended = self.follow(execution, name)
        if ended["status"] == "ABORTED":
            ended = self.follow_abort(execution, name)
        accepted = (expect,) if isinstance(expect, str) else expect
        recorded = [e.payload for e in self.ledger(execution) if e.kind is EntryKind.OUTCOME]
        outcome = str(recorded[-1].get("status")) if recorded else "-"
        return self._record(name, execution, began, ended, outcome if outcome in accepted else accepted[0])

    def _acts(self, evaluator: AlarmEvaluator) -> None:
        story = self.story
        with evaluator.running(interval_seconds=1.0), self._sampler():
            self.v1_serves_users()
            story.say(f"act 2: v2 is rolled out with strategy {self.strategy}")
            self.rollout("v2", expect="promoted")
            story.say(f"act 3: v3 (deliberately slow) is rolled out with strategy {self.strategy}")
            self.rollout("v3", expect=SLOW_VERSION_OUTCOMES[self.strategy])

    def _tell_state(self, name: str, state: str) -> None:
        # A blue/green deployment is polled every few seconds: told again only when its share moves.
        line = f"  {name}: {state}  (weights {self._weights()})"
        if state in POLLING_STATES and line == self._told.get(state):
            return
        self._told[state] = line
        self.story.say(line)

    def _weights(self) -> dict[str, float]:
        weights = super()._weights()
        fleet = blue_green.green_fleet(ACCOUNT, REGION, self.endpoint_name)
        if fleet is not None:  # a blue/green deployment: the new fleet's share of the traffic
            weights["new fleet %"] = fleet.percent
        return weights


def run(cdk_out: Path, report: Path, *, strategy: str, rate: float = DEFAULT_RATE) -> Story:
    if strategy not in OVERRIDES:
        raise DemoError(f"unknown strategy {strategy!r}: one of {', '.join(OVERRIDES)}")

    def acts(cloud: LocalCloud, clock: AcceleratedClock, story: Story, versions: dict[str, Version]) -> Demo:
        return StrategyDemo(cloud, clock, story, versions, strategy=strategy)

    return tell(acts, cdk_out, report, rate=rate, title=f"mlrollout on the local cloud: {strategy}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--strategy", required=True, choices=sorted(OVERRIDES))
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out.local"))
    parser.add_argument("--report", type=Path, default=Path("demo-report.html"))
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="emulated seconds per real second")
    args = parser.parse_args(argv)
    try:
        run(args.cdk_out, args.report, strategy=args.strategy, rate=args.rate)
    except DemoError as error:
        print(f"demo failed: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
