"""pydantic's validation errors as one line of text that names each problem's field.

Every function reports a bad event, file or environment this way; the options keep each message's own
wording (an environment names the variable, a flag says "unknown attribute").
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["describe_problems", "problem_location", "problem_message"]


def problem_location(
    location: tuple[int | str, ...], *, names: Mapping[str, str] | None = None, top_level: str = "(top level)"
) -> str:
    """Dotted path of the field; ``names`` renames its first part (a field to its environment variable)."""
    if not location:
        return top_level
    head, *rest = location
    first = names.get(str(head), str(head)) if names else str(head)
    return first + "".join(f".{part}" for part in rest)


def problem_message(problem: ErrorDetails, *, unknown_field: str | None = None) -> str:
    """pydantic's message, or ``unknown_field`` for a key the model forbids."""
    if unknown_field is not None and problem["type"] == "extra_forbidden":
        return unknown_field
    return str(problem["msg"])


def describe_problems(
    error: ValidationError,
    *,
    names: Mapping[str, str] | None = None,
    top_level: str = "(top level)",
    unknown_field: str | None = None,
    separator: str = "; ",
) -> str:
    """Every problem as ``field: message``, joined by ``separator``."""
    return separator.join(
        f"{problem_location(problem['loc'], names=names, top_level=top_level)}: "
        f"{problem_message(problem, unknown_field=unknown_field)}"
        for problem in error.errors()
    )
