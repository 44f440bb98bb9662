"""A person's promotion of a running rollout (`mlrollout promote`), and what the judge's next look makes
of it.

The request waits on the endpoint's lease (``lambdas.rollout.aws.overrides``), so it belongs to that
rollout alone and goes with its lock. At its next look the judge task turns its own action into a
promotion, recorded in the ledger as the person's, with who asked, why, and what the judge said. Harm
shown is not overridden: a rollback stays a rollback. Too little data is: that is what a person who
knows more than the traffic shows would overrule.

Pure domain code: pydantic and the standard library.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lambdas.rollout.payloads import StepAction, StepOutcome

__all__ = ["PersonPromotion", "overridden"]

REASON_MAX = 1024
OVERRIDABLE = frozenset({StepAction.BAKE, StepAction.ADVANCE, StepAction.INCONCLUSIVE})


class PersonPromotion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(min_length=1, max_length=2048, description="the caller's identity (an ARN)")
    reason: str = Field(min_length=1, max_length=REASON_MAX)
    requested_at: int = Field(ge=0, description="epoch seconds")


def overridden(step: StepOutcome, promotion: PersonPromotion | None) -> StepOutcome:
    """The step's outcome with a person's promotion applied, where the judge showed no harm."""
    if promotion is None or step.action not in OVERRIDABLE:
        return step
    person = f"promoted by a person ({promotion.by}): {promotion.reason}"
    return step.model_copy(
        update={"action": StepAction.PROMOTE, "reason": f"{person}; the judge said: {step.reason}"}
    )
