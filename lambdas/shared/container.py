"""A function's services, built on its first invocation and kept for the container's later ones.

Built on first use, not at import, so the environment is read (and moto sees every client) only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ContainerServices"]

ServicesT = TypeVar("ServicesT")


class ContainerServices(Generic[ServicesT]):
    def __init__(self, build: Callable[[], ServicesT]) -> None:
        self._build = build
        self._services: ServicesT | None = None

    def use(self, services: ServicesT | None) -> None:
        """Run with these services (tests); None builds the real ones on the next call."""
        self._services = services

    def get(self) -> ServicesT:
        if self._services is None:
            self._services = self._build()
        return self._services
