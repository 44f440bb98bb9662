"""The `mlrollout` command against the platform deployed on moto: the synthesized rollout workflow on
moto's executor with its real functions (tests/functional/rollout_cloud.py), the operations parameter
as the environment's stack writes it, and AppConfig from the local cloud's emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from lambdas.flags import EndpointVariants, FlagSet
from lambdas.shared.operations import OperationsDocument, operations_parameter_name
from localcloud.appconfig.routing import appconfig_gap_filler, emulate_appconfig
from localcloud.cloud import LocalCloud
from localcloud.cloudformation.template import parameter_values
from localcloud.events.delivery import deliver_events
from mlrollout_cli.errors import ExitCode
from mlrollout_cli.main import Context, cli
from tests.functional import rollout_support
from tests.functional.rollout_cloud import (
    STACK,
    Deployment,
    EmulatedAws,
    deploy,
)
from tests.functional.rollout_support import HEALTHY
from tests.infra.conftest import shared_outdir

PREFIX = "mlrollout-dev"
# Generous: the first rollout of a module starts every function's worker cold.
DEADLINE_SECONDS = 90.0


@pytest.fixture
def cloud(aws: EmulatedAws, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    for deployment in deploy(aws, request.node):
        name = operations_parameter_name(PREFIX)
        operations = parameter_values(aws.rollout.template, aws.rollout.resolver, name)
        boto3.client("ssm").put_parameter(Name=name, Value=operations[name], Type="String")
        yield deployment


def mlrollout(cloud: Deployment, *args: str) -> Result:
    """The command as a person runs it, on the workers' emulated clock."""
    context = Context("dev", None, "us-east-1", None, Console(), clock=cloud.aws.clock.now)
    runner = CliRunner(env={"COLUMNS": "240"})  # wide enough for a rollout's ARN on one line
    return runner.invoke(cli, ["--region", "us-east-1", *args], obj=context, catch_exceptions=False)


def printed(result: Result) -> Any:
    """What the command printed as JSON (on standard output: the functions' logs go to standard error)."""
    return json.loads(result.stdout)


def wait_until(condition: Any, what: str) -> None:
    rollout_support.wait_until(condition, what, DEADLINE_SECONDS)


def test_the_stack_tells_the_command_where_its_resources_are(cloud: Deployment) -> None:
    value = boto3.client("ssm").get_parameter(Name=operations_parameter_name(PREFIX))["Parameter"]["Value"]
    document = OperationsDocument.model_validate_json(value)
    assert document.state_machine_arn == cloud.machine_arn
    assert document.ledger_table == cloud.aws.rollout.table("LEDGER_TABLE")
    assert document.lock_table == cloud.aws.rollout.table("LOCK_TABLE")
    assert boto3.client("lambda").get_function(FunctionName=document.abort_function)


