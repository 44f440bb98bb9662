"""`make demo`: the whole rollout on a laptop, told as a story, on the local cloud.

    python -m localcloud.demo.rollout --cdk-out cdk.out [--report demo-report.html]

The acts: README.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from lambdas.flags import EndpointVariants, FlagSet, KillSwitch
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.ledger import EntryKind, Ledger, LedgerEntry
from lambdas.rollout.report import REPORT_PREFIX
from localcloud.awslambda.clock import AcceleratedClock
from localcloud.cloud import LocalCloud
from localcloud.cloudformation.models import DeployedStack
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.demo.sampling import VariantWindows, weights_of
from localcloud.demo.story import (
    DEFAULT_RATE,
    POLL_SECONDS,
    WARM_UP_DEADLINE_SECONDS,
    WARM_UP_REQUESTS,
    WARM_UP_SECONDS,
    DemoError,
    Story,
    Version,
    command_line,
    endpoint_settings,
    tell,
)
from localcloud.demo.traffic import Served, Traffic, api_clients

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-inference:0.1.0"
# A rollout deploys its candidate, starts its inference server and asks it the golden cases before any
# traffic step: on a busy 2-core machine that and the bakes take minutes.
ROLLOUT_DEADLINE_SECONDS = 360.0
KILL_SWITCH_DEADLINE_SECONDS = 120.0
# Requests the challenger serves in the kill-switch act before the switch is pulled.
KILL_SWITCH_AFTER_REQUESTS = 20
# The users' pace in each environment. As fast as answers came, they took whatever CPU the machine had
# (about 60 a second here with one environment's users paused) and starved what ran beside the story.
USERS_REQUESTS_PER_SECOND = 40.0
# Each sample looks back over this much of the emulated clock.
SAMPLE_WINDOW_SECONDS = 120


def run(cdk_out: Path, report: Path, *, rate: float = DEFAULT_RATE) -> Story:
    """The whole story on a fresh local cloud; the report written to `report`."""
    return tell(Demo, cdk_out, report, rate=rate)


class Demo:
    """The story's acts in one environment: `stack` (an environment's stacks seen as one; the cloud's
    named stack by default)."""

    started_by = "the approval"  # how `approve` starts a rollout, as the story tells it

    def __init__(
        self,
        cloud: LocalCloud,
        clock: AcceleratedClock,
        story: Story,
        versions: dict[str, Version],
        *,
        stack: DeployedStack | None = None,
    ):
        self.cloud = cloud
        self.clock = clock
        self.story = story
        self.versions = versions
        self.stack = cloud.stack if stack is None else stack
        self.watched = "v2"  # the rollout whose first look the operator's `mlrollout status` shows
        self._status_shown = False
        self.settings = endpoint_settings(self.stack, "churn")
        self.endpoint_name = str(self.settings["endpoint_name"])
        self.group = str(self.settings["model_package_group"])
        self.packages: dict[str, str] = {}
        self.sagemaker = cloud.client("sagemaker")
        self.states = cloud.client("stepfunctions")
        self._sampling = threading.Event()

    def run(self) -> None:
        story = self.story
        self.publish()
        traffic = self.users().start()
        self.traffic = traffic
        evaluator = AlarmEvaluator(clock=self.clock.now)
        try:
            self._acts(evaluator)
        finally:
            traffic.stop()
        for transition in evaluator.transitions:
            if (transition.previous_state, transition.state) == ("INSUFFICIENT_DATA", "OK"):
                continue  # every alarm's first evaluation, not news
            when = story.since_start(self.clock, transition.timestamp.timestamp())
            text = f"{transition.alarm_name}: {transition.previous_state} -> {transition.state}"
            story.decide("-", "alarm", text, when)
        self.summary()

    def users(self) -> Traffic:
        """The simulated users of this environment's serving API (not started)."""
        return Traffic(
            lambda_client=lambda: boto3.client("lambda"),
            router=self._function("lambdas.handlers.router.handler"),
            feedback=self._function("lambdas.handlers.feedback.handler"),
            endpoint="churn",
            api_client=api_clients(self.cloud, self.stack.template.name),
            requests_per_second=USERS_REQUESTS_PER_SECOND,
        )

    def v1_serves_users(self) -> None:
        """Act 1 of every story: the simulated users on v1 alone for a while."""
        story, traffic = self.story, self.traffic
        story.say(f"act 1: v1 serves {traffic.users} simulated users through the router")
        time.sleep(WARM_UP_SECONDS)
        deadline = time.monotonic() + WARM_UP_DEADLINE_SECONDS
        while len(traffic.since(0)) < WARM_UP_REQUESTS and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        served = traffic.since(0)
        story.say(f"  {len(served)} requests served, {sum(s.status == 200 for s in served)} OK")
        self.say_failures(served)

    def say_failures(self, served: Sequence[Served]) -> None:
        """The commonest answers that were not OK, if any: a story that fails says why at once."""
        failed = Counter(f"{s.status} {s.reason or ''}".strip() for s in served if s.status != 200)
        for answer, count in failed.most_common(3):
            self.story.say(f"  not OK: {count} x {answer[:200]}")

    def _acts(self, evaluator: AlarmEvaluator) -> None:
        story = self.story
        with evaluator.running(interval_seconds=1.0), self._sampler():
            self.v1_serves_users()
            story.say("act 2: v2 is approved")
            self.rollout("v2", expect="promoted")
            story.say("act 3: v3 (deliberately slow) is approved")
            self.rollout("v3", expect="rolled_back")
            story.say("act 4: v4 is approved, and the kill switch is pulled during its first step")
            self.kill_switch_during("v4")

    # --- setup ----------------------------------------------------------------------------------------

    def publish(self) -> None:
        """v1 where the endpoint's bootstrap config points; v2.. as package versions with gate files."""
        from pipelines.gate_files import write_gate_files  # noqa: PLC0415 - the evaluation step

        s3 = self.cloud.client("s3")
        bootstrap = self.upload_bootstrap()
        artifacts = self.stack.bucket_names
        [registry] = [name for logical, name in artifacts.items() if "RegistryArtifacts" in logical]
        for name, version in self.versions.items():
            if name == "v1":
                continue
            folder = f"models/{self.group}/{name}"
            s3.upload_file(str(version.tarball), registry, f"{folder}/model.tar.gz")
            gates = write_gate_files(version.model_dir, version.model_dir.parent / f"{name}-gates")
            for file_name, path in gates.items():
                s3.upload_file(str(path), registry, f"{folder}/gates/{file_name}")
            created = self.sagemaker.create_model_package(
                ModelPackageGroupName=self.group,
                ModelPackageDescription=f"{name}: {version.recipe} (seed {version.seed})",
                InferenceSpecification={
                    "Containers": [
                        {"Image": IMAGE, "ModelDataUrl": f"s3://{registry}/{folder}/model.tar.gz"}
                    ],
                    "SupportedContentTypes": ["application/json", "text/csv"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
                ModelApprovalStatus="PendingManualApproval",
                CustomerMetadataProperties={"model_version": name, "recipe": version.recipe},
            )
            self.packages[name] = str(created["ModelPackageArn"])
        registered = ", ".join(self.packages) or "nothing yet"
        self.story.say(
            f"  v1 serves from {bootstrap}; registered in {self.group}, pending approval: {registered}"
        )

    def upload_bootstrap(self) -> str:
        """v1 where the endpoint's bootstrap config points (the first deploy's artifact); its S3 URL."""
        s3 = self.cloud.client("s3")
        bootstrap = self._bootstrap_url()
        bucket, key = bootstrap.removeprefix("s3://").split("/", 1)
        s3.create_bucket(Bucket=bucket)
        s3.upload_file(str(self.versions["v1"].tarball), bucket, key)
        return bootstrap

    def _bootstrap_url(self) -> str:
        model = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)["EndpointConfigName"]
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=model)
        model_name = config["ProductionVariants"][0]["ModelName"]
        model = self.sagemaker.describe_model(ModelName=model_name)
        return str(model["PrimaryContainer"]["ModelDataUrl"])

    def _router_variable(self, name: str) -> str:
        """A variable of the router's environment, as the template sets it."""
        for resource in self.stack.template.resources.values():
            properties = resource.get("Properties", {})
            if properties.get("Handler") == "lambdas.handlers.router.handler":
                return str(properties["Environment"]["Variables"][name])
        raise DemoError("no router function in the template")

    def _flags_cache(self) -> str:
        """The router's flags cache: Powertools' parameter cache, timed on `datetime.now()`, so real seconds
        (the workers' `time.time` and `time.monotonic` run faster, not `datetime.now()`)."""
        return f"the router caches the flags {self._router_variable('FLAGS_TTL_SECONDS')} s, real seconds"

    def _function(self, handler: str) -> str:
        for logical_id, resource in self.stack.template.resources.items():
            if resource.get("Properties", {}).get("Handler") == handler:
                return str(self.stack.function_names[logical_id])
        raise DemoError(f"no function with handler {handler}")

    # --- the acts -------------------------------------------------------------------------------------

    def approve(self, name: str) -> str:
        """Approve the package; the rule starts its rollout. The new execution's ARN."""
        before = {e["executionArn"] for e in self._executions()}
        self.sagemaker.update_model_package(
            ModelPackageArn=self.packages[name], ModelApprovalStatus="Approved"
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = [e for e in self._executions() if e["executionArn"] not in before]
            if started:
                return str(started[0]["executionArn"])
            time.sleep(POLL_SECONDS)
        raise DemoError(f"no rollout started after approving {name}")

    def rollout(self, name: str, expect: str) -> dict[str, Any]:
        began = self.story.at()
        execution = self.approve(name)
        self.story.say(f"  rollout {execution.rsplit(':', 1)[1]} started by {self.started_by}")
        ended = self.follow(execution, name)
        return self._record(name, execution, began, ended, expect)

    def follow(self, execution: str, name: str) -> dict[str, Any]:
        """Print the states as they are entered, with the weights; the execution once it has ended."""
        seen = 0
        deadline = time.monotonic() + ROLLOUT_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            entered = self._states_entered(execution)
            for state in entered[seen:]:
                if state in (
                    "Bake",
                    "Wait for the endpoint",
                    "Wait for the promotion",
                    "Wait for the rollback",
                ):
                    continue
                self._tell_state(name, state)
                if state == "Ask the judge" and name == self.watched and not self._status_shown:
                    self._status_shown = True
                    self.show_status()
            seen = len(entered)
            described = self.states.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(POLL_SECONDS)
        raise DemoError(f"rollout of {name} still running after {ROLLOUT_DEADLINE_SECONDS} s")

    def show_status(self) -> None:
        """What an operator sees mid-rollout: `mlrollout status --watch` in a process of its own (this
        interpreter, the story's clock), against this local cloud (AWS_ENDPOINT_URL, the emulator's
        credentials), for two refreshes."""
        environment = self.stack.template.name.removeprefix("MlRollout-")
        # On the story's clock, as the functions are: the ledger's times are emulated ones.
        on_clock = (
            "from localcloud.awslambda.clock_worker import install_clock; "
            f"install_clock({self.clock.variable()!r}); "
            "from mlrollout_cli.main import cli; cli()"
        )
        command = [
            sys.executable,
            "-c",
            on_clock,
            "--local",
            "--env",
            environment,
            "status",
            "churn",
            "--watch",
            "--interval",
            "1",
            "--count",
            "2",
        ]
        shown = " ".join(["mlrollout", *command[3:]])
        self.story.say(f"  $ {shown}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        for line in (done.stdout + done.stderr).splitlines():
            if line.strip():
                self.story.say(f"    {line.rstrip()}")
        self.story.operator_status, self.story.operator_status_exit = done.stdout, done.returncode
        if done.returncode != 0:
            self.story.say(f"  (mlrollout exited {done.returncode})")

    def _tell_state(self, name: str, state: str) -> None:
        self.story.say(f"  {name}: {state}  (weights {self._weights()})")

    def kill_switch_during(self, name: str) -> None:
        began = self.story.at()
        execution = self.approve(name)
        deadline = time.monotonic() + ROLLOUT_DEADLINE_SECONDS
        # The router caches the weights: wait until users really reach the challenger, so that the switch
        # has traffic to take away.
        approved = self._traffic_time(began)
        while (
            sum(s.variant == "challenger" for s in self.traffic.since(approved)) < KILL_SWITCH_AFTER_REQUESTS
        ):
            if time.monotonic() > deadline:
                raise DemoError(f"{name} never took traffic")
            time.sleep(POLL_SECONDS)
        self.story.say(f"  {name} serves users at {self._weights()}; deploying the kill switch ON")
        pulled = self.traffic.elapsed()
        deployment = self.deploy_kill_switch(on=True, reason="demo: on-call pulls the switch")
        completed = self._wait_for_flag_deployment(deployment)
        self.story.decide(
            name, "kill switch", f"deployed ON (complete {completed - pulled:.1f} s after start)"
        )
        last_challenger = self._wait_for_champion_only(pulled)
        # From the deployment completing (AppConfig serves the new flags) to the last request the
        # challenger served: the router's flags cache (FLAGS_TTL_SECONDS) and requests in flight.
        self.story.kill_switch_seconds = max(0.0, last_challenger - completed)
        self.story.decide(
            name,
            "kill switch",
            f"last request served by the challenger {self.story.kill_switch_seconds:.1f} s after the "
            f"deployment completed ({last_challenger - pulled:.1f} s after it started; "
            f"{self._flags_cache()})",
        )
        ended = self.follow_abort(execution, name)
        self._record(name, execution, began, ended, "rolled_back")
        self.deploy_kill_switch(on=False, reason=None)

    def follow_abort(self, execution: str, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + ROLLOUT_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            aborts = [e for e in self._executions() if str(e["name"]).startswith("abort-")]
            mine = [
                e
                for e in aborts
                if json.loads(self.states.describe_execution(executionArn=e["executionArn"])["input"])[
                    "abort"
                ]["rollout_id"]
                == execution
            ]
            if mine:
                self.story.say(f"  {name}: stopped by the abort rule; rolling back on {mine[0]['name']}")
                ended = self.follow(str(mine[0]["executionArn"]), name)
                return ended
            time.sleep(POLL_SECONDS)
        raise DemoError(f"the kill switch did not abort the rollout of {name}")

    def deploy_kill_switch(self, *, on: bool, reason: str | None) -> tuple[str, str, int]:
        """Deploy the flags with the kill switch `on`; (application, environment, deployment number)."""
        appconfig = self.cloud.client("appconfig")
        stack = self.stack
        ids = {
            kind: stack.only(f"AWS::AppConfig::{resource}").ref
            for kind, resource in (
                ("application", "Application"),
                ("environment", "Environment"),
                ("profile", "ConfigurationProfile"),
                ("deployment_strategy", "DeploymentStrategy"),
            )
        }
        variants = EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")
        flags = FlagSet.initial([variants])
        switched = flags.for_endpoint("churn").model_copy(
            update={"kill_switch": KillSwitch(on=on, reason=reason)}
        )
        document = FlagSet(endpoints=(switched,)).document()
        version = appconfig.create_hosted_configuration_version(
            ApplicationId=ids["application"],
            ConfigurationProfileId=ids["profile"],
            Content=json.dumps(document).encode(),
            ContentType="application/json",
        )
        started = appconfig.start_deployment(
            ApplicationId=ids["application"],
            EnvironmentId=ids["environment"],
            DeploymentStrategyId=ids["deployment_strategy"],
            ConfigurationProfileId=ids["profile"],
            ConfigurationVersion=str(version["VersionNumber"]),
        )
        return ids["application"], ids["environment"], int(started["DeploymentNumber"])

    def _wait_for_flag_deployment(self, deployment: tuple[str, str, int]) -> float:
        """When (real seconds of traffic) the flags deployment reached COMPLETE."""
        application, environment, number = deployment
        appconfig = self.cloud.client("appconfig")
        deadline = time.monotonic() + KILL_SWITCH_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            described = appconfig.get_deployment(
                ApplicationId=application, EnvironmentId=environment, DeploymentNumber=number
            )
            if described["State"] == "COMPLETE":
                return self.traffic.elapsed()
            if described["State"] in ("ROLLED_BACK", "REVERTED"):
                raise DemoError(f"the kill switch's deployment ended {described['State']}")
            time.sleep(POLL_SECONDS)
        raise DemoError("the kill switch's deployment did not complete")

    def _wait_for_champion_only(self, pulled: float) -> float:
        """When the last request went to the challenger after the switch (real seconds of traffic)."""
        deadline = time.monotonic() + KILL_SWITCH_DEADLINE_SECONDS
        quiet_for = 5.0
        while time.monotonic() < deadline:
            after = self.traffic.since(pulled)
            challenger = [s.at for s in after if s.variant == "challenger"]
            last = max(challenger, default=pulled)
            if self.traffic.elapsed() - last > quiet_for and after:
                return last
            time.sleep(POLL_SECONDS)
        raise DemoError("users still reach the challenger after the kill switch")

    # --- evidence -------------------------------------------------------------------------------------

    def _record(
        self, name: str, execution: str, began: float, ended: dict[str, Any], expect: str
    ) -> dict[str, Any]:
        entries = self.ledger(execution)
        outcome = next((e.payload for e in reversed(entries) if e.kind is EntryKind.OUTCOME), {})
        for entry in entries:
            self._decision_of(name, entry)
        challenger = [s for s in self.traffic.since(self._traffic_time(began)) if s.variant == "challenger"]
        costs = [
            e.payload["cost"] for e in entries if e.kind is EntryKind.JUDGE_VERDICT and "cost" in e.payload
        ]
        record = {
            "version": name,
            "execution": execution,
            "status": ended["status"],
            "outcome": outcome.get("status", "-"),
            "reason": outcome.get("reason", ""),
            "steps": sum(1 for e in entries if e.kind is EntryKind.JUDGE_VERDICT),
            "challenger_requests": len(challenger),
            "challenger_users": len({s.user for s in challenger}),
            "seconds": round(self.story.at() - began, 1),
            "started": round(began, 1),
            # The cost guardrail's last figures (lambdas/rollout/guardrails.py), or why there are none.
            "cost": costs[-1] if costs else {},
            "steps_percent": sorted(
                {
                    float(e.payload["challenger_percent"])  # type: ignore[arg-type]
                    for e in entries
                    if e.kind is EntryKind.JUDGE_VERDICT
                }
            ),
        }
        self.story.rollouts.append(record)
        page = self._rollout_report(execution)
        if page is not None:
            self.story.rollout_reports[name] = page
        verdict = "as expected" if record["outcome"] == expect else f"EXPECTED {expect}"
        self.story.say(
            f"  {name}: {record['outcome']} ({verdict}) after {record['seconds']} s; the challenger served "
            f"{record['challenger_requests']} requests to {record['challenger_users']} users"
        )
        if record["outcome"] != expect:
            raise DemoError(f"{name} ended {record['outcome']}, expected {expect}: {record['reason']}")
        return record

    def _rollout_report(self, execution: str) -> str | None:
        """The report the rollout's promote or rollback function wrote to the registry's bucket."""
        s3 = self.cloud.client("s3")
        [registry] = [n for logical, n in self.stack.bucket_names.items() if "RegistryArtifacts" in logical]
        name = execution.rsplit(":", 1)[-1]
        listed = s3.list_objects_v2(Bucket=registry, Prefix=REPORT_PREFIX).get("Contents", [])
        keys = [str(o["Key"]) for o in listed if str(o["Key"]).endswith(f"/{name}.html")]
        if not keys:
            self.story.say(f"  no report of {name} in the registry's bucket")
            return None
        body: bytes = s3.get_object(Bucket=registry, Key=keys[0])["Body"].read()
        return body.decode()

    def _decision_of(self, name: str, entry: LedgerEntry) -> None:
        payload = entry.payload
        at = self.story.since_start(self.clock, entry.recorded_at)
        if entry.kind is EntryKind.GATE_RESULT:
            self.story.decide(name, "gate", f"{payload.get('gate')}: {payload.get('status')}", at)
        elif entry.kind is EntryKind.JUDGE_VERDICT:
            text = (
                f"{payload.get('challenger_percent')} %: {payload.get('verdict')} -> {payload.get('action')}"
            )
            cost = payload.get("cost")
            if isinstance(cost, dict) and "increase" in cost:
                text += (
                    f"; cost per 1,000 predictions ${cost.get('challenger_cost_per_1000')} against "
                    f"${cost.get('champion_cost_per_1000')} ({float(str(cost['increase'])):+.0%})"
                )
            self.story.decide(name, "verdict", text, at)
        elif entry.kind is EntryKind.OUTCOME:
            self.story.decide(name, str(payload.get("status")), str(payload.get("reason")), at)
        elif entry.kind is EntryKind.DEPLOYMENT and payload.get("action") == "set_weights":
            self.story.decide(name, "traffic", f"challenger at {payload.get('challenger_percent')} %", at)

    def ledger(self, rollout_id: str) -> list[LedgerEntry]:
        [table] = [name for logical, name in self.stack.table_names.items() if "Ledger" in logical]
        return Ledger(DynamoDBLedgerStore(client=boto3.client("dynamodb"), table_name=table)).entries(
            rollout_id
        )

    def summary(self) -> None:
        self.story.say("summary")
        served = self.traffic.since(0)
        self.story.requests = len(served)
        self.story.failed_requests = sum(s.status != 200 for s in served)
        self.story.say(
            f"  {len(served)} requests from {len({s.user for s in served})} users, "
            f"{sum(s.status != 200 for s in served)} not OK"
        )
        for record in self.story.rollouts:
            radius = f"{record['challenger_requests']} requests / {record['challenger_users']} users"
            self.story.say(
                f"  {record['version']}: {record['outcome']} in {record['seconds']} s, "
                f"{record['steps']} judged bakes, blast radius {radius}"
            )
        if self.story.kill_switch_seconds is not None:
            self.story.say(
                f"  kill switch: the challenger's last request {self.story.kill_switch_seconds:.1f} s "
                f"after the flags deployment completed (goal <= 15 s; {self._flags_cache()})"
            )

    # --- sampling -------------------------------------------------------------------------------------

    @contextmanager
    def _sampler(self) -> Iterator[None]:
        stop = threading.Event()

        def sample() -> None:
            windows = VariantWindows()
            sagemaker = boto3.client("sagemaker")
            while not stop.wait(1.0):
                try:
                    self.story.samples.append(self._sample(windows, sagemaker))
                except Exception as error:
                    self.story.say(f"  (sample skipped: {error})")

        thread = threading.Thread(target=sample, name="demo-sampler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def _sample(self, windows: VariantWindows, sagemaker: Any) -> dict[str, Any]:
        described = sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        weights = weights_of(described)
        end = datetime.fromtimestamp(self.clock.now(), UTC)
        start = datetime.fromtimestamp(self.clock.now() - SAMPLE_WINDOW_SECONDS, UTC)
        sample: dict[str, Any] = {"at": self.story.at(), "weights": weights}
        for variant in ("champion", "challenger"):
            sample[variant] = windows.window(self.endpoint_name, variant, start, end)
        return sample

    def _traffic_time(self, story_seconds: float) -> float:
        """A time of the story (seconds since its start) on the traffic's clock (since the users started)."""
        return story_seconds - (self.traffic.started - self.story.started)

    def _weights(self) -> dict[str, float]:
        return weights_of(self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name))

    def _executions(self) -> list[dict[str, Any]]:
        listed = self.states.list_executions(stateMachineArn=self.stack.state_machine_arn)
        return list(listed["executions"])

    def _states_entered(self, execution: str) -> list[str]:
        events = self.states.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        return [str(e["stateEnteredEventDetails"]["name"]) for e in events if "stateEnteredEventDetails" in e]


def main(argv: Sequence[str] | None = None) -> int:
    return command_line(argv, story=run, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
