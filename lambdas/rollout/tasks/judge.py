"""Judge the rollout after a look: the windows `lambdas.rollout.decision` says it sees, the judge's verdict
and the next action, recorded in the ledger.

The cost guardrail (``lambdas.rollout.guardrails``) looks at the same windows: its figures go into the
verdict's entry, and a challenger over the endpoint's ``max_cost_increase`` is rolled back for cost,
whatever the judge said (its verdict stays in the entry)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.metrics_reader import WindowQuery
from lambdas.rollout.aws.overrides import HELD
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.decision import Look, LookDecision, decide_look, evidence_range
from lambdas.rollout.guardrails import CostFromWindows, cost_over_windows
from lambdas.rollout.hold import Hold, held_step
from lambdas.rollout.judge import Metric, RolloutWindows, Verdict
from lambdas.rollout.ledger import EntryKind, traffic_payload, verdict_payload
from lambdas.rollout.notices import SUBJECT_MAX, operator_commands
from lambdas.rollout.overrides import PersonRequests, PersonResume, overridden
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.policy import PROMOTION_GATE, Response, gate_name
from lambdas.rollout.state import RolloutState, StepDecision

logger = Logger()


def judge_step(state: RolloutState, services: RolloutServices) -> RolloutState:
    if state.step_started_at is None:
        raise ValueError(f"rollout {state.rollout_id} is judged before any traffic step started")
    services.hold_lock(state)
    recorded = _recorded_step(state, services)
    warning: LookDecision | None = None
    if recorded is not None:
        step, hold, resumed = recorded
        logger.info("verdict recorded by an earlier try kept", extra={"action": step.action})
        if resumed is not None:
            state = _released(state, resumed)
        state = state.model_copy(update={"sequence": state.sequence + 1})
    else:
        requests = _requests(state, services)
        resumed = requests.resume if state.hold is not None else None
        if resumed is not None:
            state = _released(state, resumed.model_copy(update={"requested_at": services.now()}))
        look = _look(state, services)
        windows = services.windows.windows(_query(state, look))
        decision = decide_look(state.request, state.judge, look, windows, state.effective_policy())
        cost = _cost(state, windows)
        step, hold = held_step(
            _outcome(state, decision),
            held=state.hold,
            # The resume releases the pause it answers (both leave the lease after this look).
            pause=None if resumed is not None else requests.pause,
            situation=decision.situation,
            now=look.now,
            timeout_minutes=state.policy.hold_timeout_minutes,
        )
        # A person's promotion stands only where the judge showed no harm; a cost over the tolerance
        # rolls back whatever either said.
        step = _with_cost(overridden(step, requests.promotion), cost)
        if step.action is not StepAction.HOLD:
            hold = None
        logger.info(
            "judged",
            extra={"verdict": decision.result.verdict.value, "action": step.action, "reason": step.reason},
        )
        if decision.response is Response.WARN:
            warning = decision
        payload = _verdict_record(state, step, decision, cost=cost, hold=hold, resumed=resumed)
        state = services.record(state, EntryKind.JUDGE_VERDICT, payload)
    if step.action not in (StepAction.BAKE, StepAction.HOLD):
        served = traffic_payload(
            step.step_index, step.challenger_percent, step.champion_requests, step.challenger_requests
        )
        state = services.record(state, EntryKind.TRAFFIC_STEP, served)
    state = _tell_hold(state, services, step, hold, resumed)
    if warning is not None:
        state = _tell_warning(state, services, step, warning)
    advanced = step.action is StepAction.ADVANCE
    return state.model_copy(
        update={
            "steps": (*state.steps, step),
            "decision": StepDecision(action=step.action, reason=step.reason),
            "step_index": state.step_index + 1 if advanced else state.step_index,
            "bakes_done": 0 if advanced else step.bake,
            # The Wait before the next look (the decision's next_look_seconds, also on a kept verdict).
            "bake_seconds": state.judge.look_seconds,
            "hold": hold,
            "approval_needed": _gate_ahead(state, step),
        }
    )


def _verdict_record(
    state: RolloutState,
    step: StepOutcome,
    decision: LookDecision,
    *,
    cost: CostFromWindows | None,
    hold: Hold | None,
    resumed: PersonResume | None,
) -> dict[str, Any]:
    """The ledger's verdict entry: the step, and what else this look weighed (cost, hold, resume, split)."""
    payload = verdict_payload(step, decision.result)
    if cost is not None:
        payload["cost"] = cost.record()
    if hold is not None:
        payload["hold"] = hold.model_dump(mode="json")
    if resumed is not None:
        payload["resumed"] = {
            "by": resumed.by,
            "reason": resumed.reason,
            "step_started_at": state.step_started_at,
        }
    if decision.sample_ratio is not None:
        payload["sample_ratio"] = decision.sample_ratio.model_dump(mode="json")
    return payload


def _requests(state: RolloutState, services: RolloutServices) -> PersonRequests:
    if services.promotions is None:
        return PersonRequests()
    return services.promotions.requests(state.request.endpoint_name, state.rollout_id)


