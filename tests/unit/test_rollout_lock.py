"""One rollout at a time per endpoint: the lock's rules over an in-memory table with the same conditions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from lambdas.locking.lock import EndpointLock, EndpointLocked, Lease, LockContention, NotLockHolder

ENDPOINT = "mlrollout-dev-churn"
LEASE = 600


@dataclass
class FakeLockTable:
    """The DynamoDB adapter's conditions over a dict; counts writes so that no-ops can be seen."""

    leases: dict[str, Lease] = field(default_factory=dict)
    writes: int = 0

    def put_if_free(self, lease: Lease, *, now: int) -> bool:
        current = self.leases.get(lease.endpoint)
        if current is not None and not current.expires_at < now:
            return False
        self.leases[lease.endpoint] = lease
        self.writes += 1
        return True

    def get(self, endpoint: str) -> Lease | None:
        return self.leases.get(endpoint)

    def extend_if_held(self, endpoint: str, holder: str, *, expires_at: int) -> bool:
        current = self.leases.get(endpoint)
        if current is None or current.holder != holder:
            return False
        self.leases[endpoint] = replace(current, expires_at=expires_at)
        self.writes += 1
        return True

    def delete_if_held(self, endpoint: str, holder: str) -> bool:
        current = self.leases.get(endpoint)
        if current is None or current.holder != holder:
            return False
        del self.leases[endpoint]
        self.writes += 1
        return True


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table() -> FakeLockTable:
    return FakeLockTable()


@pytest.fixture
def lock(table: FakeLockTable, clock: Clock) -> EndpointLock:
    return EndpointLock(table, lease_seconds=LEASE, clock=clock)


def test_acquire_takes_a_free_endpoint_for_a_lease_period(lock: EndpointLock, clock: Clock) -> None:
    lease = lock.acquire(ENDPOINT, "exec-1")
    assert lease == Lease(ENDPOINT, "exec-1", acquired_at=int(clock.now), expires_at=int(clock.now) + LEASE)


def test_a_second_rollout_is_refused_naming_the_holder(lock: EndpointLock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    with pytest.raises(EndpointLocked, match="locked by rollout exec-1") as refused:
        lock.acquire(ENDPOINT, "exec-2")
    assert refused.value.lease.holder == "exec-1"


def test_other_endpoints_are_not_locked(lock: EndpointLock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    assert lock.acquire("mlrollout-dev-fraud", "exec-2").holder == "exec-2"


def test_acquiring_again_as_the_holder_changes_nothing(
    lock: EndpointLock, table: FakeLockTable, clock: Clock
) -> None:
    first = lock.acquire(ENDPOINT, "exec-1")
    clock.now += 30
    assert lock.acquire(ENDPOINT, "exec-1") == first
    assert table.writes == 1


def test_an_expired_lease_can_be_taken_over(lock: EndpointLock, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "crashed")
    clock.now += LEASE + 1
    assert lock.acquire(ENDPOINT, "exec-2").holder == "exec-2"


def test_a_lease_is_live_up_to_its_expiry_second(lock: EndpointLock, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    clock.now += LEASE
    with pytest.raises(EndpointLocked):
        lock.acquire(ENDPOINT, "exec-2")


def test_release_by_the_holder_frees_the_endpoint(lock: EndpointLock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    assert lock.release(ENDPOINT, "exec-1") is True
    assert lock.acquire(ENDPOINT, "exec-2").holder == "exec-2"


def test_release_by_another_rollout_changes_nothing(lock: EndpointLock, table: FakeLockTable) -> None:
    lease = lock.acquire(ENDPOINT, "exec-1")
    assert lock.release(ENDPOINT, "exec-2") is False
    assert table.leases[ENDPOINT] == lease


def test_releasing_twice_is_harmless(lock: EndpointLock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    assert lock.release(ENDPOINT, "exec-1") is True
    assert lock.release(ENDPOINT, "exec-1") is False


def test_renew_extends_the_holders_lease_from_now(lock: EndpointLock, clock: Clock) -> None:
    first = lock.acquire(ENDPOINT, "exec-1")
    clock.now += 500
    renewed = lock.renew(ENDPOINT, "exec-1")
    assert renewed.expires_at == first.expires_at + 500
    assert renewed.acquired_at == first.acquired_at


def test_renew_by_a_rollout_that_lost_the_lock_is_refused(lock: EndpointLock, clock: Clock) -> None:
    lock.acquire(ENDPOINT, "exec-1")
    clock.now += LEASE + 1
    lock.acquire(ENDPOINT, "exec-2")
    with pytest.raises(NotLockHolder, match="held by exec-2"):
        lock.renew(ENDPOINT, "exec-1")


def test_renew_of_a_released_lock_is_refused(lock: EndpointLock) -> None:
    with pytest.raises(NotLockHolder, match="not held"):
        lock.renew(ENDPOINT, "exec-1")


@dataclass
class VanishingLockTable(FakeLockTable):
    """Refuses every write yet shows no lease: the lock changes hands between write and read."""

    def put_if_free(self, lease: Lease, *, now: int) -> bool:
        return False


def test_a_lock_that_keeps_changing_hands_is_reported(clock: Clock) -> None:
    with pytest.raises(LockContention, match="changed hands"):
        EndpointLock(VanishingLockTable(), clock=clock).acquire(ENDPOINT, "exec-1")


def test_a_lease_period_must_be_positive(table: FakeLockTable) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        EndpointLock(table, lease_seconds=0)


def test_a_holder_that_knows_how_long_it_runs_takes_and_renews_a_lease_that_long(
    lock: EndpointLock, clock: Clock
) -> None:
    day = 24 * 3600
    lease = lock.acquire(ENDPOINT, "exec-1", lease_seconds=day)
    assert lease.expires_at == int(clock.now) + day
    clock.now += LEASE + 1  # past the lock's own lease: still held
    with pytest.raises(EndpointLocked):
        lock.acquire(ENDPOINT, "exec-2")
    assert lock.renew(ENDPOINT, "exec-1", lease_seconds=day).expires_at == int(clock.now) + day
    with pytest.raises(ValueError, match="lease_seconds must be at least 1, got 0"):
        lock.renew(ENDPOINT, "exec-1", lease_seconds=0)
