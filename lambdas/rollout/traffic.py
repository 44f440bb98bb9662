"""Traffic arithmetic of a rollout: the weight plan.

The plan turns the challenger's share per step into the weight of each production variant, summing to
``WEIGHT_WHOLE``. The last step of a stepped rollout (100 %) is the promotion itself: with no traffic
left on the champion there is nothing to compare with, so only the steps below it are judged.

What the rollout does after each look of the judge is `lambdas.rollout.decision`.

Pure domain code: no boto3, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lambdas.rollout.payloads import (
    WEIGHT_WHOLE,
    RolloutRequest,
    VariantNames,
)

__all__ = [
    "DesiredWeight",
    "InvalidWeights",
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
