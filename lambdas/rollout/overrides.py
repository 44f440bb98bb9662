"""A person's requests to a running rollout (`mlrollout promote`, `pause`, `resume`), and what the judge's
next look makes of a promotion.

The requests wait on the endpoint's lease (``lambdas.rollout.aws.overrides``), so they belong to that
rollout alone and go with its lock. At its next look the judge task turns its own action into a
promotion, recorded in the ledger as the person's, with who asked, why, and what the judge said. Harm
shown is not overridden: a rollback stays a rollback. Too little data is: that is what a person who
knows more than the traffic shows would overrule; and so is a hold, which waits for a person to decide.
A pause and its resume are the hold's (``lambdas.rollout.hold``).

Pure domain code: pydantic and the standard library.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lambdas.rollout.payloads import StepAction, StepOutcome

__all__ = ["PersonPause", "PersonPromotion", "PersonRequest", "PersonRequests", "PersonResume", "overridden"]

REASON_MAX = 1024
OVERRIDABLE = frozenset({StepAction.BAKE, StepAction.ADVANCE, StepAction.INCONCLUSIVE, StepAction.HOLD})


class PersonRequest(BaseModel):
    """Who asked, why, when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(min_length=1, max_length=2048, description="the caller's identity (an ARN)")
    reason: str = Field(min_length=1, max_length=REASON_MAX)
    requested_at: int = Field(ge=0, description="epoch seconds")


class PersonPromotion(PersonRequest):
    """Promote at the next look, where the judge shows no harm."""


class PersonPause(PersonRequest):
    """Hold the rollout at its step from the next look (`mlrollout pause`)."""


class PersonResume(PersonRequest):
    """Release the rollout's hold, a person's or the policy's (`mlrollout resume`)."""


class PersonRequests(BaseModel):
    """What waits on the rollout's lease at a look."""

    model_config = ConfigDict(frozen=True)

    promotion: PersonPromotion | None = None
    pause: PersonPause | None = None
    resume: PersonResume | None = None


def overridden(step: StepOutcome, promotion: PersonPromotion | None) -> StepOutcome:
    """The step's outcome with a person's promotion applied, where the judge showed no harm."""
    if promotion is None or step.action not in OVERRIDABLE:
        return step
    person = f"promoted by a person ({promotion.by}): {promotion.reason}"
    return step.model_copy(
        update={"action": StepAction.PROMOTE, "reason": f"{person}; the judge said: {step.reason}"}
    )
