"""A rollout as a person reads it, from its ledger: where it is, what the judge last saw and still needs,
and each entry in a line. Pure: the ledger's models in, pydantic models out (the `--json` output).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from lambdas.rollout.judge import MetricEvidence, MetricOutcome
from lambdas.rollout.judge_settings import JudgeSettings, Metric
from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.state import RolloutState

__all__ = [
    "HistoryRow",
    "MetricStatus",
    "RolloutStatus",
    "describe_entry",
    "history_row",
    "rollout_status",
    "started_state",
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class MetricStatus(_View):
    metric: str
    outcome: str
    estimate: float | None
    lower_bound: float | None
    upper_bound: float | None
    harm_threshold: float
    promote_threshold: float
    champion_samples: int
    challenger_samples: int
    needed_samples: int
    still_needs: str | None
    """What this metric lacks before it can decide, in words; None once it has decided."""


class RolloutStatus(_View):
    rollout_id: str
    endpoint: str
    endpoint_name: str
    model_package_arn: str
    strategy: str
    phase: str
    """gates, deploying, step, rolling back, or the outcome once recorded."""
    started_at: int
    traffic_steps: list[int]
    step_index: int | None
    challenger_percent: int | None
    weights: dict[str, float]
    step_started_at: int | None
    seconds_in_step: int | None
    bake_seconds: int
    verdict: str | None
    verdict_reason: str | None
    action: str | None
    action_reason: str | None
    judged_at: int | None
    metrics: list[MetricStatus]
    judge_needs: list[str]
    next_look_at: int | None
    """The earliest time of the judge's next decision."""
    may_advance_at: int | None
    """The earliest time the step may advance (it lasts at least one bake)."""
    outcome: str | None
    outcome_reason: str | None


class HistoryRow(_View):
    rollout_id: str
    endpoint: str
    started_at: int
    model_package_arn: str
    strategy: str
    outcome: str
    reason: str | None
    reached_percent: int | None


def started_state(entries: Sequence[LedgerEntry]) -> RolloutState | None:
    """The state the rollout began with (its first entry), or None for a ledger that is not a rollout's."""
    if not entries or entries[0].kind is not EntryKind.DEPLOYMENT or "state" not in entries[0].payload:
        return None
    return RolloutState.model_validate(entries[0].payload["state"])


def _needed(metric: Metric, judge: JudgeSettings) -> int:
    return {
        Metric.ERRORS: judge.min_requests,
        Metric.LATENCY: judge.min_latency_samples,
        Metric.CONVERSION: judge.min_trials,
    }[metric]


_SAMPLE_NAMES = {Metric.ERRORS: "requests", Metric.LATENCY: "latency samples", Metric.CONVERSION: "trials"}


def _metric_status(evidence: MetricEvidence, judge: JudgeSettings) -> MetricStatus:
    needed = _needed(evidence.metric, judge)
    fewest = min(evidence.champion_samples, evidence.challenger_samples)
    still_needs: str | None = None
    if evidence.outcome is MetricOutcome.INSUFFICIENT_DATA:
        what = _SAMPLE_NAMES[evidence.metric]
        still_needs = f"{max(needed - fewest, 0)} more {what} per variant (has {fewest} of {needed})"
        if evidence.metric is Metric.LATENCY:
            still_needs += f" and {judge.min_latency_windows} minutes with latency from both"
    elif evidence.outcome is MetricOutcome.UNDECIDED:
        still_needs = (
            f"narrower bounds: beyond {evidence.harm_threshold:g} is harm, "
            f"within {evidence.promote_threshold:g} is non-inferior"
        )
    return MetricStatus(
        metric=evidence.metric.value,
        outcome=evidence.outcome.value,
        estimate=evidence.estimate,
        lower_bound=evidence.lower_bound,
        upper_bound=evidence.upper_bound,
        harm_threshold=evidence.harm_threshold,
        promote_threshold=evidence.promote_threshold,
        champion_samples=evidence.champion_samples,
        challenger_samples=evidence.challenger_samples,
        needed_samples=needed,
        still_needs=still_needs,
    )


