"""A human gate: ask a person to approve the rollout's next step (or its promotion), then record who did.

The workflow waits on a Step Functions task token (`.waitForTaskToken`, with the policy's hold timeout):
``ask_approval`` leaves the token and the gate on the endpoint's lease, where `mlrollout approve` and
`reject` find it (they send SendTaskSuccess / SendTaskFailure), and tells the topic the exact commands.
Traffic stays at the current step meanwhile. An approval comes back as the state's ``approval``;
``record_approval`` writes the answer to the ledger as the person's and clears the gate; a rejection
(`mlrollout reject`, an answer with ``approved: false``: SendTaskSuccess, so that who and why reach the
ledger whatever carries a task failure's cause) becomes a rollback decision naming them. The timeout
fails the waiting task into the rollback path, which says which gate waited how long.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from pydantic import JsonValue

from lambdas.rollout.aws.overrides import APPROVAL
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.ledger import EntryKind
from lambdas.rollout.notices import SUBJECT_MAX, gate_commands
from lambdas.rollout.payloads import StepAction
from lambdas.rollout.state import RolloutState, StepDecision

__all__ = ["ask_approval", "record_approval"]

logger = Logger()


def ask_approval(state: RolloutState, task_token: str, services: RolloutServices) -> None:
    gate = state.approval_needed
    if gate is None:
        raise ValueError(f"rollout {state.rollout_id} asks for an approval without a gate")
    services.hold_lock(state)
    now = services.now()
    timeout_minutes = state.policy.hold_timeout_minutes
    if services.promotions is not None:
        waiting = {
            "gate": gate,
            "task_token": task_token,
            "asked_at": now,
            "timeout_at": now + 60 * timeout_minutes,
        }
        services.promotions.keep(state.request.endpoint_name, state.rollout_id, APPROVAL, waiting)
    shares = state.request.challenger_shares
    current = shares[state.step_index] if state.step_index < len(shares) else 0
    message = {
        "event": "rollout_approval_needed",
        "endpoint": state.endpoint,
        "endpoint_name": state.request.endpoint_name,
        "model_package_arn": state.request.model_package_arn,
        "rollout_id": state.rollout_id,
        "gate": gate,
        "challenger_percent": current,
        "judge": state.decision.reason if state.decision is not None else "",
        "action": f"approve before {gate}: traffic stays at {current} % until a person answers; with no "
        f"answer within {timeout_minutes} min the rollout is rolled back",
        "commands": gate_commands(services.settings.environment, state.endpoint),
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {state.endpoint} rollout waits for approval before {gate}"[:SUBJECT_MAX],
        Message=json.dumps(message, indent=2),
    )
    logger.info("approval asked", extra={"gate": gate})


def record_approval(state: RolloutState, services: RolloutServices) -> RolloutState:
    """The person's answer in the ledger; a rejection turns the decision into a rollback naming them."""
    answer = state.approval
    if answer is None:
        raise ValueError(f"rollout {state.rollout_id} records an answer at a gate it did not get")
    services.hold_lock(state)
    payload: dict[str, JsonValue] = {
        "gate": answer.gate,
        "approved": answer.approved,
        "by": answer.by,
        "reason": answer.reason,
        "answered_at": answer.answered_at,
        "step": state.step_index,
    }
    state = services.record(state, EntryKind.APPROVAL, payload)
    if services.promotions is not None:
        services.promotions.keep(state.request.endpoint_name, state.rollout_id, APPROVAL, None)
    update: dict[str, object] = {"approval": None, "approval_needed": None}
    if not answer.approved:
        reason = f"rejected at the human gate before {answer.gate} by a person ({answer.by}): {answer.reason}"
        update["decision"] = StepDecision(action=StepAction.ROLLBACK, reason=reason)
    logger.info("gate answered", extra={"gate": answer.gate, "approved": answer.approved})
    return state.model_copy(update=update)
