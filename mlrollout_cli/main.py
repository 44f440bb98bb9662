"""`mlrollout`: the rollouts of a deployed environment, from a terminal.

Every command finds the environment's resources by its name alone (`--env`, the operations parameter
the environment's stack writes: lambdas/shared/operations.py) in the account and region of the
credentials (`--profile`, `--region`), or on the local cloud (`--local`, `AWS_ENDPOINT_URL`).
Exit codes: 0 done, 2 bad input, 3 unknown endpoint or rollout / no rollout running, 4 AWS (no
credentials, not deployed, refused), 5 refused or undone by the platform.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console

from lambdas.rollout.aws.overrides import HELD, PromotionRequests
from lambdas.rollout.ledger import LedgerEntry
from lambdas.rollout.overrides import PersonPause, PersonPromotion, PersonResume
from lambdas.rollout.payloads import InvalidRolloutRequest, Strategy
from lambdas.rollout.report import report_html
from lambdas.rollout.start import (
    InvalidWorkflowInput,
    UnknownEndpoint,
    initial_state,
    parse_input,
    resolve_target,
)
from lambdas.rollout.state import GateAnswer
from lambdas.rollout.views import RolloutStatus, history_row, rollout_status
from mlrollout_cli import flags as flag_ops
from mlrollout_cli.errors import CliError, ExitCode
from mlrollout_cli.human_gates import promotion_requests, send_answer, waiting_gate
from mlrollout_cli.platform import Platform, aws_errors, connect
from mlrollout_cli.render import entries_table, history_table, status_view, summary_table

__all__ = ["cli"]

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class Context:
    environment: str
    profile: str | None
    region: str | None
    endpoint_url: str | None
    console: Console
    clock: Callable[[], float] = time.time
    _platform: Platform | None = field(default=None, repr=False)

    def platform(self) -> Platform:
        if self._platform is None:
            self._platform = connect(
                self.environment, profile=self.profile, region=self.region, endpoint_url=self.endpoint_url
            )
        return self._platform

    def now(self) -> int:
        return int(self.clock())


class _Group(click.Group):
    """Turns the command's own errors into a message on standard error and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as error:
            click.echo(f"mlrollout: {error}", err=True)
            ctx.exit(int(error.code))


EXAMPLES = """
\b
Examples:
  mlrollout --env prod --profile ops status churn --watch
  mlrollout history churn --json
  mlrollout show arn:aws:states:eu-west-1:123456789012:execution:mlrollout-prod-rollout:4f1c...
  mlrollout start churn arn:aws:sagemaker:...:model-package/mlrollout-prod-churn/7 --strategy linear
  mlrollout abort churn --reason "wrong feature version"
  mlrollout promote churn --reason "verified offline on the full holdout set"
  mlrollout pause churn --reason "waiting for the data team"
  mlrollout resume churn
  mlrollout approve churn
  mlrollout reject churn --reason "conversion dashboard looks off"
  mlrollout kill-switch churn on --reason "complaints about scores"
  mlrollout pin churn user-42 challenger
  mlrollout report ID --html rollout.html
  AWS_ENDPOINT_URL=http://127.0.0.1:5000 mlrollout --local --env local status
"""


@click.group(cls=_Group, epilog=EXAMPLES)
@click.option(
    "--env",
    "environment",
    envvar="MLROLLOUT_ENV",
    default="dev",
    show_default=True,
    help="The environment's name (infra/environments/NAME.yaml); also MLROLLOUT_ENV.",
)
@click.option("--profile", envvar="AWS_PROFILE", help="The AWS profile; also AWS_PROFILE.")
@click.option("--region", envvar="AWS_REGION", help="The AWS region; also AWS_REGION.")
@click.option(
    "--endpoint-url", envvar="AWS_ENDPOINT_URL", help="Send every AWS call here; also AWS_ENDPOINT_URL."
)
@click.option(
    "--local",
    is_flag=True,
    help="The local cloud: AWS_ENDPOINT_URL (or --endpoint-url) names it; emulator credentials "
    "and us-east-1 unless set.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    *,
    environment: str,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    local: bool,
) -> None:
    """Watch and steer the model rollouts of an mlrollout environment."""
    if local:
        if not endpoint_url:
            raise click.UsageError(
                "--local needs the local cloud's address: AWS_ENDPOINT_URL or --endpoint-url"
            )
        for name, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        region = region or "us-east-1"
        profile = None
    # A caller may hand in its own clock (a test on an emulated one).
    clock = ctx.obj.clock if isinstance(ctx.obj, Context) else time.time
    ctx.obj = Context(environment, profile, region, endpoint_url, Console(), clock=clock)


