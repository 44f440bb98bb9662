"""The rollout workflow's state: the one object every task of the state machine takes and returns.

Each Lambda reads the state, does its step, and returns the state with its own part filled in. The
state machine's Choice states read ``gates.passed``, ``deployment.status``, ``decision.action`` and
``request.strategy`` and ``outcome``, its Wait states ``bake_seconds``; a Catch puts the failure in
``error``. Promotion and rollback each update the endpoint and come back once the update has ended to
record the outcome (``outcome`` is set then).

``sequence`` is the next free place in the evidence ledger. A task writes its entries from there and
returns the state moved past them, so a retried task (same input) writes the same keys again and the
ledger keeps one copy.

Pure domain code: pydantic and the standard library only.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambdas.gates import GateSettings
from lambdas.rollout.guardrails import CostBasis, GuardrailSettings
from lambdas.rollout.hold import Hold
from lambdas.rollout.judge_settings import JudgeSettings
from lambdas.rollout.payloads import OutcomeStatus, RolloutRequest, StepAction, StepOutcome
from lambdas.rollout.policy import GateStep, Response, Situation, SituationPolicy
from lambdas.shared.business_metric import BusinessMetricName

__all__ = [
    "DeploymentStatus",
    "EndpointBusy",
    "GateAnswer",
    "GatesStatus",
    "RolloutState",
    "StepDecision",
    "TaskError",
]

SEQUENCE_START = 0


class EndpointBusy(Exception):
    """The endpoint is being updated; the state machine retries the task with backoff."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatesStatus(_Frozen):
    passed: bool
    reason: str


class DeploymentStatus(_Frozen):
    """Where the last UpdateEndpoint of the rollout stands."""

    status: Literal["updating", "in_service", "failed"]
    config_name: str = Field(min_length=1)
    reason: str = ""


class StepDecision(_Frozen):
    action: StepAction
    reason: str


class GateAnswer(_Frozen):
    """What `mlrollout approve` sends back to the gate's task token."""

    gate: str = Field(min_length=1)
    approved: bool = Field(default=True, description="False: rejected, the rollout is rolled back")
    by: str = Field(min_length=1, max_length=2048)
    reason: str = Field(default="", max_length=1024)
    answered_at: int = Field(ge=0)


class TaskError(BaseModel):
    """What a Catch with ``ResultPath: "$.error"`` puts in the state."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str = Field(default="", alias="Cause")

    @field_validator("cause", mode="before")
    @classmethod
    def _no_cause_is_empty(cls, cause: Any) -> Any:
        """A Catch may carry a null Cause (a timeout, a task failure sent without one)."""
        return "" if cause is None else cause

    def describe(self) -> str:
        """`Error: message`; a Lambda's Cause is a JSON document whose errorMessage says what happened."""
        try:
            cause: Any = json.loads(self.cause)
        except json.JSONDecodeError:
            cause = self.cause
        message = cause.get("errorMessage", self.cause) if isinstance(cause, dict) else self.cause
        return f"{self.error}: {message}" if message else self.error


