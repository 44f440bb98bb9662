"""One rollout as a self-contained HTML page, from its ledger alone: the settings it ran with, the
gates, the challenger's share over time, each decision, each metric's estimate and anytime-valid bounds
look by look against its harm and non-inferiority thresholds, the sample ratio, and the blast radius
(what the challenger served). Inline SVG: no dependency, no network when opened.

`mlrollout report` renders it locally; the promote and rollback tasks write it to the registry's bucket
when a rollout ends (lambdas/rollout/aws/reports.py): the same page either way."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.views import describe_entry, history_row, started_state

__all__ = ["REPORT_PREFIX", "report_html"]

REPORT_PREFIX = "rollout-reports/"
"""Where the reports go in the registry's bucket: ``rollout-reports/<endpoint>/<execution>.html``."""

WIDTH, HEIGHT, PAD = 640, 200, 36
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }
svg { background: #fafafa; border: 1px solid #ddd; }
.harm { stroke: #c0392b; } .margin { stroke: #27ae60; } .estimate { stroke: #2c3e50; }
.bounds { fill: #3498db; fill-opacity: 0.25; stroke: none; } .share { stroke: #8e44ad; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(value: Any) -> str:
    """A table cell as a person reads it: no "None", no sixteen-digit floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _scale(values: Sequence[float], low: int, high: int) -> Any:
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0

    def to(value: float) -> float:
        return low + (value - lo) / span * (high - low)

    return to


def _share_chart(points: Sequence[tuple[int, int]]) -> str:
    """The challenger's share (%) over time, as steps."""
    if not points:
        return "<p>No traffic was shifted.</p>"
    x = _scale([t for t, _ in points], PAD, WIDTH - PAD)
    y = _scale([0, 100], HEIGHT - PAD, PAD)
    path: list[str] = []
    for index, (at, share) in enumerate(points):
        if index:
            path.append(f"{x(at):.1f},{y(points[index - 1][1]):.1f}")
        path.append(f"{x(at):.1f},{y(share):.1f}")
    labels = "".join(
        f'<text x="{x(at):.1f}" y="{y(share) - 4:.1f}" font-size="10">{share} %</text>'
        for at, share in points
    )
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="challenger share over time">'
        f'<polyline class="share" fill="none" stroke-width="2" points="{" ".join(path)}"/>{labels}</svg>'
    )


def _metric_chart(metric: str, looks: Sequence[dict[str, Any]]) -> str:
    """Estimate and bounds per look, with the harm (red) and non-inferiority (green) thresholds."""
    rows = [look for look in looks if look["estimate"] is not None]
    if not rows:
        return f"<p>{_e(metric)}: no estimate yet at any look.</p>"
    values = [look["estimate"] for look in rows] + [rows[0]["harm_threshold"], rows[0]["promote_threshold"]]
    values += [b for look in rows for b in (look["lower_bound"], look["upper_bound"]) if b is not None]
    x = _scale(list(range(len(rows))) if len(rows) > 1 else [0, 1], PAD, WIDTH - PAD)
    y = _scale(values, HEIGHT - PAD, PAD)
    estimate = " ".join(f"{x(i):.1f},{y(look['estimate']):.1f}" for i, look in enumerate(rows))
    bands = "".join(
        f'<rect class="bounds" x="{x(i) - 3:.1f}" y="{y(look["upper_bound"]):.1f}" width="6" '
        f'height="{max(y(look["lower_bound"]) - y(look["upper_bound"]), 1):.1f}"/>'
        for i, look in enumerate(rows)
        if look["lower_bound"] is not None and look["upper_bound"] is not None
    )
    lines = "".join(
        f'<line class="{css}" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
        f'stroke-dasharray="4"/>'
        f'<text x="{WIDTH - PAD + 2}" y="{y(value) + 3:.1f}" font-size="10">{value:g}</text>'
        for css, value in (("harm", rows[0]["harm_threshold"]), ("margin", rows[0]["promote_threshold"]))
    )
    return (
        f'<svg width="{WIDTH + 40}" height="{HEIGHT}" role="img" aria-label="{_e(metric)} by look">'
        f"{bands}{lines}"
        f'<polyline class="estimate" fill="none" stroke-width="2" points="{estimate}"/></svg>'
    )


def _percent(share: Any) -> str:
    return "-" if share is None else f"{100 * float(share):.2f} %"


def report_html(entries: Sequence[LedgerEntry]) -> str:
    state = started_state(entries)
    row = history_row(entries)
    if state is None or row is None:
        raise ValueError("the ledger holds no rollout start: nothing to report")
    request = state.request
    shares: list[tuple[int, int]] = []
    verdicts: list[LedgerEntry] = []
    served = {"champion": 0, "challenger": 0}
    for entry in entries:
        payload = entry.payload
        if entry.kind is EntryKind.DEPLOYMENT and payload.get("action") == "set_weights":
            shares.append((entry.recorded_at, int(str(payload.get("challenger_percent", 0)))))
        elif entry.kind is EntryKind.JUDGE_VERDICT:
            verdicts.append(entry)
        elif entry.kind is EntryKind.TRAFFIC_STEP:
            served["champion"] += int(str(payload.get("champion_requests", 0)))
            served["challenger"] += int(str(payload.get("challenger_requests", 0)))
        elif entry.kind is EntryKind.OUTCOME and shares:
            final = 100 if payload.get("status") == "promoted" else 0
            shares.append((entry.recorded_at, final))
    looks: dict[str, list[dict[str, Any]]] = {}
    for verdict in verdicts:
        evidence = verdict.payload.get("evidence")
        for item in evidence if isinstance(evidence, list) else []:
            if isinstance(item, dict):
                looks.setdefault(str(item["metric"]), []).append(dict(item))
    gates = [
        (p.get("gate"), p.get("status"), json.dumps(p.get("detail"), sort_keys=True)[:300])
        for p in (e.payload for e in entries if e.kind is EntryKind.GATE_RESULT)
    ]
    decisions = [
        (
            _utc(e.recorded_at),
            f"{e.payload.get('challenger_percent')} %",
            e.payload.get("bake"),
            e.payload.get("verdict"),
            e.payload.get("action"),
            e.payload.get("action_reason"),
        )
        for e in verdicts
    ]
    sample_ratio = [
        (
            i + 1,
            e.payload.get("challenger_percent"),
            _percent(item.get("expected_share")),
            _percent(item.get("observed_share")),
            f"{item.get('champion_requests')}/{item.get('challenger_requests')}",
            item.get("ratio"),
            item.get("lower_bound"),
            item.get("upper_bound"),
            "MISMATCH" if item.get("mismatch") else "ok",
        )
        for i, e in enumerate(verdicts)
        for item in (e.payload.get("sample_ratio"),)
        if isinstance(item, dict)
    ]
    metric_sections = "".join(
        f"<h3>{_e(metric)}</h3>{_metric_chart(metric, rows)}"
        + _table(
            ["look", "outcome", "estimate", "lower", "upper", "harm", "non-inferior", "samples"],
            [
                (
                    i + 1,
                    r["outcome"],
                    r["estimate"],
                    r["lower_bound"],
                    r["upper_bound"],
                    r["harm_threshold"],
                    r["promote_threshold"],
                    f"{r['champion_samples']}/{r['challenger_samples']}",
                )
                for i, r in enumerate(rows)
            ],
        )
        for metric, rows in looks.items()
    )
    settings = {
        "strategy": request.strategy.value,
        "traffic_steps": list(request.challenger_shares),
        "bake_minutes": request.bake_minutes,
        "max_bakes_per_step": request.max_bakes_per_step,
        "judge": state.judge.model_dump(mode="json"),
    }
    title = f"Rollout of {request.model_package_arn} on {state.endpoint}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{STYLE}</style>"
        f"</head><body><h1>{_e(title)}</h1>"
        + _table(
            ["rollout", "endpoint", "outcome", "reason", "highest share"],
            [
                (
                    row.rollout_id,
                    request.endpoint_name,
                    row.outcome,
                    row.reason or "",
                    f"{row.reached_percent} %",
                )
            ],
        )
        + "<h2>Blast radius</h2>"
        + _table(["variant", "requests served during the rollout"], sorted(served.items()))
        + f"<h2>Challenger's share over time</h2>{_share_chart(shares)}"
        + "<h2>Gates</h2>"
        + _table(["gate", "status", "detail"], gates)
        + "<h2>Decisions</h2>"
        + _table(["recorded (UTC)", "share", "look", "verdict", "action", "reason"], decisions)
        + f"<h2>Metrics look by look</h2>{metric_sections}"
        + "<h2>Sample ratio look by look</h2><p>Each step's requests against its weights (served/expected "
        "ratio of the challenger's requests to the champion's, with its anytime-valid bounds).</p>"
        + _table(
            ["look", "step", "expected", "observed", "requests", "ratio", "lower", "upper", "split"],
            sample_ratio,
        )
        + "<h2>Settings it ran with</h2><pre>"
        + _e(json.dumps(settings, indent=2, sort_keys=True))
        + "</pre><h2>Ledger</h2>"
        + _table(["#", "kind", "what"], [(e.sequence, e.kind.value, describe_entry(e)) for e in entries])
        + "</body></html>"
    )