def _context(ctx: click.Context) -> Context:
    obj = ctx.find_object(Context)
    assert obj is not None
    return obj


def _print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


# --- reading ------------------------------------------------------------------------------------------


def _weights(platform: Platform, endpoint_name: str) -> dict[str, float]:
    described = platform.client("sagemaker").describe_endpoint(EndpointName=endpoint_name)
    # SageMaker (and moto) may leave a weight of 0 out.
    return {
        str(v["VariantName"]): float(v.get("CurrentWeight", 0.0)) for v in described["ProductionVariants"]
    }


def _entries(platform: Platform, rollout_id: str) -> list[LedgerEntry]:
    return platform.ledger().entries(rollout_id)


def _running_status(obj: Context, endpoint: str, rollout_id: str | None = None) -> RolloutStatus | None:
    """The rollout holding the endpoint (or, once it has ended, `rollout_id`'s last status)."""
    platform = obj.platform()
    settings = platform.endpoint(endpoint)
    with aws_errors():
        lease = platform.lease(endpoint)
        holder = lease.holder if lease is not None else rollout_id
        if holder is None:
            return None
        entries = _entries(platform, holder)
        return rollout_status(entries, weights=_weights(platform, settings.endpoint_name), now=obj.now())


@cli.command(
    epilog="""
\b
Examples:
  mlrollout status                 every endpoint's running rollout
  mlrollout status churn --watch   the churn rollout, refreshed until it ends (Ctrl-C stops)
  mlrollout status churn --json
"""
)
@click.argument("endpoint", required=False)
@click.option("--watch", is_flag=True, help="Refresh until the rollout ends.")
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between refreshes.",
)
@click.option("--count", type=click.IntRange(min=1), help="With --watch: stop after this many refreshes.")
@json_option
@click.pass_context
def status(
    ctx: click.Context,
    *,
    endpoint: str | None,
    watch: bool,
    interval: float,
    count: int | None,
    as_json: bool,
) -> None:
    """The live rollout: step, weights, time in step, each metric's estimate and bounds against its
    tolerance and margin, what the judge still needs, and when it decides next."""
    obj = _context(ctx)
    if endpoint is None:
        platform = obj.platform()
        with aws_errors():
            rows = [(name, _running_status(obj, name)) for name in platform.endpoints]
        if as_json:
            _print_json({name: s.model_dump(mode="json") if s else None for name, s in rows})
        else:
            obj.console.print(summary_table(rows, obj.now()))
        return
    current = _running_status(obj, endpoint)
    if current is None:
        raise CliError(
            f"no rollout running on {endpoint}; `mlrollout history {endpoint}` lists the past ones",
            ExitCode.NOT_FOUND,
        )
    refreshes = 0
    while True:
        refreshes += 1
        if as_json:
            click.echo(json.dumps(current.model_dump(mode="json"), sort_keys=True))
        else:
            obj.console.rule(f"{endpoint} at {time.strftime('%H:%M:%S', time.gmtime(obj.now()))} UTC")
            obj.console.print(status_view(current, obj.now()))
        if not watch or current.outcome is not None or (count is not None and refreshes >= count):
            return
        time.sleep(interval)
        current = _running_status(obj, endpoint, current.rollout_id) or current


@cli.command(epilog="\b\nExamples:\n  mlrollout history churn\n  mlrollout history churn --limit 5 --json")
@click.argument("endpoint")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=1), help="At most this many rollouts."
)
@json_option
@click.pass_context
def history(ctx: click.Context, endpoint: str, limit: int, as_json: bool) -> None:
    """Past rollouts of an endpoint, newest first: package, how far it got, outcome and reason."""
    obj = _context(ctx)
    platform = obj.platform()
    platform.endpoint(endpoint)
    rows = []
    with aws_errors():
        for execution in _executions(platform):
            row = history_row(_entries(platform, str(execution["executionArn"])))
            if row is None:
                continue  # an abort's own execution, or a start that was refused
            if row.endpoint == endpoint:
                rows.append(row)
            if len(rows) >= limit:
                break
    if as_json:
        _print_json([row.model_dump(mode="json") for row in rows])
    else:
        obj.console.print(history_table(endpoint, rows))