class RolloutState(_Frozen):
    rollout_id: str = Field(min_length=1, max_length=256, description="the execution id; holds the lock")
    endpoint: str = Field(min_length=1, description="the logical endpoint name (ENDPOINTS key)")
    request: RolloutRequest
    started_at: int = Field(ge=0, description="epoch seconds, when the lock was taken")
    bake_seconds: int = Field(ge=1, description="how long each Wait before a judge lasts")
    execution_role_arn: str
    business_metric: BusinessMetricName
    judge: JudgeSettings = JudgeSettings()
    gate_settings: GateSettings = GateSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    cost_basis: CostBasis | None = Field(
        default=None, description="the champion's instance type, count and price as the rollout started"
    )
    sequence: int = Field(default=SEQUENCE_START, ge=0, description="the next free ledger sequence")
    step_index: int = Field(default=0, ge=0)
    bakes_done: int = Field(default=0, ge=0, description="judged bakes at the current step")
    step_started_at: int | None = Field(default=None, description="epoch seconds, weights of this step set")
    champion_model: str | None = Field(default=None, description="the champion's model before the rollout")
    challenger_model: str | None = None
    steps: tuple[StepOutcome, ...] = ()
    gates: GatesStatus | None = None
    deployment: DeploymentStatus | None = None
    decision: StepDecision | None = None
    error: TaskError | None = None
    rollback_reason: str | None = Field(
        default=None, description="why the rollback began; kept while it waits for its endpoint update"
    )
    rollback_error: TaskError | None = Field(
        default=None, description="the rollback function's own failure, caught; `error` keeps the reason"
    )
    restores: int = Field(default=0, ge=0, description="restoring updates the rollback has sent")
    lease_seconds: int = Field(
        default=2 * 3600, ge=1, description="how long the lock's lease lasts from each renewal (the plan's)"
    )
    generation: int = Field(
        default=0, ge=0, description="the lock's generation this execution writes under (its fencing token)"
    )
    settle_until: int | None = Field(
        default=None,
        description="epoch seconds: until then a task of the stopped execution may still land; the "
        "rollback of an abort records its outcome only after",
    )
    outcome: OutcomeStatus | None = Field(default=None, description="set once the outcome is recorded")
    policy: SituationPolicy = SituationPolicy()
    approval_before: tuple[GateStep, ...] = Field(default=(), description="the human gates of the rollout")
    hold: Hold | None = Field(
        default=None, description="set while the rollout is held (lambdas/rollout/hold.py)"
    )
    acknowledged: tuple[Situation, ...] = Field(
        default=(), description="situations a person resumed a hold for: warned about from then on"
    )
    warned: tuple[str, ...] = Field(default=(), description="'situation@step' already told as a warning")
    approval_needed: str | None = Field(
        default=None, description="the gate ('50 %', 'promote') the workflow asks a person to approve next"
    )
    approval: GateAnswer | None = Field(default=None, description="a person's approval, as the gate got it")
    approval_timeout_seconds: int = Field(
        default=240 * 60, ge=60, description="how long a human gate waits (the policy's hold timeout)"
    )

    def effective_policy(self) -> SituationPolicy:
        """The policy with the situations a person resumed a hold for answered by a warning."""
        if not self.acknowledged:
            return self.policy
        update: dict[str, Any] = {situation.value: Response.WARN for situation in self.acknowledged}
        return self.policy.model_copy(update=update)

    def dump(self) -> dict[str, Any]:
        """The JSON the state machine carries (the Catch's keys as Step Functions spells them)."""
        return self.model_dump(mode="json", by_alias=True)

    def failure_reason(self) -> str:
        """Why the rollout is being rolled back: a task's failure, else the judge, gates or deployment."""
        if self.rollback_reason is not None:
            return self.rollback_reason
        if self.error is not None:
            if self.error.error == "States.Timeout" and self.approval_needed is not None:
                minutes = self.approval_timeout_seconds // 60
                return f"no answer at the human gate before {self.approval_needed} within {minutes} min"
            return self.error.describe()
        stopped = (StepAction.ROLLBACK, StepAction.INCONCLUSIVE)
        if self.decision is not None and self.decision.action in stopped:
            return self.decision.reason
        if self.gates is not None and not self.gates.passed:
            return f"gates: {self.gates.reason}"
        if self.deployment is not None and self.deployment.status == "failed":
            return f"deployment: {self.deployment.reason}"
        return "rolled back without a recorded reason"

    def stopped_for_too_little_data(self) -> bool:
        """The judge stopped the rollout for too little data, and that is still why it is being rolled
        back (an abort or a task's failure before the rollback began would be the reason instead)."""
        decision = self.decision
        return (
            decision is not None
            and decision.action is StepAction.INCONCLUSIVE
            and self.failure_reason() == decision.reason
        )
