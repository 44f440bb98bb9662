"""The command's output for people: Rich tables and lines (`--json` prints the models instead)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lambdas.rollout.ledger import LedgerEntry
from lambdas.rollout.views import HistoryRow, MetricStatus, RolloutStatus, describe_entry

__all__ = ["entries_table", "history_table", "moment", "status_view", "summary_table"]


def moment(epoch: int | None, now: int | None = None) -> str:
    if epoch is None:
        return "-"
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if now is None:
        return text
    delta = epoch - now
    return f"{text} ({'in ' if delta >= 0 else ''}{_duration(abs(delta))}{'' if delta >= 0 else ' ago'})"


def _duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _shares(weights: dict[str, float]) -> str:
    """SageMaker's variant weights are relative: each as its share of the traffic."""
    total = sum(weights.values())
    if not total:
        return "-"
    return ", ".join(f"{variant} {weight / total * 100:.4g} %" for variant, weight in weights.items())


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _metrics_table(metrics: Sequence[MetricStatus]) -> Table:
    table = Table(title="judge's last look", title_justify="left")
    for column in ("metric", "outcome", "estimate", "bounds", "harm above/below", "non-inferior within"):
        table.add_column(column)
    table.add_column("samples (champion/challenger)", justify="right")
    for m in metrics:
        table.add_row(
            m.metric,
            m.outcome,
            _number(m.estimate),
            f"[{_number(m.lower_bound)}, {_number(m.upper_bound)}]",
            _number(m.harm_threshold),
            _number(m.promote_threshold),
            f"{m.champion_samples}/{m.challenger_samples} (needs {m.needed_samples})",
        )
    return table


def status_view(status: RolloutStatus, now: int) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    steps = " → ".join(
        f"[reverse]{share}[/reverse]" if i == status.step_index else str(share)
        for i, share in enumerate(status.traffic_steps)
    )
    rows: list[tuple[str, str]] = [
        ("rollout", status.rollout_id),
        ("endpoint", f"{status.endpoint} ({status.endpoint_name})"),
        ("package", status.model_package_arn),
        ("strategy", f"{status.strategy}, steps {steps} %"),
        ("phase", status.phase if status.step_index is None else f"{status.phase} {status.step_index + 1}"),
        ("weights", _shares(status.weights)),
        ("started", moment(status.started_at, now)),
    ]
    if status.seconds_in_step is not None:
        rows.append(
            ("time in step", f"{_duration(status.seconds_in_step)} (bake {status.bake_seconds // 60} min)")
        )
    if status.verdict is not None:
        rows.append(("verdict", f"{status.verdict}: {status.verdict_reason}"))
        rows.append(("workflow", f"{status.action}: {status.action_reason}"))
    if status.judge_needs:
        rows.append(("judge needs", "\n".join(status.judge_needs)))
    if status.next_look_at is not None:
        rows.append(("next look", moment(status.next_look_at, now)))
    if status.may_advance_at is not None:
        rows.append(("may advance", moment(status.may_advance_at, now)))
    if status.outcome is not None:
        rows.append(
            ("outcome", f"{status.outcome}" + (f": {status.outcome_reason}" if status.outcome_reason else ""))
        )
    for name, value in rows:
        head.add_row(name, Text.from_markup(value) if name == "strategy" else Text(value))
    parts: list[RenderableType] = [head]
    if status.metrics:
        parts.append(_metrics_table(status.metrics))
    return Group(*parts)


def summary_table(rows: Sequence[tuple[str, RolloutStatus | None]], now: int) -> Table:
    table = Table(title="rollouts running", title_justify="left")
    for column in ("endpoint", "rollout", "phase", "challenger %", "verdict", "next look"):
        table.add_column(column)
    for endpoint, status in rows:
        if status is None:
            table.add_row(endpoint, "-", "no rollout running", "", "", "")
            continue
        table.add_row(
            endpoint,
            status.rollout_id.rsplit(":", 1)[-1],
            status.phase,
            "-" if status.challenger_percent is None else str(status.challenger_percent),
            status.verdict or "-",
            moment(status.next_look_at, now),
        )
    return table


def history_table(endpoint: str, rows: Sequence[HistoryRow]) -> Table:
    table = Table(title=f"rollouts of {endpoint}, newest first", title_justify="left")
    for column in ("started", "rollout", "package", "strategy", "reached %", "outcome", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            moment(row.started_at),
            row.rollout_id.rsplit(":", 1)[-1],
            row.model_package_arn.rsplit("/", 2)[-2:][0] + "/" + row.model_package_arn.rsplit("/", 1)[-1],
            row.strategy,
            "-" if row.reached_percent is None else str(row.reached_percent),
            row.outcome,
            row.reason or "",
        )
    return table


def entries_table(rollout_id: str, entries: Sequence[LedgerEntry]) -> Table:
    table = Table(title=f"ledger of {rollout_id}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("recorded")
    table.add_column("kind")
    table.add_column("what", overflow="fold")
    for entry in entries:
        table.add_row(str(entry.sequence), moment(entry.recorded_at), entry.kind.value, describe_entry(entry))
    return table