def _executions(platform: Platform) -> Iterator[dict[str, Any]]:
    """The rollout state machine's executions, newest first (Step Functions keeps 90 days of them)."""
    states = platform.client("stepfunctions")
    request: dict[str, Any] = {"stateMachineArn": platform.resources.state_machine_arn}
    while True:
        listed = states.list_executions(**request)
        yield from sorted(listed["executions"], key=lambda e: e["startDate"], reverse=True)
        if not listed.get("nextToken"):
            return
        request["nextToken"] = listed["nextToken"]


@cli.command(
    epilog="\b\nExamples:\n  mlrollout show arn:aws:states:...:execution:mlrollout-dev-rollout:ID\n"
    "  mlrollout show ID --json"
)
@click.argument("rollout_id")
@json_option
@click.pass_context
def show(ctx: click.Context, rollout_id: str, as_json: bool) -> None:
    """A rollout's ledger, entry by entry (ROLLOUT_ID: its execution ARN, or the execution's name)."""
    obj = _context(ctx)
    platform = obj.platform()
    rollout_id = _rollout_arn(platform, rollout_id)
    with aws_errors():
        entries = _entries(platform, rollout_id)
    if not entries:
        raise CliError(f"no rollout {rollout_id} in the ledger", ExitCode.NOT_FOUND)
    if as_json:
        _print_json([entry.model_dump(mode="json") for entry in entries])
    else:
        obj.console.print(entries_table(rollout_id, entries))


@cli.command(
    epilog="\b\nExamples:\n  mlrollout report ID --html rollout.html\n"
    "  mlrollout report ID   (the HTML on standard output)"
)
@click.argument("rollout_id")
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False, writable=True), help="Write the page here."
)
@click.pass_context
def report(ctx: click.Context, rollout_id: str, html_file: str | None) -> None:
    """A rollout's page from its ledger: settings, gates, the challenger's share over time, each decision,
    each metric's estimate and bounds look by look against its thresholds, the blast radius."""
    obj = _context(ctx)
    platform = obj.platform()
    rollout_id = _rollout_arn(platform, rollout_id)
    with aws_errors():
        entries = _entries(platform, rollout_id)
    try:
        page = report_html(entries)
    except ValueError:
        raise CliError(f"no rollout {rollout_id} in the ledger", ExitCode.NOT_FOUND) from None
    if html_file is None:
        click.echo(page)
        return
    with open(html_file, "w", encoding="utf-8") as out:
        out.write(page)
    obj.console.print(f"wrote {html_file}")


def _rollout_arn(platform: Platform, rollout_id: str) -> str:
    """An execution's ARN from its name (the part after the state machine's name)."""
    if rollout_id.startswith("arn:"):
        return rollout_id
    return platform.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + rollout_id


# --- acting -------------------------------------------------------------------------------------------