def _released(state: RolloutState, resumed: PersonResume) -> RolloutState:
    """The hold released by a person: the step starts over at its weights, and the situation it was
    held for is warned about from now on."""
    situation = state.hold.situation if state.hold is not None else None
    acknowledged = state.acknowledged
    if situation is not None and situation not in acknowledged:
        acknowledged = (*acknowledged, situation)
    return state.model_copy(
        update={
            "hold": None,
            "acknowledged": acknowledged,
            "step_started_at": max(resumed.requested_at, state.step_started_at or 0),
            "bakes_done": 0,
        }
    )


def _gate_ahead(state: RolloutState, step: StepOutcome) -> str | None:
    """The human gate before what the workflow does next, if the rollout has one there (a person's own
    promotion needs no other person's approval)."""
    if step.action is StepAction.ADVANCE:
        shares = state.request.challenger_shares
        share = shares[step.step_index + 1] if step.step_index + 1 < len(shares) else None
        return gate_name(share) if share in state.approval_before else None
    person = step.reason.startswith("promoted by a person")
    if step.action is StepAction.PROMOTE and PROMOTION_GATE in state.approval_before and not person:
        return gate_name(PROMOTION_GATE)
    return None


def _tell_hold(
    state: RolloutState,
    services: RolloutServices,
    step: StepOutcome,
    hold: Hold | None,
    resumed: PersonResume | None,
) -> RolloutState:
    """Keep the hold on the lease for the command, and tell on the topic when one begins."""
    if services.promotions is None:
        return state
    endpoint_name = state.request.endpoint_name
    if hold is None and (state.hold is not None or resumed is not None):
        services.promotions.keep(endpoint_name, state.rollout_id, HELD, None)
    if hold is None or state.hold == hold:
        return state
    services.promotions.keep(endpoint_name, state.rollout_id, HELD, hold.model_dump(mode="json"))
    commands = operator_commands(services.settings.environment, state.endpoint)
    minutes = (hold.timeout_at - hold.since) // 60
    message = {
        "event": "rollout_held",
        "endpoint": state.endpoint,
        "endpoint_name": endpoint_name,
        "model_package_arn": state.request.model_package_arn,
        "rollout_id": state.rollout_id,
        "step": step.step_index,
        "challenger_percent": step.challenger_percent,
        "reason": hold.describe(),
        "timeout": f"with no answer within {minutes} min the rollout ends: {hold.on_timeout.value}",
        "action": "traffic is frozen at this step; decide with one of the commands",
        "commands": commands,
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {state.endpoint} rollout HELD at {step.challenger_percent} %"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )
    return state


def _tell_warning(
    state: RolloutState, services: RolloutServices, step: StepOutcome, decision: LookDecision
) -> RolloutState:
    """Tell once per situation and step that the policy warned and went on."""
    situation = decision.situation.value if decision.situation is not None else "warning"
    key = f"{situation}@{step.step_index}"
    if key in state.warned:
        return state
    message = {
        "event": "rollout_warning",
        "endpoint": state.endpoint,
        "rollout_id": state.rollout_id,
        "situation": situation,
        "step": step.step_index,
        "challenger_percent": step.challenger_percent,
        "reason": step.reason,
        "action": f"the policy warns on {situation} and the rollout goes on; stop it with the abort command",
        "commands": operator_commands(services.settings.environment, state.endpoint),
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {state.endpoint} rollout warning: {situation}"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )
    return state.model_copy(update={"warned": (*state.warned, key)})


def _recorded_step(
    state: RolloutState, services: RolloutServices
) -> tuple[StepOutcome, Hold | None, PersonResume | None] | None:
    """This look's verdict if an earlier try of this task recorded it at the state's sequence, with the
    hold it left and the resume it applied."""
    entry = services.ledger.get(state.rollout_id, state.sequence)
    if entry is None or entry.kind is not EntryKind.JUDGE_VERDICT:
        return None
    payload = entry.payload
    resumed_payload = payload.get("resumed")
    resumed = None
    if isinstance(resumed_payload, dict):
        resumed = PersonResume(
            by=str(resumed_payload["by"]),
            reason=str(resumed_payload["reason"]),
            requested_at=int(str(resumed_payload["step_started_at"])),
        )
    bake = 1 if resumed is not None else state.bakes_done + 1
    if (payload.get("step"), payload.get("bake")) != (state.step_index, bake):
        return None
    hold_payload = payload.get("hold")
    hold = Hold.model_validate(hold_payload) if isinstance(hold_payload, dict) else None
    step = StepOutcome(
        step_index=state.step_index,
        challenger_percent=int(str(payload["challenger_percent"])),
        bake=bake,
        verdict=Verdict(str(payload["verdict"])),
        action=StepAction(str(payload["action"])),
        reason=str(payload["action_reason"]),
        champion_requests=int(str(payload.get("champion_requests", 0))),
        challenger_requests=int(str(payload.get("challenger_requests", 0))),
    )
    return step, hold, resumed


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
