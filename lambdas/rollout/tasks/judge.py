"""Judge the rollout after a look: the windows `lambdas.rollout.decision` says it sees, the judge's verdict
and the next action, recorded in the ledger.

The cost guardrail (``lambdas.rollout.guardrails``) looks at the same windows: its figures go into the
verdict's entry, and a challenger over the endpoint's ``max_cost_increase`` is rolled back for cost,
whatever the judge said (its verdict stays in the entry)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.metrics_reader import WindowQuery
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.decision import Look, LookDecision, decide_look, evidence_range
from lambdas.rollout.guardrails import CostFromWindows, cost_over_windows
from lambdas.rollout.judge import Metric, RolloutWindows, Verdict
from lambdas.rollout.ledger import EntryKind, traffic_payload, verdict_payload
from lambdas.rollout.overrides import PersonPromotion, overridden
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.state import RolloutState, StepDecision

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
        look = _look(state, services)
        windows = services.windows.windows(_query(state, look))
        decision = decide_look(state.request, state.judge, look, windows)
        cost = _cost(state, windows)
        # A person's promotion stands only where the judge showed no harm; a cost over the tolerance
        # rolls back whatever either said.
        step = _with_cost(overridden(_outcome(state, decision), _promotion(state, services)), cost)
        logger.info(
            "judged",
            extra={"verdict": decision.result.verdict.value, "action": step.action, "reason": step.reason},
        )
        payload = verdict_payload(step, decision.result)
        if cost is not None:
            payload["cost"] = cost.record()
        if decision.sample_ratio is not None:
            payload["sample_ratio"] = decision.sample_ratio.model_dump(mode="json")
        state = services.record(state, EntryKind.JUDGE_VERDICT, payload)
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
            # The Wait before the next look (the decision's next_look_seconds, also on a kept verdict).
            "bake_seconds": state.judge.look_seconds,
        }
    )


def _promotion(state: RolloutState, services: RolloutServices) -> PersonPromotion | None:
    if services.promotions is None:
        return None
    return services.promotions.pending(state.request.endpoint_name, state.rollout_id)


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


def _look(state: RolloutState, services: RolloutServices) -> Look:
    step_started_at = state.step_started_at or 0
    return Look(
        rollout_started_at=min(state.started_at, step_started_at),
        step_index=state.step_index,
        step_started_at=step_started_at,
        looks_done=state.bakes_done,
        now=max(int(services.now()), step_started_at),
    )


def _query(state: RolloutState, look: Look) -> WindowQuery:
    start, end = evidence_range(look)
    request = state.request
    return WindowQuery(
        endpoint_name=request.endpoint_name,
        champion=request.variants.champion,
        challenger=request.challenger_slot,
        business_metric=state.business_metric,
        start=start,
        end=end,
        # Percentiles are read only when latency is judged (they cost more, and not every source has them).
        latency_statistic=state.judge.latency_statistic
        if Metric.LATENCY in state.judge.metrics
        else "average",
    )


def _cost(state: RolloutState, windows: RolloutWindows) -> CostFromWindows | None:
    """The cost comparison over the rollout's windows; None where nothing can be priced (serverless)."""
    if state.cost_basis is None:
        return None
    return cost_over_windows(
        windows,
        basis=state.cost_basis,
        max_increase=state.guardrails.max_cost_increase,
        min_latency_samples=state.judge.min_latency_samples,
    )


def _with_cost(step: StepOutcome, cost: CostFromWindows | None) -> StepOutcome:
    """The step rolled back for cost when the challenger is over its tolerance: whatever the judge said (a
    rollback of its own keeps its reason after the cost's). The cost needs only the latency samples, the
    judge's latency its windows as well: a slow challenger is rolled back for cost no later than for
    latency."""
    if cost is None or cost.comparison is None or not cost.comparison.over_tolerance:
        return step
    reason = cost.comparison.reason()
    if step.action is StepAction.ROLLBACK:
        reason = f"{reason}; and {step.reason}"
    return step.model_copy(update={"action": StepAction.ROLLBACK, "reason": reason})


def _outcome(state: RolloutState, decision: LookDecision) -> StepOutcome:
    shares = state.request.challenger_shares
    return StepOutcome(
        step_index=state.step_index,
        challenger_percent=shares[state.step_index] if state.step_index < len(shares) else 0,
        bake=state.bakes_done + 1,
        verdict=decision.result.verdict,
        action=decision.action,
        reason=decision.reason,
        champion_requests=decision.champion_requests,
        challenger_requests=decision.challenger_requests,
    )