def _steps(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise CliError(
            f"--steps must be percentages separated by commas, e.g. 5,25,50,100; got {text!r}", ExitCode.USAGE
        ) from None


@cli.command(
    epilog="""
\b
Examples:
  mlrollout start churn arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlrollout-prod-churn/7
  mlrollout start churn ARN --strategy linear --steps 10,30,60,100 --bake-minutes 15
  mlrollout start churn ARN --approve     approve the package: the approval rule starts the rollout
"""
)
@click.argument("endpoint")
@click.argument("package_arn")
@click.option(
    "--strategy", type=click.Choice([s.value for s in Strategy]), help="Override the endpoint's strategy."
)
@click.option("--steps", help="Override the traffic steps, e.g. 5,25,50,100.")
@click.option("--bake-minutes", type=click.IntRange(min=1), help="Override the bake per step.")
@click.option(
    "--approve",
    is_flag=True,
    help="Approve the package instead: the approval rule starts the rollout as for any approved package.",
)
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    *,
    endpoint: str,
    package_arn: str,
    strategy: str | None,
    steps: str | None,
    bake_minutes: int | None,
    approve: bool,
    as_json: bool,
) -> None:
    """Start a rollout of a model package on an endpoint, with the input the workflow takes from a person
    (the same checks as its start function: known endpoint, valid overrides)."""
    obj = _context(ctx)
    platform = obj.platform()
    platform.endpoint(endpoint)
    request: dict[str, Any] = {"endpoint": endpoint, "model_package_arn": package_arn}
    overrides = {"strategy": strategy, "traffic_steps": _steps(steps), "bake_minutes": bake_minutes}
    request |= {key: value for key, value in overrides.items() if value is not None}
    if approve and len(request) > 2:
        raise CliError(
            "--approve starts the rollout with the endpoint's settings: no overrides", ExitCode.USAGE
        )
    try:
        given = parse_input(request | {"execution_id": "preview"})
        name, settings, arn, extra = resolve_target(given, dict(platform.endpoints))
        initial_state("preview", name, settings, arn, extra)
    except (InvalidWorkflowInput, InvalidRolloutRequest, UnknownEndpoint) as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    with aws_errors():
        if approve:
            platform.client("sagemaker").update_model_package(
                ModelPackageArn=package_arn, ModelApprovalStatus="Approved"
            )
            result: dict[str, Any] = {"approved": package_arn}
        else:
            started = platform.client("stepfunctions").start_execution(
                stateMachineArn=platform.resources.state_machine_arn,
                name=f"cli-{uuid.uuid4()}",
                input=json.dumps(request),
            )
            result = {"rollout_id": started["executionArn"], "input": request}
    if as_json:
        _print_json(result)
    elif approve:
        obj.console.print(
            f"approved {package_arn}; the approval starts the rollout: mlrollout status {endpoint} --watch"
        )
    else:
        obj.console.print(
            f"started rollout {result['rollout_id']}\nwatch it: mlrollout status {endpoint} --watch"
        )


def _caller(platform: Platform) -> str:
    with aws_errors():
        return str(platform.client("sts").get_caller_identity()["Arn"])


@cli.command(epilog='\b\nExamples:\n  mlrollout abort churn --reason "wrong feature version"')
@click.argument("endpoint")
@click.option("--reason", required=True, help="Why: recorded with the rollback and told on the topic.")
@json_option
@click.pass_context
def abort(ctx: click.Context, endpoint: str, reason: str, as_json: bool) -> None:
    """Abort the endpoint's running rollout: its abort function stops the execution and rolls it back."""
    obj = _context(ctx)
    platform = obj.platform()
    platform.endpoint(endpoint)
    who = _caller(platform)
    payload = {"endpoint": endpoint, "reason": f"{reason} (by {who})"}
    with aws_errors():
        answer = platform.client("lambda").invoke(
            FunctionName=platform.resources.abort_function, Payload=json.dumps(payload).encode()
        )
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        message = body.get("errorMessage") if isinstance(body, dict) else body
        raise CliError(f"the abort function refused: {message}", ExitCode.REFUSED)
    if as_json:
        _print_json(body)
    aborted = body.get("aborted", []) if isinstance(body, dict) else []
    if not aborted:
        why = (
            "; ".join(s.get("left_alone", "") for s in body.get("skipped", []))
            if isinstance(body, dict)
            else ""
        )
        raise CliError(f"nothing aborted: {why or 'no rollout running'}", ExitCode.NOT_FOUND)
    if not as_json:
        for item in aborted:
            obj.console.print(f"aborted {item['rollout_id']}: it is being rolled back ({item['reason']})")


