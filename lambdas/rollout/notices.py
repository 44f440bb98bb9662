"""The commands a notification gives a person, exactly as they are typed (docs/cli.md).

Pure domain code: the standard library only.
"""

from __future__ import annotations

__all__ = ["SUBJECT_MAX", "gate_commands", "operator_commands"]

SUBJECT_MAX = 100
"""SNS refuses a longer subject."""


def _mlrollout(environment: str | None) -> str:
    return f"mlrollout --env {environment}" if environment else "mlrollout"


def operator_commands(environment: str | None, endpoint: str) -> dict[str, str]:
    """What a person may do about a held (or warned) rollout."""
    command = _mlrollout(environment)
    return {
        "resume": f"{command} resume {endpoint}",
        "promote": f'{command} promote {endpoint} --reason "..."',
        "abort": f'{command} abort {endpoint} --reason "..."',
    }


def gate_commands(environment: str | None, endpoint: str) -> dict[str, str]:
    """What a person may answer a human gate."""
    command = _mlrollout(environment)
    return {
        "approve": f"{command} approve {endpoint}",
        "reject": f'{command} reject {endpoint} --reason "..."',
    }
