"""Traffic arithmetic of a rollout: the weight plan, and what to do after each judge verdict.

The plan turns the challenger's share per step into the weight of each production variant, summing to
``WEIGHT_WHOLE``. The last step of a stepped rollout (100 %) is the promotion itself: with no traffic
left on the champion there is nothing to compare with, so only the steps below it are judged.

After a verdict at a step (``decide``):

* canary / linear -- rollback: roll back. promote: the next step, or the promotion after the last
  judged step. continue: bake again; once the bakes at a step are spent, move on (enough data, no harm
  shown), except at the last judged step, where only a promote verdict promotes. inconclusive: bake
  again; with the bakes spent, roll back (no data is never a pass).
* ab_test -- one fixed split until the judge answers promote or rollback, or until both variants have
  served the sample budget; a spent budget without an answer keeps the champion.
* shadow -- one judged phase on mirrored traffic: promote, roll back, or bake up to the limit.
* blue_green -- SageMaker's guardrails decide; there is nothing to judge here.

Pure domain code: no boto3, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lambdas.rollout.judge import Verdict
from lambdas.rollout.payloads import (
    WEIGHT_WHOLE,
    RolloutRequest,
    StepAction,
    Strategy,
    VariantNames,
)

__all__ = [
    "Decision",
    "DesiredWeight",
    "InvalidWeights",
    "StepPosition",
    "decide",
    "step_weights",
    "validate_weights",
    "weight_plan",
]


class InvalidWeights(ValueError):
    """Weights that cannot be set: an unknown variant, a weight outside 0-100, or not the whole."""


@dataclass(frozen=True, slots=True)
class DesiredWeight:
    """One variant's weight, as UpdateEndpointWeightsAndCapacities takes it."""

    variant_name: str
    weight: float

    def as_request(self) -> dict[str, str | float]:
        return {"VariantName": self.variant_name, "DesiredWeight": self.weight}


def step_weights(challenger_percent: int, variants: VariantNames) -> tuple[DesiredWeight, DesiredWeight]:
    """Champion and challenger weights for one challenger share; they sum to WEIGHT_WHOLE exactly."""
    if not 0 <= challenger_percent <= WEIGHT_WHOLE:
        raise InvalidWeights(
            f"a challenger share must be within 0-{WEIGHT_WHOLE} percent, got {challenger_percent}"
        )
    return (
        DesiredWeight(variants.champion, float(WEIGHT_WHOLE - challenger_percent)),
        DesiredWeight(variants.challenger, float(challenger_percent)),
    )


def weight_plan(request: RolloutRequest) -> tuple[tuple[DesiredWeight, DesiredWeight], ...]:
    """Champion and challenger weights for every step of the request, in order."""
    plan = tuple(step_weights(share, request.variants) for share in request.challenger_shares)
    for weights in plan:
        validate_weights(weights, request.variants)
    return plan


def validate_weights(weights: Sequence[DesiredWeight], variants: VariantNames) -> None:
    """Refuse weights for another variant than champion and challenger, out of range, or not the whole."""
    known = {variants.champion, variants.challenger}
    names = [weight.variant_name for weight in weights]
    unknown = sorted(set(names) - known)
    if unknown:
        raise InvalidWeights(f"unknown variant(s) {unknown}; the endpoint's variants are {sorted(known)}")
    if len(set(names)) != len(names):
        raise InvalidWeights(f"a variant is listed more than once: {names}")
    outside = [w for w in weights if not 0 <= w.weight <= WEIGHT_WHOLE]
    if outside:
        raise InvalidWeights(f"weights must be within 0-{WEIGHT_WHOLE}, got {outside}")
    total = sum(w.weight for w in weights)
    if total != WEIGHT_WHOLE:
        raise InvalidWeights(f"weights must add up to {WEIGHT_WHOLE}, got {total}")


@dataclass(frozen=True, slots=True)
class StepPosition:
    """Where a rollout stands when the judge has answered."""

    step_index: int
    bakes_done: int
    """Bakes at this step including the one just judged (1 after the first)."""
    champion_requests: int = 0
    challenger_requests: int = 0
    """Requests served so far in this rollout, per variant (the ab_test budget counts them)."""


@dataclass(frozen=True, slots=True)
class Decision:
    action: StepAction
    next_step_index: int
    reason: str


def decide(request: RolloutRequest, position: StepPosition, verdict: Verdict, reason: str = "") -> Decision:
    """What to do after the judge's verdict (and its reason) at this position."""
    if position.bakes_done < 1:
        raise ValueError(f"decide() follows a judged bake, got bakes_done={position.bakes_done}")
    if verdict is Verdict.ROLLBACK:
        return Decision(StepAction.ROLLBACK, position.step_index, f"judge: {reason or 'harm shown'}")
    if request.strategy in (Strategy.CANARY, Strategy.LINEAR):
        return _decide_stepped(request, position, verdict)
    if request.strategy is Strategy.AB_TEST:
        return _decide_ab_test(request, position, verdict)
    if request.strategy is Strategy.SHADOW:
        return _decide_single_phase(request, position, verdict)
    raise ValueError(f"{request.strategy.value} is judged by SageMaker's guardrails, not step by step")


def _decide_stepped(request: RolloutRequest, position: StepPosition, verdict: Verdict) -> Decision:
    shares = request.challenger_shares
    index = position.step_index
    if not 0 <= index < len(shares) - 1:
        raise ValueError(f"step {index} is not a judged step of a {len(shares)}-step plan")
    last_judged = index == len(shares) - 2
    here = f"at {shares[index]} % after {position.bakes_done} bake(s)"
    if verdict is Verdict.PROMOTE:
        if last_judged:
            return Decision(StepAction.PROMOTE, index + 1, f"judge: non-inferior {here}")
        return Decision(StepAction.ADVANCE, index + 1, f"judge: non-inferior {here}")
    if position.bakes_done < request.max_bakes_per_step:
        return Decision(StepAction.BAKE, index, f"judge: {verdict.value} {here}")
    if verdict is Verdict.CONTINUE and not last_judged:
        return Decision(StepAction.ADVANCE, index + 1, f"no harm shown {here}, bakes spent")
    why = "not shown non-inferior" if verdict is Verdict.CONTINUE else "too little data to judge"
    return Decision(StepAction.ROLLBACK, index, f"{why} {here}")


def _decide_ab_test(request: RolloutRequest, position: StepPosition, verdict: Verdict) -> Decision:
    if verdict is Verdict.PROMOTE:
        return Decision(StepAction.PROMOTE, position.step_index, "judge: non-inferior on the fixed split")
    budget = request.sample_budget or 0
    served = min(position.champion_requests, position.challenger_requests)
    if served >= budget:
        return Decision(
            StepAction.ROLLBACK,
            position.step_index,
            f"sample budget of {budget} requests per variant spent without an answer ({verdict.value}); "
            "the champion stays",
        )
    return Decision(StepAction.BAKE, position.step_index, f"judge: {verdict.value}, {served}/{budget} served")


def _decide_single_phase(request: RolloutRequest, position: StepPosition, verdict: Verdict) -> Decision:
    if verdict is Verdict.PROMOTE:
        return Decision(StepAction.PROMOTE, position.step_index, "judge: non-inferior on mirrored traffic")
    if position.bakes_done < request.max_bakes_per_step:
        return Decision(StepAction.BAKE, position.step_index, f"judge: {verdict.value}")
    return Decision(
        StepAction.ROLLBACK,
        position.step_index,
        f"judge still {verdict.value} after {position.bakes_done} bake(s) on mirrored traffic",
    )