def _int(value: JsonValue) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def rollout_status(
    entries: Sequence[LedgerEntry], *, weights: Mapping[str, float], now: int
) -> RolloutStatus | None:
    """Where the rollout is now; None if the ledger is not a rollout's."""
    state = started_state(entries)
    if state is None:
        return None
    request = state.request
    phase = "gates"
    step_index: int | None = None
    percent: int | None = None
    step_started: int | None = None
    verdict: dict[str, Any] | None = None
    verdict_at: int | None = None
    outcome: dict[str, Any] | None = None
    for entry in entries:
        payload = entry.payload
        action = payload.get("action")
        if entry.kind is EntryKind.DEPLOYMENT and action == "deploy_challenger":
            phase = "deploying"
        elif entry.kind is EntryKind.DEPLOYMENT and action == "set_weights":
            phase, step_index = "step", _int(payload.get("step"))
            percent, step_started = _int(payload.get("challenger_percent")), entry.recorded_at
            verdict = verdict_at = None
        elif entry.kind is EntryKind.DEPLOYMENT and isinstance(action, str) and "rollback" in action:
            phase = "rolling back"
        elif entry.kind is EntryKind.JUDGE_VERDICT:
            verdict, verdict_at = dict(payload), entry.recorded_at
            if payload.get("action") in {"rollback", "inconclusive"}:
                phase = "rolling back"
        elif entry.kind is EntryKind.OUTCOME:
            outcome = dict(payload)
            phase = str(payload.get("status"))
    judge = state.judge
    metrics = [
        _metric_status(MetricEvidence.model_validate(item), judge)
        for item in (verdict or {}).get("evidence", [])
    ]
    running = outcome is None and phase == "step"
    bake = request.bake_minutes * 60
    last_look = verdict_at if verdict_at is not None else step_started
    return RolloutStatus(
        rollout_id=state.rollout_id,
        endpoint=state.endpoint,
        endpoint_name=request.endpoint_name,
        model_package_arn=request.model_package_arn,
        strategy=request.strategy.value,
        phase=phase,
        started_at=state.started_at,
        traffic_steps=list(request.challenger_shares),
        step_index=step_index,
        challenger_percent=percent,
        weights=dict(weights),
        step_started_at=step_started,
        seconds_in_step=now - step_started if step_started is not None and outcome is None else None,
        bake_seconds=bake,
        verdict=verdict.get("verdict") if verdict else None,
        verdict_reason=verdict.get("reason") if verdict else None,
        action=verdict.get("action") if verdict else None,
        action_reason=verdict.get("action_reason") if verdict else None,
        judged_at=verdict_at,
        metrics=metrics,
        judge_needs=[f"{m.metric}: {m.still_needs}" for m in metrics if m.still_needs],
        next_look_at=last_look + judge.look_seconds if running and last_look is not None else None,
        may_advance_at=step_started + bake if running and step_started is not None else None,
        outcome=outcome.get("status") if outcome else None,
        outcome_reason=outcome.get("reason") if outcome else None,
    )


def history_row(entries: Sequence[LedgerEntry]) -> HistoryRow | None:
    state = started_state(entries)
    if state is None:
        return None
    outcomes = [e.payload for e in entries if e.kind is EntryKind.OUTCOME]
    reached = [
        _int(e.payload.get("challenger_percent"))
        for e in entries
        if e.kind is EntryKind.DEPLOYMENT and e.payload.get("action") == "set_weights"
    ]
    shares = [share for share in reached if share]
    return HistoryRow(
        rollout_id=state.rollout_id,
        endpoint=state.endpoint,
        started_at=state.started_at,
        model_package_arn=state.request.model_package_arn,
        strategy=state.request.strategy.value,
        outcome=str(outcomes[-1].get("status")) if outcomes else "running",
        reason=str(outcomes[-1].get("reason")) if outcomes and outcomes[-1].get("reason") else None,
        reached_percent=max(shares) if shares else None,
    )


def describe_entry(entry: LedgerEntry) -> str:
    """One ledger entry in a line a person reads."""
    p = entry.payload
    if entry.kind is EntryKind.GATE_RESULT:
        return f"gate {p.get('gate')}: {p.get('status')}"
    if entry.kind is EntryKind.JUDGE_VERDICT:
        resumed = p.get("resumed")
        by_person = (
            f"resumed by a person ({resumed.get('by')}): {resumed.get('reason')}; "
            if isinstance(resumed, dict)
            else ""
        )
        return (
            f"step {p.get('step')} at {p.get('challenger_percent')} %, look {p.get('bake')}: {by_person}"
            f"judge says {p.get('verdict')} ({p.get('reason')}); "
            f"workflow: {p.get('action')}: {p.get('action_reason')}"
        )
    if entry.kind is EntryKind.APPROVAL:
        answer = "approved" if p.get("approved", True) else "rejected"
        return f"gate before {p.get('gate')} {answer} by a person ({p.get('by')}): {p.get('reason')}"
    if entry.kind is EntryKind.TRAFFIC_STEP:
        return (
            f"step {p.get('step')} at {p.get('challenger_percent')} % served: champion "
            f"{p.get('champion_requests')} / challenger {p.get('challenger_requests')} requests"
        )
    if entry.kind is EntryKind.OUTCOME:
        reason = p.get("reason")
        return f"outcome: {p.get('status')}" + (f": {reason}" if reason else "")
    action = str(p.get("action"))
    details = {k: v for k, v in p.items() if k not in {"action", "state"}}
    if action == "rollout_started":
        return (
            f"rollout started: {p.get('model_package_arn')} ({p.get('strategy')}, "
            f"steps {p.get('challenger_shares')})"
        )
    if action == "set_weights":
        return f"weights set: challenger at {p.get('challenger_percent')} % (step {p.get('step')})"
    shown = ", ".join(f"{k}={v}" for k, v in details.items())
    return f"{action.replace('_', ' ')}: {shown}"
