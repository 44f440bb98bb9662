"""A held rollout: traffic frozen at its step until a person resumes, promotes or aborts it, or the hold
times out.

A hold begins where the policy answers a situation with `hold` (``lambdas.rollout.policy``) or a person
pauses the rollout (`mlrollout pause`). While held, the judge still looks every minute: harm the policy
rolls back for rolls back, and a person's promotion promotes; every other action becomes `hold`. A
resume (`mlrollout resume`) releases it at the next look: the step starts over at its weights, and the
situation it was held for is only warned about for the rest of the rollout (the person has seen it).
A hold nobody releases ends ``hold_timeout_minutes`` after it began as its situation would have ended
without it: rolled back, or stopped as inconclusive for too little data.

Pure domain code: pydantic and the standard library.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lambdas.rollout.overrides import PersonPause
from lambdas.rollout.payloads import StepAction, StepOutcome
from lambdas.rollout.policy import Situation

__all__ = ["POLICY", "Hold", "held_step"]

POLICY = "policy"
"""Who holds a rollout the policy held (a person's hold names the person's ARN)."""
# What keeps going while held: the judge's own stops and a person's promotion are not held back.
_FROZEN = frozenset({StepAction.BAKE, StepAction.ADVANCE, StepAction.PROMOTE, StepAction.HOLD})


class Hold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    since: int = Field(ge=0, description="epoch seconds")
    timeout_at: int = Field(ge=0, description="epoch seconds: the hold's stop after this")
    by: str = Field(min_length=1, description="'policy', or the ARN of the person who paused")
    reason: str = Field(min_length=1)
    situation: Situation | None = Field(default=None, description="what the policy held for; None: a pause")
    on_timeout: StepAction = Field(
        default=StepAction.ROLLBACK, description="rollback, or inconclusive for too little data"
    )

    def describe(self) -> str:
        who = "the policy" if self.by == POLICY else f"a person ({self.by})"
        return f"held by {who}: {self.reason}"


def held_step(
    step: StepOutcome,
    *,
    held: Hold | None,
    pause: PersonPause | None,
    situation: Situation | None,
    now: int,
    timeout_minutes: int,
) -> tuple[StepOutcome, Hold | None]:
    """The look's outcome under a hold, and the hold from now on (None: not held)."""
    if held is None:
        if step.action is StepAction.HOLD:
            stop = StepAction.INCONCLUSIVE if situation is Situation.TOO_LITTLE_DATA else StepAction.ROLLBACK
            hold = Hold(
                since=now,
                timeout_at=now + timeout_minutes * 60,
                by=POLICY,
                reason=step.reason,
                situation=situation,
                on_timeout=stop,
            )
            return step, hold
        if pause is None or step.action not in _FROZEN:
            return step, None
        held = Hold(since=now, timeout_at=now + timeout_minutes * 60, by=pause.by, reason=pause.reason)
        return _frozen(step, held), held
    if step.action not in _FROZEN:
        return step, None  # the judge's own stop ends the hold
    if now >= held.timeout_at:
        minutes = (now - held.since) // 60
        reason = f"hold timed out after {minutes} min with no resume, promote or abort ({held.describe()})"
        return step.model_copy(update={"action": held.on_timeout, "reason": reason}), None
    return _frozen(step, held), held


def _frozen(step: StepOutcome, hold: Hold) -> StepOutcome:
    if step.action is StepAction.HOLD and hold.by == POLICY:
        return step
    return step.model_copy(
        update={"action": StepAction.HOLD, "reason": f"{hold.describe()}; the judge said: {step.reason}"}
    )
