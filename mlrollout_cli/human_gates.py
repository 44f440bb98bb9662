"""A person's answer at a human gate: the gate the endpoint's rollout waits at, and the answer sent on the
gate's task token (a rejection too: moto's SendTaskFailure drops the cause, and the ledger needs who and
why)."""

from __future__ import annotations

from typing import Any

from lambdas.rollout.aws.overrides import APPROVAL, PromotionRequests
from lambdas.rollout.state import GateAnswer
from mlrollout_cli.errors import CliError, ExitCode
from mlrollout_cli.platform import Platform, aws_errors


def promotion_requests(platform: Platform) -> PromotionRequests:
    """The people's requests to a running rollout, kept beside its lock."""
    return PromotionRequests(client=platform.client("dynamodb"), table_name=platform.resources.lock_table)


def waiting_gate(platform: Platform, endpoint: str) -> tuple[str, dict[str, Any]]:
    """The rollout waiting at a human gate on the endpoint, and the gate (its task token)."""
    settings = platform.endpoint(endpoint)
    with aws_errors():
        lease = platform.lease(endpoint)
        if lease is None:
            raise CliError(f"no rollout running on {endpoint}: nothing to approve", ExitCode.NOT_FOUND)
        gate = promotion_requests(platform).attribute(settings.endpoint_name, lease.holder, APPROVAL)
    if gate is None:
        raise CliError(
            f"rollout {lease.holder} on {endpoint} waits at no gate: nothing to approve or reject",
            ExitCode.NOT_FOUND,
        )
    return lease.holder, gate


def send_answer(platform: Platform, rollout_id: str, gate: dict[str, Any], answer: GateAnswer) -> None:
    """The answer on the gate's task token; refused (exit 5) when the gate no longer waits."""
    states = platform.client("stepfunctions")
    with aws_errors():
        try:
            states.send_task_success(taskToken=str(gate["task_token"]), output=answer.model_dump_json())
        except (
            states.exceptions.TaskTimedOut,
            states.exceptions.TaskDoesNotExist,
            states.exceptions.InvalidToken,
        ):
            raise CliError(
                f"the gate of {rollout_id} is no longer waiting (answered, timed out or aborted)",
                ExitCode.REFUSED,
            ) from None
