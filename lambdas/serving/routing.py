"""Which variant serves a request: flags first, then a sticky hash against the current weights.

The first rule that applies decides:

1. flags unreadable -> the champion (fail safe: a kill switch we cannot see may be on);
2. kill switch on -> the champion;
3. an allow-listed user or a pinned segment -> the pinned variant;
4. no production challenger (shadow endpoint) -> no TargetVariant: the champion is the only choice,
   and SageMaker copies the request to the shadow variant as configured;
5. a user id -> a stable point in [0, 1) per (endpoint, rollout, user); the challenger owns [0, share),
   so within a rollout a larger share only adds users and nobody in the 5 % leaves it at 25 %; the next
   rollout hashes anew, so its 5 % are a fresh draw, not the same users again;
6. otherwise -> no TargetVariant: SageMaker splits by its own weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from lambdas.flags import EndpointFlags, EndpointVariants
from lambdas.serving.ports import TrafficSplit

_HASH_BYTES = 8
_HASH_SPAN = float(2 ** (8 * _HASH_BYTES))


class RouteReason(StrEnum):
    FLAGS_UNAVAILABLE = "flags_unavailable"
    KILL_SWITCH = "kill_switch"
    USER_PIN = "user_pin"
    SEGMENT_PIN = "segment_pin"
    NO_CHALLENGER = "no_challenger"
    STICKY_HASH = "sticky_hash"
    WEIGHTS_UNAVAILABLE = "weights_unavailable"
    SAGEMAKER_SPLIT = "sagemaker_split"


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A routing input that could not be read, and why."""

    why: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The variant to target (None: let SageMaker split) and why."""

    target_variant: str | None
    reason: RouteReason
    detail: str


def hash_point(endpoint: str, user_id: str, rollout_key: str) -> float:
    """A user's fixed point in [0, 1) for an endpoint's rollout; the same on every container and run."""
    digest = hashlib.sha256(f"{endpoint}\x00{rollout_key}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") / _HASH_SPAN


def challenger_share(weights: Mapping[str, float], variants: EndpointVariants) -> float | None:
    """The challenger's fraction of the champion + challenger weight; None when both are zero."""
    champion = max(weights.get(variants.champion, 0.0), 0.0)
    challenger = max(weights.get(variants.challenger, 0.0), 0.0) if variants.challenger else 0.0
    total = champion + challenger
    return None if total <= 0.0 else challenger / total


def choose_variant(
    *,
    flags: EndpointFlags | Unavailable,
    variants: EndpointVariants,
    traffic: TrafficSplit | Unavailable,
    user_id: str | None,
    segment: str | None,
) -> RouteDecision:
    champion = variants.champion
    if isinstance(flags, Unavailable):
        return RouteDecision(champion, RouteReason.FLAGS_UNAVAILABLE, f"flags unavailable: {flags.why}")
    if flags.kill_switch.on:
        why = flags.kill_switch.reason or "no reason given"
        return RouteDecision(champion, RouteReason.KILL_SWITCH, f"kill switch on: {why}")
    pinned = _pin(flags, user_id=user_id, segment=segment)
    if pinned is not None:
        return pinned
    if variants.challenger is None:
        only = "the champion is the only production variant; no target needed"
        return RouteDecision(None, RouteReason.NO_CHALLENGER, only)
    if user_id is None:
        return RouteDecision(None, RouteReason.SAGEMAKER_SPLIT, "no user id: SageMaker splits by weight")
    return _sticky(variants, variants.challenger, traffic, user_id)


def _pin(flags: EndpointFlags, *, user_id: str | None, segment: str | None) -> RouteDecision | None:
    # Asked one key at a time to tell the reasons apart; the user allow-list is asked first, as it wins.
    by_user = flags.pinned_variant(user_id=user_id, segment=None)
    if by_user is not None:
        return RouteDecision(by_user, RouteReason.USER_PIN, "user id is on the allow-list")
    by_segment = flags.pinned_variant(user_id=None, segment=segment)
    if by_segment is not None:
        return RouteDecision(by_segment, RouteReason.SEGMENT_PIN, f"segment {segment!r} is pinned")
    return None


def _sticky(
    variants: EndpointVariants, challenger: str, traffic: TrafficSplit | Unavailable, user_id: str
) -> RouteDecision:
    if isinstance(traffic, Unavailable):
        why = f"weights unavailable ({traffic.why}): SageMaker splits by weight"
        return RouteDecision(None, RouteReason.WEIGHTS_UNAVAILABLE, why)
    share = challenger_share(traffic.weights, variants)
    if share is None:
        return RouteDecision(None, RouteReason.SAGEMAKER_SPLIT, "no weight on champion or challenger")
    point = hash_point(variants.endpoint, user_id, traffic.rollout_key)
    variant = challenger if point < share else variants.champion
    why = f"user bucket {point:.4f}, challenger share {share:.4f}"
    return RouteDecision(variant, RouteReason.STICKY_HASH, why)