@pytest.mark.real_waits  # the watch starts while the rollout runs: with skipped waits it could be over
def test_a_rollout_started_from_the_command_is_watched_to_its_end_then_listed_and_shown(
    cloud: Deployment, tmp_path: Path
) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    started = mlrollout(cloud, "start", "churn", package, "--json")
    assert started.exit_code == 0, started.output
    rollout_id = printed(started)["rollout_id"]
    wait_until(lambda: cloud.lock_holder() == rollout_id, "the rollout's lock")

    watched = mlrollout(cloud, "status", "churn", "--watch", "--interval", "0.1", "--json")
    assert watched.exit_code == 0, f"{watched.output}\n{cloud.progress()}"
    looks = [json.loads(line) for line in watched.stdout.splitlines()]
    assert {look["rollout_id"] for look in looks} == {rollout_id}
    judged = [look for look in looks if look["metrics"]]
    assert judged, "no look saw the judge's numbers"
    assert {m["metric"] for m in judged[-1]["metrics"]} == {"errors", "latency", "conversion"}
    for metric in judged[-1]["metrics"]:
        assert metric["needed_samples"] > 0 and metric["harm_threshold"] is not None
    assert looks[-1]["outcome"] == "promoted"
    assert all(look["traffic_steps"] == [5, 25, 50, 100] for look in looks)

    listed = mlrollout(cloud, "history", "churn", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = printed(listed)
    assert (row["rollout_id"], row["outcome"], row["model_package_arn"]) == (rollout_id, "promoted", package)
    assert row["reached_percent"] == 50

    page = tmp_path / "rollout.html"
    reported = mlrollout(cloud, "report", rollout_id.rsplit(":", 1)[1], "--html", str(page))
    assert reported.exit_code == 0, reported.output
    text = page.read_text()
    for expected in (
        "Blast radius",
        "Challenger's share over time",
        "<svg",
        "golden_inputs",
        "promoted",
    ):
        assert expected in text, expected
    assert [f"<h3>{m}</h3>" in text for m in ("errors", "latency", "conversion")] == [True] * 3

    shown = mlrollout(cloud, "show", rollout_id.rsplit(":", 1)[1])
    assert shown.exit_code == 0, shown.output
    assert "rollout started" in shown.output and "outcome: promoted" in shown.output
    assert "judge says promote" in shown.output


@pytest.mark.real_waits
def test_status_shows_the_step_weights_and_the_judges_numbers_of_a_running_rollout(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    # An hour's bake (12 s here): the first step runs while the command looks.
    started = printed(mlrollout(cloud, "start", "churn", package, "--bake-minutes", "60", "--json"))
    rollout_id = started["rollout_id"]

    def judged() -> bool:
        result = mlrollout(cloud, "status", "churn", "--json")
        return result.exit_code == 0 and bool(printed(result)["metrics"])

    wait_until(lambda: cloud.lock_holder() == rollout_id, "the rollout's lock")

    wait_until(judged, "a verdict")
    shown = mlrollout(cloud, "status", "churn")
    assert shown.exit_code == 0, shown.output
    for expected in (rollout_id, "step 1", "champion 95 %, challenger 5 %", "conversion", "next look"):
        assert expected in shown.output, expected
    assert mlrollout(cloud, "abort", "churn", "--reason", "test over").exit_code == 0
    wait_until(lambda: cloud.lock_holder() is None, "the rollback")


@pytest.mark.real_waits
def test_an_abort_from_the_command_rolls_the_rollout_back_naming_who_and_why(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    started = mlrollout(cloud, "start", "churn", package, "--bake-minutes", "60", "--json")
    rollout_id = printed(started)["rollout_id"]
    wait_until(lambda: cloud.lock_holder() == rollout_id, "the rollout's lock")
    aborted = mlrollout(cloud, "abort", "churn", "--reason", "wrong feature version")
    assert aborted.exit_code == 0, aborted.output
    assert f"aborted {rollout_id}" in aborted.stdout
    wait_until(lambda: cloud.lock_holder() is None, "the rollback")
    [row] = printed(mlrollout(cloud, "history", "churn", "--json"))
    assert row["outcome"] == "rolled_back"
    assert "wrong feature version (by arn:aws:" in row["reason"]
    again = mlrollout(cloud, "abort", "churn", "--reason", "again")
    assert again.exit_code == ExitCode.NOT_FOUND
    assert "no rollout is running" in again.output


def test_bad_requests_are_refused_with_their_exit_code_and_change_nothing(cloud: Deployment) -> None:
    package = cloud.register_package()
    cases = [
        (["status", "fraud"], ExitCode.NOT_FOUND, "unknown endpoint 'fraud'"),
        (["status", "churn"], ExitCode.NOT_FOUND, "no rollout running on churn"),
        (["history", "fraud"], ExitCode.NOT_FOUND, "unknown endpoint"),
        (["show", "no-such-rollout"], ExitCode.NOT_FOUND, "no rollout"),
        (["report", "no-such-rollout"], ExitCode.NOT_FOUND, "no rollout"),
        (["start", "churn", package, "--steps", "5,50,25"], ExitCode.USAGE, "must strictly increase"),
        (["start", "churn", package, "--strategy", "big-bang"], ExitCode.USAGE, "big-bang"),
        (["start", "fraud", package], ExitCode.NOT_FOUND, "unknown endpoint"),
        (["--env", "prod", "status"], ExitCode.AWS, "environment 'prod' is not deployed"),
    ]
    for args, code, message in cases:
        result = mlrollout(cloud, *args)
        assert (result.exit_code, message in result.output) == (code, True), (args, result.output)
    assert cloud.executions() == []


def test_the_kill_switch_and_a_pin_are_deployed_through_appconfig_and_served(cloud: Deployment) -> None:
    with emulate_appconfig(instant=True, tick_seconds=None):
        appconfig = boto3.client("appconfig")
        application = appconfig.create_application(Name=PREFIX)["Id"]
        environment = appconfig.create_environment(ApplicationId=application, Name="dev")["Id"]
        profile = appconfig.create_configuration_profile(
            ApplicationId=application, Name="flags", LocationUri="hosted", Type="AWS.AppConfig.FeatureFlags"
        )["Id"]
        strategy = appconfig.create_deployment_strategy(
            Name=f"{PREFIX}-flags", DeploymentDurationInMinutes=0, FinalBakeTimeInMinutes=0, GrowthFactor=100
        )["Id"]
        catalog = [EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")]
        version = appconfig.create_hosted_configuration_version(
            ApplicationId=application,
            ConfigurationProfileId=profile,
            Content=json.dumps(FlagSet.initial(catalog).document()).encode(),
            ContentType="application/json",
        )["VersionNumber"]
        appconfig.start_deployment(
            ApplicationId=application,
            EnvironmentId=environment,
            DeploymentStrategyId=strategy,
            ConfigurationProfileId=profile,
            ConfigurationVersion=str(version),
        )
        ssm = boto3.client("ssm")
        name = operations_parameter_name(PREFIX)
        document = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        document["flags"] = {
            "application_id": application,
            "environment_id": environment,
            "profile_id": profile,
            "deployment_strategy_id": strategy,
        }
        ssm.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)

        switched = mlrollout(cloud, "kill-switch", "churn", "on", "--reason", "scores look wrong")
        assert switched.exit_code == 0, switched.output
        pinned = mlrollout(cloud, "pin", "churn", "user-42", "challenger")
        assert pinned.exit_code == 0, pinned.output
        refused = mlrollout(cloud, "pin", "churn", "user-43", "shadow")
        assert refused.exit_code == ExitCode.USAGE, refused.output

        data = boto3.client("appconfigdata")
        token = data.start_configuration_session(
            ApplicationIdentifier=application,
            EnvironmentIdentifier=environment,
            ConfigurationProfileIdentifier=profile,
        )["InitialConfigurationToken"]
        served = json.loads(data.get_latest_configuration(ConfigurationToken=token)["Configuration"].read())
        flags = FlagSet.from_values(served, catalog).for_endpoint("churn")
        assert (flags.kill_switch.on, flags.kill_switch.reason) == (True, "scores look wrong")
        assert flags.user_pin is not None and (flags.user_pin.users, flags.user_pin.variant) == (
            ("user-42",),
            "challenger",
        )
        off = mlrollout(cloud, "kill-switch", "churn", "off")
        assert off.exit_code == 0, off.output


@pytest.mark.real_waits
def test_a_persons_promotion_promotes_at_the_next_look_and_is_recorded_as_theirs(cloud: Deployment) -> None:
    package = cloud.register_package()
    cloud.serve(champion=HEALTHY, challenger=HEALTHY)
    # An hour's bake: left to the judge, the first step would bake 12 s before it advances.
    started = mlrollout(cloud, "start", "churn", package, "--bake-minutes", "60", "--json")
    rollout_id = printed(started)["rollout_id"]
    wait_until(lambda: cloud.lock_holder() == rollout_id, "the rollout's lock")
    promoted = mlrollout(cloud, "promote", "churn", "--reason", "verified offline")
    assert promoted.exit_code == 0, promoted.output
    wait_until(lambda: cloud.lock_holder() is None, "the promotion")
    [row] = printed(mlrollout(cloud, "history", "churn", "--json"))
    assert row["outcome"] == "promoted"
    assert row["reason"] is None or "promoted by a person (arn:aws:" in row["reason"]
    verdicts = [e.payload for e in cloud.ledger(rollout_id) if e.kind.value == "judge_verdict"]
    assert verdicts[-1]["action"] == "promote"
    assert str(verdicts[-1]["action_reason"]).startswith("promoted by a person (arn:aws:sts::")
    assert "verified offline; the judge said:" in str(verdicts[-1]["action_reason"])
    assert verdicts[-1]["challenger_percent"] == 5  # promoted from the first step, not at the plan's end
    late = mlrollout(cloud, "promote", "churn", "--reason", "again")
    assert late.exit_code == ExitCode.NOT_FOUND and "nothing to promote" in late.output


def test_the_command_finds_the_environment_on_the_local_cloud_and_deploys_its_kill_switch(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The installed console script, as a person runs it with --local: the stacks deployed by the local
    cloud's CloudFormation (the operations parameter with the AppConfig ids it created), the flag
    deployment run by its AppConfig emulation (at once: dev's strategy bakes its first deployment for
    minutes, and AppConfig deploys one at a time) and its events delivered."""
    gap_fillers = {"events": lambda _cloud: deliver_events(), "appconfig": appconfig_gap_filler(instant=True)}
    with LocalCloud(shared_outdir(tmp_path_factory), STACK, gap_fillers=gap_fillers) as local:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environment |= {"AWS_ENDPOINT_URL": local.endpoint_url, "COLUMNS": "200"}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            command = [str(Path(sys.executable).parent / "mlrollout"), "--local", "--env", "dev", *args]
            return subprocess.run(
                command, env=environment, capture_output=True, text=True, timeout=120, check=False
            )

        listed = run("status", "--json")
        assert (listed.returncode, json.loads(listed.stdout)) == (0, {"churn": None}), listed.stderr
        switched = run("kill-switch", "churn", "on", "--reason", "local check")
        assert switched.returncode == 0, switched.stderr
        assert "kill switch of churn on: deployment" in switched.stdout
        none = run("status", "churn")
        assert none.returncode == ExitCode.NOT_FOUND and "no rollout running on churn" in none.stderr
