"""What the serving domain needs from the outside world, and the faults those parts can report.

Adapters in `lambdas/serving/aws/` implement these with boto3; tests pass small fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lambdas.flags import FlagSet

JsonScalar = str | int | float | bool | None


class ServingError(Exception):
    """Base of the faults the handlers turn into HTTP answers."""


class FlagsUnavailable(ServingError):
    """The flags could not be read or parsed; the router then serves the champion."""


class WeightsUnavailable(ServingError):
    """The endpoint's current variant weights could not be read."""


class UnknownEndpoint(ServingError):
    """A logical endpoint name that this deployment does not serve."""


class InvocationFailed(ServingError):
    """The model call failed; `status` is the HTTP status the caller should see."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class InferenceNotFound(ServingError):
    """No inference with this id, or its record expired."""


class OutcomeAlreadyRecorded(ServingError):
    """Feedback for this inference was recorded before; an outcome counts once."""


class StoreUnavailable(ServingError):
    """The inference store failed (throttled or down); nothing was recorded."""


class Forbidden(ServingError):
    """The caller has no IAM identity, or is not the principal the inference was served to."""


class FeedbackRejected(ServingError):
    """Feedback that is well formed but does not fit its inference (e.g. label count)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """What the endpoint answered and which production variant answered it."""

    variant: str
    body: Any


@dataclass(frozen=True, slots=True)
class InferenceRecord:
    """One prediction as stored for its later feedback."""

    inference_id: str
    endpoint: str
    endpoint_name: str
    variant: str
    records: int
    predicted_labels: tuple[JsonScalar, ...] | None
    created_at: int
    expires_at: int
    caller: str
    """The principal served (`<account>:<role or user id>`); only it may report the outcome."""
    outcome_recorded: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """A scored outcome: one value per record (1.0 correct or converted, 0.0 not)."""

    kind: str
    values: tuple[float, ...]


class FlagSource(Protocol):
    def flags(self) -> FlagSet:
        """The current flags; raises FlagsUnavailable."""
        ...


@dataclass(frozen=True, slots=True)
class TrafficSplit:
    """An endpoint's current weight per production variant, and the rollout those weights belong to.

    `rollout_key` salts the sticky hash: the same within a rollout (stickiness, monotone growth), new with
    each, so that a rollout's first 5 % are not the previous one's. It is the running endpoint config's
    name: the rollout workflow deploys one config per rollout (named from the rollout id) and shifts
    traffic on it without changing it.
    """

    weights: Mapping[str, float]
    rollout_key: str


class WeightSource(Protocol):
    def traffic(self, endpoint_name: str) -> TrafficSplit:
        """Current weight of each production variant and the rollout key; raises WeightsUnavailable."""
        ...


class ModelInvoker(Protocol):
    def invoke(
        self, *, endpoint_name: str, instances: Sequence[Any], target_variant: str | None, inference_id: str
    ) -> Invocation:
        """Call the endpoint; raises InvocationFailed."""
        ...


class InferenceStore(Protocol):
    def save(self, record: InferenceRecord) -> None: ...

    def load(self, inference_id: str, *, now: int) -> InferenceRecord:
        """The live record, with or without an outcome; raises InferenceNotFound (also when expired)."""
        ...

    def record_outcome(self, inference_id: str, outcome: Outcome, *, now: int) -> None:
        """Store the outcome once; raises InferenceNotFound or OutcomeAlreadyRecorded."""
        ...
