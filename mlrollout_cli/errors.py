"""What goes wrong for a person running the command, each with its own exit code."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CliError", "ExitCode"]


class ExitCode(IntEnum):
    USAGE = 2
    """Bad input (click uses 2 for its own usage errors too)."""
    NOT_FOUND = 3
    """An unknown endpoint or rollout, or no rollout running where one is needed."""
    AWS = 4
    """No credentials, no region, the environment not deployed there, or AWS refused the call."""
    REFUSED = 5
    """The platform refused or undid the change (an abort left alone, a flag deployment rolled back)."""


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code
