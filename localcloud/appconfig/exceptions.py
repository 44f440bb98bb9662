"""AppConfig's errors, and the emulation's own."""

from __future__ import annotations

from typing import Any

from moto.core.exceptions import ServiceException


class MotoHasAppConfigApisError(RuntimeError):
    """moto implements an API this module emulates: the emulation would hide moto's behaviour."""


class AppConfigEmulationError(RuntimeError):
    """The emulator cannot run as asked (e.g. used while closed, or its background thread failed)."""


class BadRequest(ServiceException):
    code = "BadRequestException"

    def __init__(self, message: str, *, reason: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


class ResourceNotFound(ServiceException):
    code = "ResourceNotFoundException"

    def __init__(self, message: str, *, resource_name: str | None = None, resource_type: str | None = None):
        super().__init__(message)
        self.resource_name = resource_name
        self.resource_type = resource_type


class Conflict(ServiceException):
    code = "ConflictException"


def invalid_token(problem: str, message: str) -> BadRequest:
    details = {"InvalidParameters": {"ConfigurationToken": {"Problem": problem}}}
    return BadRequest(message, reason="InvalidParameters", details=details)
