"""Judge the current step: the variants' windows since the step started, the judge's verdict, the next action.

The window ends at the end of this bake (step start + bakes x bake time) or now, whichever is earlier,
so a retried judge asks CloudWatch about the same minutes. CloudWatch may still have received late
datapoints for them since: a retry whose verdict is already in the ledger keeps that verdict (the first
judgment stands, and the ledger never holds two) instead of judging again.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.metrics_reader import WindowQuery
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.judge import RolloutWindows, Verdict, judge
from lambdas.rollout.ledger import EntryKind, traffic_payload, verdict_payload
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.state import RolloutState, StepDecision
from lambdas.rollout.traffic import StepPosition, decide

logger = Logger()


def judge_step(state: RolloutState, services: RolloutServices) -> RolloutState:
    if state.step_started_at is None:
        raise ValueError(f"rollout {state.rollout_id} is judged before any traffic step started")
    services.hold_lock(state)
    recorded = _recorded_step(state, services)
    if recorded is not None:
        step = recorded
        logger.info("verdict recorded by an earlier try kept", extra={"action": step.action})
        state = state.model_copy(update={"sequence": state.sequence + 1})
    else:
        windows = services.windows.windows(_query(state, services))
        result = judge(windows, state.judge)
        step = _outcome(state, windows, result.verdict, result.reason)
        logger.info(
            "judged", extra={"verdict": result.verdict.value, "action": step.action, "reason": step.reason}
        )
        state = services.record(state, EntryKind.JUDGE_VERDICT, verdict_payload(step, result))
    if step.action is not StepAction.BAKE:
        served = traffic_payload(
            step.step_index, step.challenger_percent, step.champion_requests, step.challenger_requests
        )
        state = services.record(state, EntryKind.TRAFFIC_STEP, served)
    advanced = step.action is StepAction.ADVANCE
    return state.model_copy(
        update={
            "steps": (*state.steps, step),
            "decision": StepDecision(action=step.action, reason=step.reason),
            "step_index": state.step_index + 1 if advanced else state.step_index,
            "bakes_done": 0 if advanced else step.bake,
        }
    )


def _recorded_step(state: RolloutState, services: RolloutServices) -> StepOutcome | None:
    """This bake's verdict if an earlier try of this task recorded it at the state's sequence."""
    entry = services.ledger.get(state.rollout_id, state.sequence)
    if entry is None or entry.kind is not EntryKind.JUDGE_VERDICT:
        return None
    payload = entry.payload
    if (payload.get("step"), payload.get("bake")) != (state.step_index, state.bakes_done + 1):
        return None
    return StepOutcome(
        step_index=state.step_index,
        challenger_percent=int(str(payload["challenger_percent"])),
        bake=state.bakes_done + 1,
        verdict=Verdict(str(payload["verdict"])),
        action=StepAction(str(payload["action"])),
        reason=str(payload["action_reason"]),
        champion_requests=int(str(payload.get("champion_requests", 0))),
        challenger_requests=int(str(payload.get("challenger_requests", 0))),
    )


def _query(state: RolloutState, services: RolloutServices) -> WindowQuery:
    start = state.step_started_at or 0
    request = state.request
    return WindowQuery(
        endpoint_name=request.endpoint_name,
        champion=request.variants.champion,
        challenger=request.challenger_slot,
        business_metric=state.business_metric,
        start=start,
        end=min(services.now(), start + (state.bakes_done + 1) * state.bake_seconds),
        latency_statistic=state.judge.latency_statistic,
    )


def _outcome(state: RolloutState, windows: RolloutWindows, verdict: Verdict, reason: str) -> StepOutcome:
    champion_requests = sum(window.requests for window in windows.champion)
    challenger_requests = sum(window.requests for window in windows.challenger)
    position = StepPosition(state.step_index, state.bakes_done + 1, champion_requests, challenger_requests)
    decision = decide(state.request, position, verdict, reason)
    shares = state.request.challenger_shares
    return StepOutcome(
        step_index=state.step_index,
        challenger_percent=shares[state.step_index] if state.step_index < len(shares) else 0,
        bake=position.bakes_done,
        verdict=verdict,
        action=decision.action,
        reason=decision.reason,
        champion_requests=champion_requests,
        challenger_requests=challenger_requests,
    )
