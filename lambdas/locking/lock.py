"""One rollout at a time per endpoint: a lease-based lock held by the rollout's execution.

* acquire   -- a conditional write that succeeds only if no one holds the endpoint or the last lease
               has expired (so a crashed run cannot lock an endpoint forever). The same holder asking
               again gets its existing lease back unchanged: an event delivered twice changes nothing
               twice. Anyone else gets ``EndpointLocked`` naming the holder.
* renew     -- the holder pushes its lease's expiry out (a long rollout renews at every step).
* release   -- a conditional delete by the holder only; releasing a lock one does not hold (expired
               and taken over, or already released) changes nothing and says so.

The clock is injected (epoch seconds), and the storage is a port (``LockTable``); the DynamoDB
adapter is ``lambdas.locking.aws.lock_table``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "EndpointLock",
    "EndpointLocked",
    "Lease",
    "LockContention",
    "LockTable",
    "NotLockHolder",
]

DEFAULT_LEASE_SECONDS = 2 * 3600
"""Longer than any step takes between renewals; short enough that a crashed run frees the endpoint."""


@dataclass(frozen=True, slots=True)
class Lease:
    endpoint: str
    holder: str
    acquired_at: int
    expires_at: int


class EndpointLocked(Exception):
    """Another rollout holds this endpoint."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"endpoint {lease.endpoint} is locked by rollout {lease.holder} until {lease.expires_at} "
            "(epoch seconds); one rollout at a time per endpoint"
        )
        self.lease = lease


class LockContention(Exception):
    """The lock changed hands twice while being taken; the caller may retry."""


class NotLockHolder(Exception):
    """A renewal by someone who does not hold the lock (it expired and was taken, or was released)."""


class LockTable(Protocol):
    """Storage of the leases, one per endpoint, with conditional writes."""

    def put_if_free(self, lease: Lease, *, now: int) -> bool:
        """Write the lease if the endpoint has none or only an expired one; False if it is held."""
        ...

    def get(self, endpoint: str) -> Lease | None:
        """The stored lease (expired or not), read consistently."""
        ...

    def extend_if_held(self, endpoint: str, holder: str, *, expires_at: int) -> bool:
        """Set a new expiry if the stored lease is `holder`'s (live, or expired and not taken); else False."""
        ...

    def delete_if_held(self, endpoint: str, holder: str) -> bool:
        """Delete the lease if `holder` holds it; False otherwise."""
        ...


class EndpointLock:
    def __init__(
        self,
        table: LockTable,
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lease_seconds < 1:
            raise ValueError(f"lease_seconds must be at least 1, got {lease_seconds}")
        self._table = table
        self._lease_seconds = lease_seconds
        self._clock = clock

    def acquire(self, endpoint: str, holder: str, *, lease_seconds: int | None = None) -> Lease:
        """Take the endpoint for `holder` (or return its live lease); EndpointLocked if another holds it.

        `lease_seconds` overrides the lock's lease for this holder (a run that knows how long it may last).
        """
        # A second try: the lease that refused the write may expire or be released before it is read.
        for _ in range(2):
            lease = self._try_acquire(endpoint, holder, self._lease(lease_seconds))
            if lease is not None:
                return lease
        raise LockContention(f"the lock on endpoint {endpoint} changed hands while being taken; try again")

    def renew(self, endpoint: str, holder: str, *, lease_seconds: int | None = None) -> Lease:
        """Extend the holder's lease by a full lease period from now; raise NotLockHolder otherwise."""
        now = self._now()
        expires_at = now + self._lease(lease_seconds)
        extended = self._table.extend_if_held(endpoint, holder, expires_at=expires_at)
        current = self._table.get(endpoint)
        if not extended or current is None or current.holder != holder:
            held_by = f"held by {current.holder}" if current else "not held"
            raise NotLockHolder(f"rollout {holder} does not hold endpoint {endpoint} (it is {held_by})")
        return current

    def live_lease(self, endpoint: str) -> Lease | None:
        """Who holds the endpoint now; None when no one does or the last lease has expired."""
        lease = self._table.get(endpoint)
        if lease is None or lease.expires_at < self._now():
            return None
        return lease

    def release(self, endpoint: str, holder: str) -> bool:
        """Free the endpoint if `holder` holds it. False (and nothing changed) if it does not."""
        return self._table.delete_if_held(endpoint, holder)

    def _lease(self, lease_seconds: int | None) -> int:
        if lease_seconds is None:
            return self._lease_seconds
        if lease_seconds < 1:
            raise ValueError(f"lease_seconds must be at least 1, got {lease_seconds}")
        return lease_seconds

    def _try_acquire(self, endpoint: str, holder: str, lease_seconds: int) -> Lease | None:
        now = self._now()
        lease = Lease(endpoint, holder, acquired_at=now, expires_at=now + lease_seconds)
        if self._table.put_if_free(lease, now=now):
            return lease
        current = self._table.get(endpoint)
        if current is None or current.expires_at < now:
            return None
        if current.holder == holder:
            return current
        raise EndpointLocked(current)

    def _now(self) -> int:
        return int(self._clock())