@cli.command(
    epilog='\b\nExamples:\n  mlrollout promote churn --reason "verified offline on the full holdout set"'
)
@click.argument("endpoint")
@click.option("--reason", required=True, help="Why: recorded in the ledger with who asked.")
@json_option
@click.pass_context
def promote(ctx: click.Context, endpoint: str, reason: str, as_json: bool) -> None:
    """Promote the endpoint's running rollout at the judge's next look, whatever step it is at: recorded
    in the ledger as a person's promotion (who, why, and what the judge said). Harm the judge has shown
    is not overridden: that look still rolls back."""
    obj = _context(ctx)
    platform = obj.platform()
    settings = platform.endpoint(endpoint)
    try:
        promotion = PersonPromotion(by=_caller(platform), reason=reason, requested_at=obj.now())
    except ValueError as error:
        raise CliError(f"invalid promotion: {error}", ExitCode.USAGE) from None
    with aws_errors():
        lease = platform.lease(endpoint)
        requests = PromotionRequests(
            client=platform.client("dynamodb"), table_name=platform.resources.lock_table
        )
        if lease is None or not requests.request(settings.endpoint_name, lease.holder, promotion):
            raise CliError(f"no rollout running on {endpoint}: nothing to promote", ExitCode.NOT_FOUND)
    result = {"rollout_id": lease.holder, "promotion": promotion.model_dump(mode="json")}
    if as_json:
        _print_json(result)
    else:
        obj.console.print(
            f"promotion of {lease.holder} requested: the judge's next look promotes it unless it shows harm"
        )


@cli.command(epilog='\b\nExamples:\n  mlrollout pause churn --reason "waiting for the data team"')
@click.argument("endpoint")
@click.option("--reason", required=True, help="Why: recorded in the ledger with who asked.")
@json_option
@click.pass_context
def pause(ctx: click.Context, endpoint: str, reason: str, as_json: bool) -> None:
    """Hold the endpoint's running rollout at its step from the judge's next look: traffic frozen, the judge
    still watching (harm still rolls back), until `resume`, `promote` or `abort`, or the policy's hold
    timeout, which rolls back. Recorded in the ledger as the person's hold."""
    obj = _context(ctx)
    platform = obj.platform()
    settings = platform.endpoint(endpoint)
    try:
        request = PersonPause(by=_caller(platform), reason=reason, requested_at=obj.now())
    except ValueError as error:
        raise CliError(f"invalid pause: {error}", ExitCode.USAGE) from None
    with aws_errors():
        lease = platform.lease(endpoint)
        if lease is None or not promotion_requests(platform).pause(
            settings.endpoint_name, lease.holder, request
        ):
            raise CliError(f"no rollout running on {endpoint}: nothing to pause", ExitCode.NOT_FOUND)
    result = {"rollout_id": lease.holder, "pause": request.model_dump(mode="json")}
    if as_json:
        _print_json(result)
    else:
        obj.console.print(
            f"pause of {lease.holder} requested: the judge's next look holds it at its step; "
            f"release it with: mlrollout resume {endpoint}"
        )


@cli.command(
    epilog='\b\nExamples:\n  mlrollout resume churn\n  mlrollout resume churn --reason "latency explained"'
)
@click.argument("endpoint")
@click.option("--reason", default="resumed", show_default=True, help="Why: recorded in the ledger.")
@json_option
@click.pass_context
def resume(ctx: click.Context, endpoint: str, reason: str, as_json: bool) -> None:
    """Release the hold of the endpoint's rollout (a person's pause or the policy's hold) at the judge's next
    look: its step starts over at the same weights, and the situation it was held for is only warned
    about from then on. Recorded in the ledger as the person's."""
    obj = _context(ctx)
    platform = obj.platform()
    settings = platform.endpoint(endpoint)
    try:
        request = PersonResume(by=_caller(platform), reason=reason, requested_at=obj.now())
    except ValueError as error:
        raise CliError(f"invalid resume: {error}", ExitCode.USAGE) from None
    with aws_errors():
        lease = platform.lease(endpoint)
        if lease is None:
            raise CliError(f"no rollout running on {endpoint}: nothing to resume", ExitCode.NOT_FOUND)
        requests = promotion_requests(platform)
        pending = requests.requests(settings.endpoint_name, lease.holder)
        held = requests.attribute(settings.endpoint_name, lease.holder, HELD)
        if held is None and pending.pause is None:
            raise CliError(
                f"rollout {lease.holder} on {endpoint} is not held: nothing to resume", ExitCode.NOT_FOUND
            )
        if not requests.resume(settings.endpoint_name, lease.holder, request):
            raise CliError(f"no rollout running on {endpoint}: nothing to resume", ExitCode.NOT_FOUND)
    result = {"rollout_id": lease.holder, "held": held, "resume": request.model_dump(mode="json")}
    if as_json:
        _print_json(result)
    else:
        obj.console.print(f"resume of {lease.holder} requested: the judge's next look releases its hold")


