"""What a rollout does in each situation the judge can meet: roll back, hold, or warn and go on.

A table keyed by situation (``harm``, ``too_little_data``, ``sample_ratio_mismatch``), each `rollback`
(today's behaviour: harm and a sample-ratio mismatch roll back, too little data stops the rollout as
inconclusive), `hold` (traffic frozen at the current step, a person told, the workflow waiting for
`mlrollout resume`, `promote` or `abort` until ``hold_timeout_minutes``, then the stop the situation would
have had) or `warn` (told, and the rollout goes on). Harm may be given per metric; the strictest response
among the metrics that show it applies. A new situation is one more field, `rollback` by default.

Also an endpoint's human gates (``approval_before``): a person approves before the named steps.

Pure domain code: pydantic and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambdas.rollout.judge_settings import Metric

__all__ = [
    "DEFAULT_POLICY",
    "PROMOTION_GATE",
    "Response",
    "Situation",
    "SituationPolicy",
    "gate_name",
]

PROMOTION_GATE = "promote"
"""The name of the gate before the promotion in ``approval_before`` (the others are step shares)."""
GateStep = Annotated[int, Field(ge=1, le=100)] | Literal["promote"]


class Response(StrEnum):
    ROLLBACK = "rollback"
    HOLD = "hold"
    WARN = "warn"


# How strict each response is: among several metrics showing harm, the strictest answer applies.
_STRICTNESS = {Response.WARN: 0, Response.HOLD: 1, Response.ROLLBACK: 2}


class Situation(StrEnum):
    HARM = "harm"
    TOO_LITTLE_DATA = "too_little_data"
    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"


class SituationPolicy(BaseModel):
    """The environment config's `rollout.policy` (per endpoint too); every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    harm: Response | dict[Metric, Response] = Field(
        default=Response.ROLLBACK,
        description="the judge shows harm: one response, or one per metric (a metric not named: rollback)",
    )
    too_little_data: Response = Field(
        default=Response.ROLLBACK,
        description="the traffic cannot serve the judge's minimum samples: rollback stops the rollout as "
        "inconclusive (the champion serves again)",
    )
    sample_ratio_mismatch: Response = Field(
        default=Response.ROLLBACK,
        description="the variants' served shares are not the weights the rollout set",
    )
    hold_timeout_minutes: int = Field(
        default=240,
        ge=1,
        le=7 * 24 * 60,
        description="a hold nobody resumes, promotes or aborts ends this long after it began, as the "
        "situation would have ended without the hold",
    )

    @field_validator("harm", mode="before")
    @classmethod
    def _one_response_or_one_per_metric(cls, harm: Any) -> Any:
        """One clear problem instead of the union's two."""
        responses = [r.value for r in Response]
        if isinstance(harm, str):
            if harm not in responses:
                raise ValueError(f"should be one of {responses} or one per metric, got {harm!r}")
            return harm
        if isinstance(harm, dict):
            if not harm:
                raise ValueError("name at least one metric, or give one response for all")
            metrics = [m.value for m in Metric]
            for metric, response in harm.items():
                if metric not in metrics:
                    raise ValueError(f"unknown metric {metric!r}: the metrics are {metrics}")
                if response not in responses:
                    raise ValueError(f"{metric}: should be one of {responses}, got {response!r}")
            return harm
        return harm

    def response(self, situation: Situation, metrics: Iterable[Metric] = ()) -> Response:
        """The response to `situation`; for harm, the strictest among the `metrics` that show it."""
        if situation is not Situation.HARM:
            answer: Response = getattr(self, situation.value)
            return answer
        harm = self.harm
        if isinstance(harm, Response):
            return harm
        responses = [harm.get(metric, Response.ROLLBACK) for metric in metrics] or [Response.ROLLBACK]
        return max(responses, key=_STRICTNESS.__getitem__)

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_POLICY


DEFAULT_POLICY = SituationPolicy()


def gate_name(step: int | str) -> str:
    """How a gate is named in the ledger, the notification and the CLI: `50 %` or `promote`."""
    return PROMOTION_GATE if step == PROMOTION_GATE else f"{step} %"