@cli.command(
    epilog='\b\nExamples:\n  mlrollout approve churn\n  mlrollout approve churn --reason "dashboards fine"'
)
@click.argument("endpoint")
@click.option("--reason", default="approved", show_default=True, help="Recorded in the ledger with who.")
@json_option
@click.pass_context
def approve(ctx: click.Context, endpoint: str, reason: str, as_json: bool) -> None:
    """Approve the human gate the endpoint's rollout waits at (before a step or the promotion): the
    workflow goes on at once. Recorded in the ledger as the person's approval."""
    _answer_gate(ctx, endpoint, reason, as_json, approved=True)


@cli.command(epilog='\b\nExamples:\n  mlrollout reject churn --reason "conversion dashboard looks off"')
@click.argument("endpoint")
@click.option(
    "--reason", required=True, help="Why: the rollback's reason in the ledger and the notification."
)
@json_option
@click.pass_context
def reject(ctx: click.Context, endpoint: str, reason: str, as_json: bool) -> None:
    """Reject the human gate the endpoint's rollout waits at: it is rolled back, naming who and why."""
    _answer_gate(ctx, endpoint, reason, as_json, approved=False)


def _answer_gate(ctx: click.Context, endpoint: str, reason: str, as_json: bool, *, approved: bool) -> None:
    """The person's answer at the human gate the endpoint's rollout waits at (`human_gates.py`)."""
    obj = _context(ctx)
    platform = obj.platform()
    rollout_id, gate = waiting_gate(platform, endpoint)
    try:
        answer = GateAnswer(
            gate=str(gate["gate"]),
            approved=approved,
            by=_caller(platform),
            reason=reason,
            answered_at=obj.now(),
        )
    except ValueError as error:
        what = "approval" if approved else "rejection"
        raise CliError(f"invalid {what}: {error}", ExitCode.USAGE) from None
    send_answer(platform, rollout_id, gate, answer)
    result = {
        "rollout_id": rollout_id,
        ("approval" if approved else "rejection"): answer.model_dump(mode="json"),
    }
    if as_json:
        _print_json(result)
    elif approved:
        obj.console.print(f"approved {answer.gate} of {rollout_id}: the rollout goes on")
    else:
        obj.console.print(f"rejected {answer.gate} of {rollout_id}: it is being rolled back")


@cli.command(
    "kill-switch",
    epilog="\b\nExamples:\n"
    '  mlrollout kill-switch churn on --reason "scores look wrong"\n'
    "  mlrollout kill-switch churn off",
)
@click.argument("endpoint")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--reason", help="Why it is pulled (kept while on).")
@json_option
@click.pass_context
def kill_switch(ctx: click.Context, endpoint: str, state: str, reason: str | None, as_json: bool) -> None:
    """Turn the endpoint's kill switch on or off through an AppConfig deployment, and wait for it: on sends
    every user to the champion and aborts the running rollout."""
    obj = _context(ctx)
    with aws_errors():
        result = flag_ops.switch(obj.platform(), endpoint, on=state == "on", reason=reason)
    if as_json:
        _print_json(result)
    else:
        obj.console.print(f"kill switch of {endpoint} {state}: deployment {result['deployment']} complete")


@cli.command(epilog="\b\nExamples:\n  mlrollout pin churn user-42 challenger")
@click.argument("endpoint")
@click.argument("user")
@click.argument("variant")
@json_option
@click.pass_context
def pin(ctx: click.Context, endpoint: str, user: str, variant: str, as_json: bool) -> None:
    """Pin a user to a variant of the endpoint (its user allow-list), through an AppConfig deployment."""
    obj = _context(ctx)
    with aws_errors():
        result = flag_ops.pin_user(obj.platform(), endpoint, user, variant)
    if as_json:
        _print_json(result)
    else:
        obj.console.print(
            f"{user} pinned to {variant} on {endpoint}: deployment {result['deployment']} complete"
        )
